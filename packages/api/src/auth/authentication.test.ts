import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { Cell, createNamespace, listTokens } from '@omega/cell-state';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadApiDefinition } from '../proto.js';
import { startApiServer, type ApiServer } from '../server.js';
import { ApiTestClient, refusal, startTestApi, type TestApi } from '../testing/index.js';

const job = (namespace = '') => ({
  name: 'hello',
  namespace,
  kind: 'JOB_KIND_BATCH',
  instances: 1,
  task: { command: ['true'], resources: { cpu_millis: 100, memory_bytes: 64 * 1024 * 1024 } },
});

interface Created {
  token: { name: string; namespaces: string[]; role: string; expires_at_ms: number; created_at_ms: number };
  secret: string;
}

let api: TestApi;
let lines: string[];
let nowMs: number;
const closers: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  lines = [];
  nowMs = 1_000_000;
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  api = await startTestApi({ auth: 'tokens', logger, server: { now: () => nowMs } });
  await createNamespace(api.kv, api.cell.keys, 'a', 0);
  await createNamespace(api.kv, api.cell.keys, 'b', 0);
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await api.close();
});

/** A token made through the API by the harness's admin; returns a client that sends it and its bearer text. */
async function tokenClient(name: string, role: string, namespaces: string[], ttlMs = 0): Promise<{ client: ApiTestClient; secret: string }> {
  const created = await api.client.unary<Created>('access', 'CreateToken', { name, role, namespaces, ttl_ms: ttlMs });
  return { client: api.clientWith(created.secret), secret: created.secret };
}

async function submit(client: ApiTestClient, namespace: string): Promise<string> {
  return (await client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: job(namespace) })).job_id;
}

/** A second API server over the same store (same cell), and a client of it sending `token`. */
async function secondServer(token: string): Promise<ApiTestClient> {
  const server: ApiServer = await startApiServer({ cell: new Cell(api.kv, 'test'), auth: 'tokens', listen: '127.0.0.1:0', shutdownGraceMs: 1_000, now: () => nowMs });
  const client = new ApiTestClient(server.address, { token });
  closers.push(() => server.close(), () => client.close());
  return client;
}

/** Another token-checking API server over the same store that re-checks open streams every `probeMs`; its address. */
async function tokenServer(probeMs: number): Promise<string> {
  const server = await startApiServer({ cell: new Cell(api.kv, 'test'), auth: 'tokens', listen: '127.0.0.1:0', shutdownGraceMs: 1_000, watchProbeMs: probeMs, now: () => nowMs });
  closers.push(() => server.close());
  return server.address;
}

describe('authentication', () => {
  it('refuses every method of every service without a token, with UNAUTHENTICATED saying how to send one', async () => {
    const anonymous = api.clientWith(undefined);
    const services = { jobs: loadApiDefinition().jobService, cells: loadApiDefinition().cellService, access: loadApiDefinition().accessService } as const;
    let methods = 0;
    for (const [client, definition] of Object.entries(services) as [keyof typeof services, (typeof services)[keyof typeof services]][]) {
      for (const [name, method] of Object.entries(definition)) {
        methods++;
        const error = method.responseStream
          ? (await anonymous.stream(name as 'WatchJob', { job_id: 'x' })).error
          : await refusal(anonymous.unary(client, name, {}));
        expect(error?.code, name).toBe(status.UNAUTHENTICATED);
        expect(error?.details, name).toBe('missing credentials: send the metadata "authorization: Bearer <token>" (a token from omega token create)');
      }
    }
    expect(methods).toBe(18);
  });

  it('refuses malformed, unknown and wrong-secret tokens, saying what is wrong without quoting them', async () => {
    const { secret } = await tokenClient('ci', 'ROLE_READ', ['a']);
    const secretPart = secret.split('.')[2] ?? '';
    const otherSecret = `omg1.ci.${'A'.repeat(42)}A`;
    const cases: [string, string][] = [
      [secretPart, 'malformed bearer token: not an Omega token (expected omg1.<name>.<secret>)'],
      [`omg1.CI.${secretPart}`, "malformed bearer token: the token's name is not a DNS label (lowercase letters, digits, '-')"],
      ['omg1.ci.tooshort', "malformed bearer token: the token's secret is not 32 bytes of unpadded base64url"],
      [`omg1.nobody.${secretPart}`, 'token "nobody" is not valid (unknown, revoked, or not its secret)'],
      [otherSecret, 'token "ci" is not valid (unknown, revoked, or not its secret)'],
    ];
    for (const [token, details] of cases) {
      const error = await refusal(api.clientWith(token).unary('jobs', 'ListJobs', {}));
      expect(error.code, token).toBe(status.UNAUTHENTICATED);
      expect(error.details).toBe(details);
      expect(error.details).not.toContain(secretPart.slice(0, 12));
    }
    // Not a bearer scheme at all.
    const basic = new ApiTestClient(api.server.address);
    closers.push(() => basic.close());
    const error = await new Promise<ServiceError>((resolve) => {
      const metadata = new Metadata();
      metadata.set('authorization', `Basic ${secret}`);
      basic.jobs.ListJobs?.({}, metadata, (e: ServiceError | null) => resolve(e as ServiceError));
    });
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(error.details).toBe('malformed authorization metadata: expected "Bearer <token>"');
  });

  it('answers WhoAmI with the caller token, and the insecure server with admin', async () => {
    const { client } = await tokenClient('ci', 'ROLE_READ', ['b', 'a'], 60_000);
    expect(await client.unary('access', 'WhoAmI', {})).toEqual({ name: 'ci', namespaces: ['a', 'b'], role: 'ROLE_READ', expires_at_ms: nowMs + 60_000, created_at_ms: nowMs });
    const insecure = await startTestApi({ kv: api.kv });
    closers.push(() => insecure.close());
    expect(await insecure.client.unary('access', 'WhoAmI', {})).toMatchObject({ name: 'insecure', role: 'ROLE_ADMIN', namespaces: ['*'] });
  });
});

