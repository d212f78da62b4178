/**
 * Bearer tokens and roles on a secured etcd (TLS, `--client-cert-auth`, the cell's etcd roles),
 * through two API server processes serving TLS with their own certificate (CN `omega-api`): a
 * call without a token is refused, a read token cannot submit, a token of namespace `a` neither
 * sees nor kills the jobs of `b`, and a token revoked or expired through one server is refused
 * at once by the other (each call reads the token from etcd).
 */
import { readFileSync } from 'node:fs';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { ApiTestClient, refusal } from '@omega/api/testing';
import { CellKeys, EtcdKv, createNamespace, createToken } from '@omega/cell-state';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, repoPath, startNode, type Started } from './support/processes.js';
import { startSecureEtcd, type SecureEtcd } from './support/secure-etcd.js';

const CELL = 'tokens';
const API = repoPath('packages/api/dist/main.js');

let secure: SecureEtcd;
const servers: Started[] = [];
const clients: ApiTestClient[] = [];
let addresses: string[] = [];
let admin: ApiTestClient[] = [];

const job = (namespace: string) => ({
  name: 'hello',
  namespace,
  kind: 'JOB_KIND_BATCH',
  instances: 1,
  task: { command: ['true'], resources: { cpu_millis: 100, memory_bytes: 64 * 1024 * 1024 } },
});

/** A TLS client of API server `i` (0 or 1) sending `token` (or none). */
function client(i: number, token: string | undefined): ApiTestClient {
  const tls = credentials.createSsl(readFileSync(secure.pki.caFile));
  const made = new ApiTestClient(addresses[i] as string, token === undefined ? { credentials: tls } : { credentials: tls, token });
  clients.push(made);
  return made;
}

async function token(name: string, role: string, namespaces: string[], ttlMs = 0): Promise<string> {
  const created = await (admin[0] as ApiTestClient).unary<{ secret: string }>('access', 'CreateToken', { name, role, namespaces, ttl_ms: ttlMs });
  return created.secret;
}

beforeAll(async () => {
  secure = await startSecureEtcd({ cell: CELL, agents: [] });
  const root = new EtcdKv({ endpoints: secure.endpoints, tls: secure.pki.identity('root') });
  let adminToken: string;
  try {
    const keys = new CellKeys(CELL);
    await createNamespace(root, keys, 'a', Date.now());
    await createNamespace(root, keys, 'b', Date.now());
    const created = await createToken(root, keys, { name: 'test-admin', role: 'admin', namespaces: [] });
    if (created.outcome !== 'created') throw new Error('the admin token existed already');
    adminToken = created.token;
  } finally {
    await root.close();
  }
  for (let i = 0; i < 2; i++) {
    const { started, match } = await startNode(API, [...secure.processFlags('omega-api'), '--cell', CELL, '--listen', '127.0.0.1:0', '--log-level', 'info'], /omega-api listening on (\S+)/);
    servers.push(started);
    addresses.push(match[1] as string);
  }
  admin = [client(0, adminToken), client(1, adminToken)];
  // The servers list their mirrors in the background: wait until both answer.
  for (const c of admin) await eventually('the API server to answer', () => c.unary('jobs', 'ListJobs', {}).then(() => true, () => false), 30_000);
}, 120_000);

afterAll(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await secure?.stop();
  addresses = [];
});

describe('bearer tokens on a secured cell, through two API servers', () => {
  it('refuses a call without a token, and one with a malformed token', async () => {
    const none = await refusal(client(0, undefined).unary('jobs', 'ListJobs', {}));
    expect(none.code).toBe(status.UNAUTHENTICATED);
    expect(none.details).toMatch(/^missing credentials/);
    const malformed = await refusal(client(1, 'omg1.x.not-a-secret').unary('cells', 'ListMachines', {}));
    expect([malformed.code, malformed.details]).toEqual([status.UNAUTHENTICATED, "malformed bearer token: the token's secret is not 32 bytes of unpadded base64url"]);
  });

  it('lets a read token read but not submit', async () => {
    const reader = client(1, await token('reader', 'ROLE_READ', ['a']));
    expect(await reader.unary('access', 'WhoAmI', {})).toMatchObject({ name: 'reader', role: 'ROLE_READ', namespaces: ['a'] });
    expect(await reader.unary('jobs', 'ListJobs', {})).toMatchObject({ jobs: [] });
    const error = await refusal(reader.unary('jobs', 'SubmitJob', { job: job('a') }));
    expect([error.code, error.details]).toEqual([status.PERMISSION_DENIED, 'token "reader" (role read) may not submit jobs: that needs role submit']);
  });

  it('keeps a token of namespace a from seeing or killing the jobs of b', async () => {
    const secret = await token('team-a', 'ROLE_SUBMIT', ['a']);
    const own = await client(0, secret).unary<{ job_id: string }>('jobs', 'SubmitJob', { job: job('a') });
    const theirs = await (admin[0] as ApiTestClient).unary<{ job_id: string }>('jobs', 'SubmitJob', { job: job('b') });
    const teamA = client(1, secret);
    const denied = 'token "team-a" (namespaces "a") may not read jobs in namespace "b": it is not one of its namespaces';
    const got = await refusal(teamA.unary('jobs', 'GetJob', { job_id: theirs.job_id }));
    expect([got.code, got.details]).toEqual([status.PERMISSION_DENIED, denied]);
    const watched = await teamA.stream('WatchJob', { job_id: theirs.job_id });
    expect(watched.messages).toEqual([]);
    expect([watched.error?.code, watched.error?.details]).toEqual([status.PERMISSION_DENIED, denied]);
    const killed = await refusal(teamA.unary('jobs', 'KillJob', { job_id: theirs.job_id }));
    expect(killed.code).toBe(status.PERMISSION_DENIED);
    const listed = await teamA.unary<{ jobs: { id: string }[] }>('jobs', 'ListJobs', {});
    expect(listed.jobs.map((j) => j.id)).toEqual([own.job_id]);
    const view = await (admin[1] as ApiTestClient).unary<{ kill_requested: boolean }>('jobs', 'GetJob', { job_id: theirs.job_id });
    expect(view.kill_requested).toBe(false);
  });

  it('refuses a token revoked through one server on the other at once', async () => {
    const secret = await token('short-lived', 'ROLE_READ', ['*']);
    const elsewhere = client(1, secret);
    expect(await elsewhere.unary('access', 'WhoAmI', {})).toMatchObject({ name: 'short-lived' });
    await (admin[0] as ApiTestClient).unary('access', 'RevokeToken', { name: 'short-lived' });
    const error = await refusal(elsewhere.unary('access', 'WhoAmI', {}));
    expect([error.code, error.details]).toEqual([status.UNAUTHENTICATED, 'token "short-lived" is not valid (unknown, revoked, or not its secret)']);
  });

  it('refuses an expired token on both servers', async () => {
    const secret = await token('expiring', 'ROLE_READ', ['a'], 1_500);
    const both = [client(0, secret), client(1, secret)];
    // Once it has expired (the servers judge by their own clocks), every call is refused.
    const refused = await eventually(
      'the token to expire',
      async () => {
        const errors = await Promise.all(both.map((c) => c.unary('access', 'WhoAmI', {}).then(() => undefined, (e: ServiceError) => e)));
        return errors.every((e) => e?.code === status.UNAUTHENTICATED) ? errors : undefined;
      },
      30_000,
    );
    for (const error of refused) expect(error?.details).toMatch(/^token "expiring" expired at \d{4}-\d\d-\d\dT/);
  });
});
