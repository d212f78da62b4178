// A client written the way a user in any language would write one: only the .proto files,
// loaded with @grpc/proto-loader and grpc-js's loadPackageDefinition, TLS with the cell's CA
// file (grpc.credentials.createSsl) and `authorization: Bearer <token>` metadata; no project
// TypeScript. It does everything the CLI does, against a secured cell of processes: etcd with
// TLS and client-certificate auth, set up by `omega cell init` as an operator would (which also
// makes the first admin token), two API servers, a batch scheduler, a hollow agent and a real
// agent (for task logs), each with its own certificate.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startEtcd, type RunningEtcd } from '@omega/cell-state';
import { eventually, repoPath, runNode, startNode, stopAll, type Started } from './support/processes.js';
import { AGENT_MAIN, API_MAIN, BATCH_MAIN } from './support/test-cell.js';
import { createTestPki, type TestPki } from './support/test-pki.js';

const PROTOS = fileURLToPath(new URL('../protos/', import.meta.url));
const CLI_MAIN = repoPath('packages/cli/dist/main.js');
const CELL = `proto-${randomBytes(3).toString('hex')}`;
const REAL_MACHINE = 'proto-m1';
const SECRET = `s3cret-${randomBytes(12).toString('hex')}`;
const MiB = 1024 * 1024;

type Callback = (error: grpc.ServiceError | null, reply: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
type Method = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback?: Callback) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
type AnyClient = grpc.Client & Record<string, Method>;
type Service = 'jobs' | 'cells' | 'access' | 'namespaces';

const definition = protoLoader.loadSync('omega/v1/api.proto', { includeDirs: [PROTOS], keepCase: true, longs: String, enums: String, defaults: true });
const omega = (grpc.loadPackageDefinition(definition) as any).omega.v1; // eslint-disable-line @typescript-eslint/no-explicit-any
const SERVICES: Record<Service, string> = { jobs: 'JobService', cells: 'CellService', access: 'AccessService', namespaces: 'NamespaceService' };

/** Every reply and stream message any client got, to show that no secret value is in one. */
const replies: string[] = [];
const record = (reply: unknown): void => void replies.push(JSON.stringify(reply, (_key, value: unknown) => (Buffer.isBuffer(value) ? value.toString('latin1') : value)));

/** One connection per service to `address`, each call carrying `token` (or none). */
class ProtoClient {
  private readonly clients: Record<Service, AnyClient>;
  constructor(address: string, private readonly token: string | undefined, credentials: grpc.ChannelCredentials) {
    const make = (service: Service): AnyClient => new omega[SERVICES[service]](address, credentials) as AnyClient;
    this.clients = { jobs: make('jobs'), cells: make('cells'), access: make('access'), namespaces: make('namespaces') };
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.token !== undefined) metadata.set('authorization', `Bearer ${this.token}`);
    return metadata;
  }

  call(service: Service, method: string, request: unknown): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const client = this.clients[service];
    return new Promise((resolve, reject) => {
      (client[method] as Method).call(client, request, this.metadata(), { deadline: Date.now() + 10_000 }, (error, reply) => {
        if (error !== null) return reject(error);
        record(reply);
        resolve(reply);
      });
    });
  }

  /** A server stream read to its end: every message, and how it ended. `onMessage` sees each as it comes. */
  stream(method: 'WatchJob' | 'GetTaskLogs', request: unknown, onMessage: (message: any) => void = () => undefined): Promise<{ messages: any[]; error?: grpc.ServiceError }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const client = this.clients.jobs;
    const call = (client[method] as Method).call(client, request, this.metadata(), { deadline: Date.now() + 90_000 }) as grpc.ClientReadableStream<unknown>;
    const messages: unknown[] = [];
    return new Promise((resolve) => {
      call.on('data', (message: unknown) => {
        record(message);
        messages.push(message);
        onMessage(message);
      });
      call.on('error', (error: grpc.ServiceError) => resolve({ messages, error }));
      call.on('end', () => resolve({ messages }));
    });
  }

  close(): void {
    for (const client of Object.values(this.clients)) client.close();
  }
}