describe('authorization', () => {
  it('lets a read token read but neither submit nor kill, naming the role it lacks', async () => {
    const { client } = await tokenClient('ci', 'ROLE_READ', ['a']);
    const id = await submit(api.client, 'a');
    expect((await client.unary<{ id: string }>('jobs', 'GetJob', { job_id: id })).id).toBe(id);
    expect(await client.unary('cells', 'ListMachines', {})).toEqual({ machines: [] });
    expect(await client.unary('cells', 'GetSchedulerStats', {})).toEqual({ schedulers: [] });
    const submitted = await refusal(submit(client, 'a'));
    expect(submitted.code).toBe(status.PERMISSION_DENIED);
    expect(submitted.details).toBe('token "ci" (role read) may not submit jobs: that needs role submit');
    const killed = await refusal(client.unary('jobs', 'KillJob', { job_id: id }));
    expect(killed.code).toBe(status.PERMISSION_DENIED);
    expect(killed.details).toBe('token "ci" (role read) may not kill jobs: that needs role submit');
    expect((await api.client.unary<{ kill_requested: boolean }>('jobs', 'GetJob', { job_id: id })).kill_requested).toBe(false);
  });

  it('keeps a token of namespace a from seeing or killing the jobs of b, and from submitting there', async () => {
    const { client } = await tokenClient('team-a', 'ROLE_SUBMIT', ['a']);
    const mine = await submit(client, 'a');
    const theirs = await submit(api.client, 'b');
    const inB = 'token "team-a" (namespaces "a") may not read jobs in namespace "b": it is not one of its namespaces';

    const got = await refusal(client.unary('jobs', 'GetJob', { job_id: theirs }));
    expect([got.code, got.details]).toEqual([status.PERMISSION_DENIED, inB]);
    const watched = await client.stream('WatchJob', { job_id: theirs });
    expect(watched.messages).toEqual([]);
    expect([watched.error?.code, watched.error?.details]).toEqual([status.PERMISSION_DENIED, inB]);
    const logs = await client.stream('GetTaskLogs', { job_id: theirs, index: 0 });
    expect([logs.error?.code, logs.error?.details]).toEqual([status.PERMISSION_DENIED, inB]);
    const killed = await refusal(client.unary('jobs', 'KillJob', { job_id: theirs }));
    expect([killed.code, killed.details]).toEqual([status.PERMISSION_DENIED, 'token "team-a" (namespaces "a") may not kill jobs in namespace "b": it is not one of its namespaces']);
    const submitted = await refusal(submit(client, 'b'));
    expect([submitted.code, submitted.details]).toEqual([status.PERMISSION_DENIED, 'token "team-a" (namespaces "a") may not submit jobs in namespace "b": it is not one of its namespaces']);
    expect((await api.client.unary<{ kill_requested: boolean }>('jobs', 'GetJob', { job_id: theirs })).kill_requested).toBe(false);

    // ListJobs shows only what the caller may read; asking for b is refused, for a is filtered.
    const listed = await client.unary<{ jobs: { id: string }[] }>('jobs', 'ListJobs', {});
    expect(listed.jobs.map((j) => j.id)).toEqual([mine]);
    const listB = await refusal(client.unary('jobs', 'ListJobs', { namespace: 'b' }));
    expect([listB.code, listB.details]).toEqual([status.PERMISSION_DENIED, inB]);
    expect((await client.unary<{ jobs: { id: string }[] }>('jobs', 'ListJobs', { namespace: 'a' })).jobs.map((j) => j.id)).toEqual([mine]);
    // The admin sees both, and can filter.
    expect((await api.client.unary<{ jobs: { id: string }[] }>('jobs', 'ListJobs', {})).jobs.map((j) => j.id).sort()).toEqual([mine, theirs].sort());
    expect((await api.client.unary<{ jobs: { id: string }[] }>('jobs', 'ListJobs', { namespace: 'b' })).jobs.map((j) => j.id)).toEqual([theirs]);

    // Its own jobs: watch and kill.
    const own = await client.unary<{ job: { kill_requested: boolean } }>('jobs', 'KillJob', { job_id: mine });
    expect(own.job.kill_requested).toBe(true);
  });

  it('keeps token management to admins', async () => {
    const { client } = await tokenClient('ops', 'ROLE_SUBMIT', ['*']);
    for (const [method, request] of [
      ['CreateToken', { name: 'x', role: 'ROLE_ADMIN' }],
      ['ListTokens', {}],
      ['RevokeToken', { name: 'admin' }],
    ] as const) {
      const error = await refusal(client.unary('access', method, request));
      expect([error.code, error.details]).toEqual([status.PERMISSION_DENIED, 'token "ops" (role submit) may not manage tokens: that needs role admin']);
    }
    expect((await listTokens(api.kv, api.cell.keys)).map((t) => t.name)).toEqual(['admin', 'ops']);
  });
});

describe('revocation and expiry', () => {
  it('refuses a revoked token at once on another API server over the same store', async () => {
    const { client, secret } = await tokenClient('ci', 'ROLE_READ', ['a']);
    const elsewhere = await secondServer(secret);
    expect(await elsewhere.unary('access', 'WhoAmI', {})).toMatchObject({ name: 'ci' });
    expect(await api.client.unary('access', 'RevokeToken', { name: 'ci' })).toEqual({});
    for (const c of [elsewhere, client]) {
      const error = await refusal(c.unary('jobs', 'ListJobs', {}));
      expect([error.code, error.details]).toEqual([status.UNAUTHENTICATED, 'token "ci" is not valid (unknown, revoked, or not its secret)']);
    }
    const again = await refusal(api.client.unary('access', 'RevokeToken', { name: 'ci' }));
    expect([again.code, again.details]).toEqual([status.NOT_FOUND, 'token "ci" not found']);
  });

  it('ends an open WatchJob with UNAUTHENTICATED once its token is revoked', async () => {
    const { secret } = await tokenClient('watcher', 'ROLE_READ', ['a']);
    const id = await submit(api.client, 'a');
    const watcher = new ApiTestClient(await tokenServer(50), { token: secret });
    closers.push(() => watcher.close());
    let first: () => void = () => undefined;
    const gotFirst = new Promise<void>((resolve) => (first = resolve));
    const watching = watcher.stream('WatchJob', { job_id: id }, () => first());
    await gotFirst;
    await api.client.unary('access', 'RevokeToken', { name: 'watcher' });
    const { messages, error } = await watching;
    expect(messages).toHaveLength(1);
    expect([error?.code, error?.details]).toEqual([status.UNAUTHENTICATED, 'token "watcher" is not valid (unknown, revoked, or not its secret)']);
  });

  it('refuses a token from its expiry on, on every API server', async () => {
    const { client, secret } = await tokenClient('short', 'ROLE_READ', ['a'], 1_000);
    const elsewhere = await secondServer(secret);
    nowMs += 999;
    expect(await elsewhere.unary('access', 'WhoAmI', {})).toMatchObject({ name: 'short' });
    nowMs += 1;
    for (const c of [elsewhere, client]) {
      const error = await refusal(c.unary('access', 'WhoAmI', {}));
      expect([error.code, error.details]).toEqual([status.UNAUTHENTICATED, `token "short" expired at ${new Date(1_001_000).toISOString()}`]);
    }
  });
});