function refusal(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  return promise.then(
    (reply) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(reply)}`);
    },
    (error: grpc.ServiceError) => error,
  );
}

let pki: TestPki;
let etcd: RunningEtcd | undefined;
let workDir: string;
let caPem: Buffer;
let adminToken: string;
const processes: Started[] = [];
const servers: Started[] = [];
const addresses: string[] = [];
const open: ProtoClient[] = [];

/** A TLS client of API server `i` (0 or 1), verifying it with the CA file alone. */
function client(i: number, token: string | undefined): ProtoClient {
  const made = new ProtoClient(addresses[i] as string, token, grpc.credentials.createSsl(caPem));
  open.push(made);
  return made;
}

const admin = (i = 0): ProtoClient => client(i, adminToken);

async function startApi(listen: string): Promise<{ started: Started; address: string }> {
  const { started, match } = await startNode(API_MAIN, ['--etcd', etcd?.clientUrl as string, ...pki.flags('omega-api'), '--cell', CELL, '--listen', listen, '--log-level', 'info'], /omega-api listening on (\S+)/);
  processes.push(started);
  return { started, address: match[1] as string };
}

async function start(script: string, args: readonly string[], ready: RegExp): Promise<Started> {
  const { started } = await startNode(script, ['--etcd', etcd?.clientUrl as string, '--cell', CELL, '--log-level', 'info', ...args], ready);
  processes.push(started);
  return started;
}

// Where a job runs is decided by its size (these jobs carry no constraints): a hollow machine
// has 1 CPU and 8 GiB, the real one 4 CPUs and 256 MiB. A
// task of 512 MiB fits only a hollow machine, one of 2 CPUs only the real one.
const HOLLOW_TASK_MEMORY = 512 * MiB;

/** A batch job of `instances` that only hollow machines can hold, "running" for `runMs`. */
const hollowJob = (name: string, namespace: string, instances: number, runMs: number, cpuMillis = 100) => ({
  name,
  namespace,
  kind: 'JOB_KIND_BATCH',
  instances,
  task: { command: ['hollow'], resources: { cpu_millis: cpuMillis, memory_bytes: HOLLOW_TASK_MEMORY }, run_duration_ms: runMs },
});

beforeAll(async () => {
  pki = await createTestPki([`omega-agent-${REAL_MACHINE}`]);
  caPem = readFileSync(pki.caFile);
  workDir = mkdtempSync(join(tmpdir(), 'omega-proto-client-'));
  // Tasks of the real agent run as nobody (the agent is root here): the data dir must be searchable.
  chmodSync(workDir, 0o755);
  etcd = await startEtcd({ tls: pki.files('etcd') });
  // As an operator sets up a cell: `omega cell init` as etcd's root makes the users and roles,
  // turns auth on and creates the first admin token, written into a client config.
  const apiAddress = `127.0.0.1:${await freePort()}`;
  const root = pki.files('root');
  const init = await runNode(CLI_MAIN, [
    'cell', 'init',
    '--etcd', etcd.clientUrl, '--ca', root.caFile, '--cert', root.certFile, '--key', root.keyFile,
    '--cell', CELL, '--machines', REAL_MACHINE, '--hollow', '--hollow-prefix', 'hollow',
    '--token-name', 'ops-admin', '--api', apiAddress, '--write-config', join(workDir, 'client.yaml'),
  ]);
  if (init.code !== 0) throw new Error(`omega cell init failed (${init.code}):\n${init.stdout}${init.stderr}`);
  adminToken = /^\s+(omg1\.ops-admin\.\S+)$/m.exec(init.stdout)?.[1] as string;
  expect(adminToken).toMatch(/^omg1\.ops-admin\./);
  expect(readFileSync(join(workDir, 'client.yaml'), 'utf8')).toContain(adminToken);

  // Two API servers on the same cell: they share nothing but etcd.
  for (const listen of [apiAddress, '127.0.0.1:0']) {
    const { started, address } = await startApi(listen);
    servers.push(started);
    addresses.push(address);
  }
  await start(BATCH_MAIN, [...pki.flags('omega-scheduler'), '--name', 'batch-0', '--max-txn-ops', String(etcd.limits.maxTxnOps)], /"msg":"scheduler started"/);
  await start(AGENT_MAIN, [...pki.flags('omega-hollow'), '--hollow', '2', '--hollow-prefix', 'hollow', '--cpu', '1', '--memory', '8Gi', '--attr', 'pool=hollow', '--log-listen', 'none'], /"msg":"agent started"/);
  const dataDir = join(workDir, 'agent');
  await start(
    AGENT_MAIN,
    [...pki.flags(`omega-agent-${REAL_MACHINE}`), '--machine-id', REAL_MACHINE, '--cpu', '4', '--memory', '256Mi', '--attr', 'pool=real', '--data-dir', dataDir, '--no-enforcement', '--kill-grace-ms', '1000', '--log-listen', '127.0.0.1:0'],
    /"msg":"agent started"/,
  );
  // The servers list their mirrors in the background: wait until both answer.
  for (let i = 0; i < 2; i++) await eventually('the API server to answer', () => admin(i).call('jobs', 'ListJobs', {}).then(() => true, () => false), 30_000);
}, 180_000);

afterAll(async () => {
  for (const c of open.splice(0)) c.close();
  // Every process started through processes.ts, even one a failed test left running.
  await stopAll();
  await etcd?.stop();
  pki?.remove();
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
}, 120_000);

describe('the API from a plain gRPC client built from the .proto files, over TLS with a token', () => {
  it('cannot reach the TLS port in plaintext', async () => {
    const plain = new ProtoClient(addresses[0] as string, adminToken, grpc.credentials.createInsecure());
    try {
      const error = await refusal(plain.call('jobs', 'ListJobs', {}));
      expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(error.code);
    } finally {
      plain.close();
    }
  });

  it('is refused UNAUTHENTICATED on every service without a token, or with a malformed one', async () => {
    const none = client(0, undefined);
    for (const [service, method] of [['jobs', 'ListJobs'], ['cells', 'ListMachines'], ['cells', 'GetSchedulerStats'], ['access', 'WhoAmI'], ['namespaces', 'ListNamespaces']] as const) {
      const error = await refusal(none.call(service, method, {}));
      expect([service, method, error.code, error.details]).toEqual([service, method, grpc.status.UNAUTHENTICATED, expect.stringMatching(/^missing credentials/)]);
    }
    const watched = await none.stream('WatchJob', { job_id: 'anything' });
    expect([watched.messages, watched.error?.code]).toEqual([[], grpc.status.UNAUTHENTICATED]);
    const malformed = await refusal(client(1, 'omg1.ops-admin.not-a-secret').call('jobs', 'ListJobs', {}));
    expect(malformed.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('knows the admin token that omega cell init made (whoami)', async () => {
    expect(await admin(1).call('access', 'WhoAmI', {})).toMatchObject({ name: 'ops-admin', role: 'ROLE_ADMIN', namespaces: ['*'], expires_at_ms: '0' });
  });

  it('creates and lists namespaces', async () => {
    for (const name of ['team-a', 'team-b', 'team-q']) expect(await admin().call('namespaces', 'CreateNamespace', { name })).toMatchObject({ name, has_quota: false });
    const listed = await admin(1).call('namespaces', 'ListNamespaces', {});
    expect(listed.namespaces.map((n: { name: string }) => n.name)).toEqual(['default', 'team-a', 'team-b', 'team-q']);
    const bad = await refusal(admin().call('namespaces', 'CreateNamespace', { name: 'Not A Label' }));
    expect([bad.code, bad.details]).toEqual([grpc.status.INVALID_ARGUMENT, expect.stringMatching(/^name: /)]);
  });

  it('creates, lists and revokes tokens, and a revoked one is refused at once by the other server', async () => {
    const created = await admin().call('access', 'CreateToken', { name: 'team-a-submit', role: 'ROLE_SUBMIT', namespaces: ['team-a'], ttl_ms: 0 });
    expect(created).toMatchObject({ token: { name: 'team-a-submit', role: 'ROLE_SUBMIT', namespaces: ['team-a'] }, secret: expect.stringMatching(/^omg1\.team-a-submit\.[A-Za-z0-9_-]{43}$/) });
    const reader = await admin().call('access', 'CreateToken', { name: 'reader', role: 'ROLE_READ', namespaces: ['*'], ttl_ms: 3_600_000 });
    expect(Number(reader.token.expires_at_ms)).toBeGreaterThan(0);

    const listed = await admin(1).call('access', 'ListTokens', {});
    expect(listed.tokens.map((t: { name: string }) => t.name)).toEqual(['ops-admin', 'reader', 'team-a-submit']);
    // The list carries no secret (and no hash of one): only what TokenInfo says.
    for (const secret of [adminToken, created.secret as string, reader.secret as string]) expect(JSON.stringify(listed)).not.toContain(secret.split('.')[2]);
    expect(Object.keys(listed.tokens[0]).sort()).toEqual(['created_at_ms', 'expires_at_ms', 'name', 'namespaces', 'role']);

    const readerOn1 = client(1, reader.secret);
    expect(await readerOn1.call('access', 'WhoAmI', {})).toMatchObject({ name: 'reader', role: 'ROLE_READ' });
    const denied = await refusal(readerOn1.call('jobs', 'SubmitJob', { job: hollowJob('nope', 'team-a', 1, 100) }));
    expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
    const notAdmin = await refusal(readerOn1.call('access', 'ListTokens', {}));
    expect(notAdmin.code).toBe(grpc.status.PERMISSION_DENIED);

    expect(await admin(0).call('access', 'RevokeToken', { name: 'reader' })).toEqual({});
    const revoked = await refusal(readerOn1.call('access', 'WhoAmI', {}));
    expect([revoked.code, revoked.details]).toEqual([grpc.status.UNAUTHENTICATED, 'token "reader" is not valid (unknown, revoked, or not its secret)']);
    expect((await admin(1).call('access', 'ListTokens', {})).tokens.map((t: { name: string }) => t.name)).toEqual(['ops-admin', 'team-a-submit']);
  });

  it('submits a job with a namespace, secret env and a request id, watches it to its end and reads its logs; the secret only reaches the task', async () => {
    const teamA = await admin().call('access', 'CreateToken', { name: 'team-a-runner', role: 'ROLE_SUBMIT', namespaces: ['team-a'] });
    const on0 = client(0, teamA.secret);
    const on1 = client(1, teamA.secret);
    const job = {
      name: 'greeter',
      namespace: 'team-a',
      kind: 'JOB_KIND_BATCH',
      instances: 1,
      task: {
        // Prints a hash of the secret, never the secret itself (its log is readable by the API).
        command: ['/bin/sh', '-c', 'printf %s "$DB_PASSWORD" | sha256sum; echo "greeting=$GREETING"; echo oops >&2'],
        // 2 CPUs: only the real machine has them.
        resources: { cpu_millis: 2000, memory_bytes: 32 * MiB },
        env: { GREETING: 'hi' },
        secret_env: { DB_PASSWORD: SECRET },
      },
    };
    const submitted = await on0.call('jobs', 'SubmitJob', { job, request_id: 'greeter-1' });
    expect(submitted).toEqual({ job_id: expect.stringMatching(/^greeter-[0-9a-z]+$/), created: true });
    const id = submitted.job_id as string;
    // The same request id through the other server: the same job, not a second one.
    expect(await on1.call('jobs', 'SubmitJob', { job, request_id: 'greeter-1' })).toEqual({ job_id: id, created: false });

    const events = await on1.stream('WatchJob', { job_id: id });
    expect(events.error).toBeUndefined();
    const states = events.messages.map((e: { job: { state: string } }) => e.job.state);
    expect(states.at(-1)).toBe('JOB_VIEW_STATE_SUCCEEDED');
    expect(states.slice(0, -1)).not.toContain('JOB_VIEW_STATE_SUCCEEDED');
    const revisions = events.messages.map((e: { revision: string }) => Number(e.revision));
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));

    const view = await on0.call('jobs', 'GetJob', { job_id: id });
    expect(view).toMatchObject({
      id,
      state: 'JOB_VIEW_STATE_SUCCEEDED',
      spec: { name: 'greeter', namespace: 'team-a', task: { env: { GREETING: 'hi' }, secret_env: {}, secret_env_names: ['DB_PASSWORD'] } },
      tasks: [{ index: 0, state: 'TASK_VIEW_STATE_SUCCEEDED', machine: REAL_MACHINE, has_exit_code: true, exit_code: 0 }],
    });

    const stdout = await on1.stream('GetTaskLogs', { job_id: id, index: 0, stream: 'STREAM_STDOUT', attempt: 0 });
    expect(stdout.error).toBeUndefined();
    const text = Buffer.concat(stdout.messages.map((m: { data: Buffer }) => m.data)).toString();
    expect(text).toBe(`${createHash('sha256').update(SECRET).digest('hex')}  -\ngreeting=hi\n`);
    const stderr = await on0.stream('GetTaskLogs', { job_id: id, index: 0, stream: 'STREAM_STDERR', attempt: 1 });
    expect(Buffer.concat(stderr.messages.map((m: { data: Buffer }) => m.data)).toString()).toBe('oops\n');
    const noSuchTask = await on0.stream('GetTaskLogs', { job_id: id, index: 1, stream: 'STREAM_STDOUT' });
    expect([noSuchTask.error?.code, noSuchTask.error?.details]).toEqual([grpc.status.INVALID_ARGUMENT, expect.stringMatching(/^index: /)]);

    // A submit token of team-a may not submit to team-b.
    const elsewhere = await refusal(on0.call('jobs', 'SubmitJob', { job: { ...job, namespace: 'team-b' } }));
    expect(elsewhere.code).toBe(grpc.status.PERMISSION_DENIED);
  }, 120_000);

  it('lists jobs by namespace, and a token sees only its namespaces', async () => {
    const other = await admin().call('jobs', 'SubmitJob', { job: hollowJob('other', 'team-b', 1, 100), request_id: 'other-1' });
    const inA = await admin(1).call('jobs', 'ListJobs', { namespace: 'team-a' });
    expect(inA.jobs.map((j: { spec: { name: string; namespace: string } }) => [j.spec.name, j.spec.namespace])).toEqual([['greeter', 'team-a']]);
    expect(inA.jobs[0].tasks).toEqual([]);
    expect(inA.jobs[0].task_counts).toMatchObject({ succeeded: 1 });
    const inB = await admin(1).call('jobs', 'ListJobs', { namespace: 'team-b', include_tasks: true });
    expect(inB.jobs.map((j: { id: string }) => j.id)).toEqual([other.job_id]);
    expect(inB.jobs[0].tasks).toHaveLength(1);
    const all = await admin(0).call('jobs', 'ListJobs', {});
    expect(all.jobs.map((j: { id: string }) => j.id)).toContain(other.job_id);

    const teamA = client(0, (await admin().call('access', 'CreateToken', { name: 'team-a-viewer', role: 'ROLE_READ', namespaces: ['team-a'] })).secret);
    const seen = await teamA.call('jobs', 'ListJobs', {});
    expect(seen.jobs.map((j: { spec: { namespace: string } }) => j.spec.namespace)).toEqual(['team-a']);
    const forbidden = await refusal(teamA.call('jobs', 'ListJobs', { namespace: 'team-b' }));
    expect(forbidden.code).toBe(grpc.status.PERMISSION_DENIED);
    const notTheirs = await refusal(teamA.call('jobs', 'GetJob', { job_id: other.job_id }));
    expect(notTheirs.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await teamA.call('namespaces', 'ListNamespaces', {})).namespaces.map((n: { name: string }) => n.name)).toEqual(['team-a']);
  });

  it('watches a running job while it is killed: the stream ends with the job killed', async () => {
    const submitted = await admin().call('jobs', 'SubmitJob', { job: hollowJob('long', 'team-b', 2, 600_000), request_id: 'long-1' });
    const id = submitted.job_id as string;
    let killed: Promise<any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
    const watch = admin(1).stream('WatchJob', { job_id: id }, (event: { job: { state: string } }) => {
      if (killed === undefined && event.job.state === 'JOB_VIEW_STATE_RUNNING') killed = admin(0).call('jobs', 'KillJob', { job_id: id });
    });
    const events = await watch;
    expect(events.error).toBeUndefined();
    expect(killed).toBeDefined();
    expect((await killed).job).toMatchObject({ id, kill_requested: true });
    expect(events.messages.at(-1).job).toMatchObject({ id, state: 'JOB_VIEW_STATE_KILLED', kill_requested: true });

    // A hollow task runs no process: GetTaskLogs says so, as `omega logs` shows it.
    const logs = await admin(0).stream('GetTaskLogs', { job_id: id, index: 0, stream: 'STREAM_STDOUT' });
    expect([logs.messages, logs.error?.code, logs.error?.details]).toEqual([[], grpc.status.FAILED_PRECONDITION, expect.stringMatching(/^machine hollow-\d+ has no logs for task .*: it is a hollow machine \(tasks run no processes\)$/)]);
  }, 120_000);

  it('lists the machines and the schedulers', async () => {
    const machines = (await admin(1).call('cells', 'ListMachines', {})).machines as { id: string; alive: boolean; hollow: boolean; attributes: Record<string, string>; capacity: { cpu_millis: string } }[];
    expect(machines.map((m) => [m.id, m.alive, m.hollow, m.attributes.pool, m.capacity.cpu_millis]).sort()).toEqual([
      ['hollow-0000', true, true, 'hollow', '1000'],
      ['hollow-0001', true, true, 'hollow', '1000'],
      [REAL_MACHINE, true, false, 'real', '4000'],
    ]);
    const stats = await eventually('the scheduler to publish its stats', async () => {
      const reply = await admin(0).call('cells', 'GetSchedulerStats', {});
      return reply.schedulers.find((s: { name: string; jobs_placed: string }) => s.name === 'batch-0' && Number(s.jobs_placed) > 0);
    }, 60_000);
    expect(stats).toMatchObject({ name: 'batch-0', kind: 'batch' });
    expect(Number(stats.claims_committed)).toBeGreaterThan(0);
  }, 90_000);

  it('sets and gets a quota; a submit over it is RESOURCE_EXHAUSTED and stores nothing', async () => {
    const set = await admin().call('namespaces', 'SetQuota', { namespace: 'team-q', quota: { cpu_millis: 500, memory_bytes: 0, tasks: 4 } });
    expect(set).toMatchObject({ name: 'team-q', has_quota: true, quota: { cpu_millis: '500', memory_bytes: '0', tasks: 4 } });
    await admin(1).call('jobs', 'SubmitJob', { job: hollowJob('fits', 'team-q', 2, 600_000, 200), request_id: 'fits-1' });
    const got = await admin(1).call('namespaces', 'GetQuota', { namespace: 'team-q' });
    expect(got).toMatchObject({ name: 'team-q', has_quota: true, quota: { cpu_millis: '500', tasks: 4 }, used: { cpu_millis: '400', memory_bytes: String(2 * HOLLOW_TASK_MEMORY), tasks: 2 } });

    const over = await refusal(admin(0).call('jobs', 'SubmitJob', { job: hollowJob('over', 'team-q', 1, 600_000, 200), request_id: 'over-1' }));
    expect([over.code, over.details]).toEqual([grpc.status.RESOURCE_EXHAUSTED, 'namespace "team-q": cpu 200m requested + 400m in use exceeds the quota of 500m']);
    expect((await admin(1).call('jobs', 'ListJobs', { namespace: 'team-q' })).jobs.map((j: { spec: { name: string } }) => j.spec.name)).toEqual(['fits']);

    const below = await refusal(admin(0).call('namespaces', 'SetQuota', { namespace: 'team-q', quota: { cpu_millis: 300 } }));
    expect([below.code, below.details]).toEqual([grpc.status.FAILED_PRECONDITION, 'quota.cpu_millis: namespace "team-q": cpu quota of 300m is below the 400m in use; nothing was changed']);
    expect((await admin(1).call('namespaces', 'GetQuota', { namespace: 'team-q' })).quota).toMatchObject({ cpu_millis: '500' });
    const unknown = await refusal(admin(0).call('namespaces', 'GetQuota', { namespace: 'nowhere' }));
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
  });

  it('submits a job, gets it, lists it and kills it', async () => {
    const job = {
      name: 'proto-client',
      kind: 'JOB_KIND_BATCH',
      instances: 2,
      // More memory than any machine has: the job stays unplaced.
      task: { command: ['sh', '-c', 'echo hi'], resources: { cpu_millis: '250', memory_bytes: String(64 * 1024 * MiB) }, env: { GREETING: 'hi' } },
      constraints: [{ attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_IN', values: ['a', 'b'] }],
    };
    const submitted = await admin().call('jobs', 'SubmitJob', { job, request_id: 'proto-client-1' });
    expect(submitted).toEqual({ job_id: expect.stringMatching(/^proto-client-[0-9a-z]+$/), created: true });
    const id = submitted.job_id as string;

    const view = await admin().call('jobs', 'GetJob', { job_id: id });
    expect(view).toMatchObject({
      id,
      kill_requested: false,
      spec: {
        name: 'proto-client',
        namespace: 'default',
        kind: 'JOB_KIND_BATCH',
        instances: 2,
        task: { resources: { cpu_millis: '250' }, env: { GREETING: 'hi' }, secret_env_names: [] },
        constraints: [{ attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_IN', values: ['a', 'b'] }],
      },
    });
    expect(['JOB_VIEW_STATE_PENDING', 'JOB_VIEW_STATE_UNSCHEDULABLE']).toContain(view.state);
    expect(view.tasks.map((t: { state: string }) => t.state)).toEqual(['TASK_VIEW_STATE_PENDING', 'TASK_VIEW_STATE_PENDING']);

    const listed = await admin().call('jobs', 'ListJobs', { namespace: 'default' });
    expect(listed.jobs.map((j: { id: string }) => j.id)).toEqual([id]);

    const killed = await admin().call('jobs', 'KillJob', { job_id: id });
    expect(killed.job).toMatchObject({ id, kill_requested: true, state: 'JOB_VIEW_STATE_KILLED' });
  });

  it('answers a malformed spec with INVALID_ARGUMENT naming the proto field', async () => {
    const error = await refusal(admin().call('jobs', 'SubmitJob', { job: { name: 'x', kind: 'JOB_KIND_SERVICE', instances: 1, task: { command: ['true'], resources: { cpu_millis: 0, memory_bytes: 1 } } } }));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('job.task.resources.cpu_millis: must be > 0');
    const badSecret = await refusal(admin().call('jobs', 'SubmitJob', { job: { ...hollowJob('x', 'default', 1, 100), task: { ...hollowJob('x', 'default', 1, 100).task, secret_env: { 'not a name': SECRET } } } }));
    expect([badSecret.code, badSecret.details]).toEqual([grpc.status.INVALID_ARGUMENT, expect.stringMatching(/^job\.task\.secret_env/)]);
    expect(badSecret.details).not.toContain(SECRET);
    const unknownNamespace = await refusal(admin().call('jobs', 'SubmitJob', { job: hollowJob('x', 'nowhere', 1, 100) }));
    expect([unknownNamespace.code, unknownNamespace.details]).toEqual([grpc.status.NOT_FOUND, expect.stringContaining('job.namespace')]);
    const missing = await refusal(admin().call('jobs', 'GetJob', { job_id: 'no-such-job' }));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
  });

  it('reads on one API server what was written through another, and never makes two jobs of one request id', async () => {
    const job = { name: 'shared', kind: 'JOB_KIND_SERVICE', instances: 1, task: { command: ['sleep', '1000'], resources: { cpu_millis: 100, memory_bytes: 1048576 } } };
    const first = await admin(0).call('jobs', 'SubmitJob', { job, request_id: 'shared-1' });
    expect((await admin(1).call('jobs', 'GetJob', { job_id: first.job_id })).id).toBe(first.job_id);
    const again = await admin(1).call('jobs', 'SubmitJob', { job, request_id: 'shared-1' });
    expect(again).toEqual({ job_id: first.job_id, created: false });
  });

  it('loses nothing when an API server restarts', async () => {
    const before = (await admin(1).call('jobs', 'ListJobs', {})).jobs.map((j: { id: string }) => j.id);
    expect(before.length).toBeGreaterThan(0);
    await servers[1]?.stop();
    const { started, address } = await startApi(addresses[1] as string);
    servers[1] = started;
    expect(address).toBe(addresses[1]);
    const after = await eventually('the restarted server to answer', () => admin(1).call('jobs', 'ListJobs', {}).then((r) => r.jobs.map((j: { id: string }) => j.id), () => undefined), 30_000);
    expect(after).toEqual(before);
  });

  it('never returned the secret value, and no process logged it', () => {
    expect(replies.length).toBeGreaterThan(20);
    for (const reply of replies) expect(reply).not.toContain(SECRET);
    for (const p of processes) expect(p.output()).not.toContain(SECRET);
  });
});