describe('AccessService', () => {
  it('creates, lists and revokes tokens; the secret is returned once and works at once', async () => {
    const created = await api.client.unary<Created>('access', 'CreateToken', { name: 'deploy', role: 'ROLE_SUBMIT', namespaces: ['b', 'a'] });
    expect(created.token).toEqual({ name: 'deploy', namespaces: ['a', 'b'], role: 'ROLE_SUBMIT', expires_at_ms: 0, created_at_ms: nowMs });
    expect(created.secret).toMatch(/^omg1\.deploy\.[A-Za-z0-9_-]{43}$/);
    expect(await api.clientWith(created.secret).unary('access', 'WhoAmI', {})).toMatchObject({ name: 'deploy' });
    const listed = await api.client.unary<{ tokens: { name: string }[] }>('access', 'ListTokens', {});
    expect(listed.tokens.map((t) => t.name)).toEqual(['admin', 'deploy']);
    expect(listed.tokens[0]).toEqual({ name: 'admin', namespaces: ['*'], role: 'ROLE_ADMIN', expires_at_ms: 0, created_at_ms: expect.any(Number) });
  });

  it('refuses bad input naming the field, a taken name with ALREADY_EXISTS, and stores nothing', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ name: '', role: 'ROLE_READ', namespaces: ['a'] }, status.INVALID_ARGUMENT, 'name: is required'],
      [{ name: 'Bad_Name', role: 'ROLE_READ', namespaces: ['a'] }, status.INVALID_ARGUMENT, 'name: must be a DNS label (1-63 lowercase letters, digits and \'-\', not starting or ending with \'-\'), got "Bad_Name"'],
      [{ name: 'x', role: 'ROLE_UNSPECIFIED', namespaces: ['a'] }, status.INVALID_ARGUMENT, 'role: must be ROLE_READ, ROLE_SUBMIT or ROLE_ADMIN'],
      [{ name: 'x', role: 'ROLE_READ', namespaces: [] }, status.INVALID_ARGUMENT, 'namespaces: a read token needs at least one namespace (or "*" for every one)'],
      [{ name: 'x', role: 'ROLE_READ', namespaces: ['a', 'nope'] }, status.INVALID_ARGUMENT, 'namespaces[1]: namespace "nope" does not exist'],
      [{ name: 'x', role: 'ROLE_READ', namespaces: ['a'], ttl_ms: 400 * 365 * 24 * 3600 * 1000 }, status.INVALID_ARGUMENT, 'ttl_ms: must be a whole number of milliseconds from 0 (never expires) to 315360000000 (10 years), got 12614400000000'],
      [{ name: 'admin', role: 'ROLE_READ', namespaces: ['a'] }, status.ALREADY_EXISTS, 'token "admin" already exists (revoke it first to replace it)'],
    ];
    for (const [request, code, details] of cases) {
      const error = await refusal(api.client.unary('access', 'CreateToken', request));
      expect([error.code, error.details], details).toEqual([code, details]);
    }
    expect((await listTokens(api.kv, api.cell.keys)).map((t) => t.name)).toEqual(['admin']);
  });
});

describe('secrets', () => {
  it('never puts a token secret in any response or log line', async () => {
    const { client, secret } = await tokenClient('ci', 'ROLE_SUBMIT', ['a'], 60_000);
    const secrets = [secret, api.adminToken ?? ''].map((s) => s.split('.')[2] ?? '');
    const responses: unknown[] = [];
    const record = async (call: Promise<unknown>): Promise<void> => {
      responses.push(await call.catch((error: ServiceError) => ({ code: error.code, details: error.details, message: error.message })));
    };
    const id = await submit(client, 'a');
    await record(client.unary('access', 'WhoAmI', {}));
    await record(api.client.unary('access', 'ListTokens', {}));
    await record(client.unary('jobs', 'GetJob', { job_id: id }));
    await record(client.unary('jobs', 'ListJobs', {}));
    await record(client.unary('jobs', 'SubmitJob', { job: job('b') }));
    await record(client.unary('access', 'ListTokens', {}));
    // Malformed and wrong tokens built from the real secret.
    await record(api.clientWith(`omg1.other.${secrets[0]}`).unary('jobs', 'ListJobs', {}));
    await record(api.clientWith(`${secrets[0]}`).unary('jobs', 'ListJobs', {}));
    await record(api.clientWith(`omg1.ci.${secrets[0]}x`).unary('jobs', 'ListJobs', {}));
    await record(api.client.unary('access', 'RevokeToken', { name: 'ci' }));
    await record(client.unary('jobs', 'ListJobs', {}));

    expect(lines.length).toBeGreaterThan(5);
    expect(lines.some((line) => line.includes('token created'))).toBe(true);
    const everything = [...lines, JSON.stringify(responses)];
    for (const text of everything) {
      for (const s of secrets) expect(text).not.toContain(s);
      expect(text).not.toContain(secrets[0]?.slice(0, 16));
    }
  });
});
