/**
 * etcd's TLS and role-based access on a real etcd started with `--client-cert-auth` and auth
 * enabled by `setupCellAccess`: every client below acts as the user its certificate names.
 */
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_USER,
  Cell,
  CellKeys,
  EtcdKv,
  HOLLOW_USER,
  KvPermissionDeniedError,
  KvUnavailableError,
  SCHEDULER_USER,
  agentUser,
  isPermanentStoreError,
  jobId,
  machineId,
  setupCellAccess,
  startEtcdCluster,
  taskId,
  type KvStore,
} from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { startSecureEtcd, type SecureEtcd } from './support/secure-etcd.js';

const CELL = 'secure';
const keys = new CellKeys(CELL);
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const registration = (id: string) => ({ id: machineId(id), capacity: { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30 }, attributes: {} });

let secure: SecureEtcd;
const stores: KvStore[] = [];

/** A store acting as `user` (its certificate's CN). */
function storeAs(user: string, options: { dialTimeoutMs?: number } = {}): EtcdKv {
  const kv = new EtcdKv({ endpoints: secure.endpoints, tls: secure.pki.identity(user), probeKey: keys.root, dialTimeoutMs: options.dialTimeoutMs ?? 10_000 });
  stores.push(kv);
  return kv;
}

async function refusal(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('the call was not refused');
}

beforeAll(async () => {
  secure = await startSecureEtcd({ cell: CELL, agents: ['m1', 'm2'], hollow: true, hollowPrefix: 'hollow' });
  const root = storeAs('root');
  await root.put(keys.secret(jobId('j1')), bytes('s3cret'));
  await root.put(keys.token('admin'), bytes('hash'));
});

afterAll(async () => {
  await Promise.all(stores.map((kv) => kv.close()));
  await secure?.stop();
});

describe('etcd with client certificates and roles', () => {
  it('setting the access up again creates and changes nothing', async () => {
    const again = await setupCellAccess({ endpoints: secure.endpoints, root: secure.pki.identity('root') }, CELL, { agents: ['m1', 'm2'], hollow: true, hollowPrefix: 'hollow' });
    expect(again.created).toEqual([]);
    expect(again.changed).toEqual([]);
  });

  it('refuses a client that presents no certificate', async () => {
    const answer = await new Promise<string>((resolve) => {
      const req = request(`${secure.endpoints[0]}/v3/kv/range`, { method: 'POST', ca: readFileSync(secure.pki.caFile), timeout: 5_000 }, (res) => resolve(`answered ${res.statusCode}`));
      req.on('error', (error) => resolve(`refused: ${error.message}`));
      req.end('{"key":"AA=="}');
    });
    expect(answer).toMatch(/^refused/);
  });

  it('refuses a certificate from another CA', async () => {
    const foreign = await secure.pki.foreign(SCHEDULER_USER);
    // The cell's CA to verify etcd, but a certificate etcd did not issue.
    const tls = { ca: readFileSync(secure.pki.caFile), cert: readFileSync(foreign.certFile), key: readFileSync(foreign.keyFile) };
    const kv = new EtcdKv({ endpoints: secure.endpoints, tls, dialTimeoutMs: 2_000 });
    stores.push(kv);
    expect(await refusal(() => kv.range({ key: keys.root, prefix: true }))).toBeInstanceOf(KvUnavailableError);
  });

  it('a plaintext client cannot talk to the TLS etcd', async () => {
    const kv = new EtcdKv({ endpoints: secure.endpoints.map((url) => url.replace('https://', 'http://')), dialTimeoutMs: 2_000 });
    stores.push(kv);
    expect(await refusal(() => kv.range({ key: keys.root, prefix: true }))).toBeInstanceOf(KvUnavailableError);
  });

  it('the scheduler reads and writes the cell but cannot read credentials or secrets', async () => {
    const kv = storeAs(SCHEDULER_USER);
    await kv.put(keys.status(jobId('j1')), bytes('{}'));
    expect((await kv.range({ key: keys.root, prefix: true })).kvs.length).toBeGreaterThan(0);
    for (const prefix of [keys.authRoot, keys.secretsRoot, keys.tokensPrefix]) {
      const error = await refusal(() => kv.range({ key: prefix, prefix: true }));
      expect(error).toBeInstanceOf(KvPermissionDeniedError);
      expect((error as KvPermissionDeniedError).retryable).toBe(false);
      expect(isPermanentStoreError(error)).toBe(true);
      expect((error as Error).message).toContain(`${prefix}*`);
    }
    expect(await refusal(() => kv.range({ key: keys.secret(jobId('j1')) }))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => kv.put(keys.token('mine'), bytes('x')))).toBeInstanceOf(KvPermissionDeniedError);
    // Write-only on secrets: it deletes a job's secrets with the job.
    await kv.delete(keys.secret(jobId('gone')));
    // Another cell of the same etcd is not its business.
    expect(await refusal(() => kv.range({ key: '/omega/other/', prefix: true }))).toBeInstanceOf(KvPermissionDeniedError);
  });

  it('logs a refusal once per key range, however often the caller retries it', async () => {
    const lines: { msg: string; keys?: string[] }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const kv = new EtcdKv({ endpoints: secure.endpoints, tls: secure.pki.identity(SCHEDULER_USER), probeKey: keys.root, logger });
    stores.push(kv);
    for (let i = 0; i < 3; i++) await refusal(() => kv.range({ key: keys.secretsRoot, prefix: true }));
    await refusal(() => kv.range({ key: keys.authRoot, prefix: true }));
    const refusals = lines.filter((line) => line.msg === "etcd refused a request: this identity's role does not allow these keys");
    expect(refusals.map((line) => line.keys)).toEqual([[`${keys.secretsRoot}*`], [`${keys.authRoot}*`]]);
  });

  it('the API server writes secrets but cannot read them back, and owns the credentials', async () => {
    const kv = storeAs(API_USER);
    await kv.put(keys.secret(jobId('j2')), bytes('value'));
    expect(await refusal(() => kv.range({ key: keys.secret(jobId('j2')) }))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => kv.range({ key: keys.secretsRoot, prefix: true }))).toBeInstanceOf(KvPermissionDeniedError);
    await kv.put(keys.token('ops'), bytes('hash'));
    expect((await kv.range({ key: keys.tokensPrefix, prefix: true })).kvs.map((kv) => kv.key)).toContain(keys.token('ops'));
    await kv.put(keys.job(jobId('j2')), bytes('{}'));
  });

  it("an agent registers and heartbeats its own machine, not another's", async () => {
    const kv = storeAs(agentUser('m1'));
    const cell = new Cell(kv, CELL);
    await cell.registerMachine(registration('m1'));
    const heartbeat = await cell.startHeartbeat(machineId('m1'), { ttlSeconds: 5, agent: 'test' });
    expect((await kv.range({ key: keys.alive(machineId('m1')) })).kvs).toHaveLength(1);
    expect(await refusal(() => cell.registerMachine(registration('m2')))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => kv.put(keys.alive(machineId('m2')), bytes('{}')))).toBeInstanceOf(KvPermissionDeniedError);
    // machines/m1 is an exact key: machines/m10 is another machine's.
    expect(await refusal(() => kv.put(keys.machine(machineId('m10')), bytes('{}')))).toBeInstanceOf(KvPermissionDeniedError);
    // Task records are keyed by job, so any agent may write them.
    await kv.put(keys.task(taskId(jobId('j1'), 0)), bytes('{}'));
    // It reads the cell and the secrets of the cell's jobs, and writes neither jobs nor secrets.
    expect((await kv.range({ key: keys.secretsRoot, prefix: true })).kvs).not.toHaveLength(0);
    expect(await refusal(() => kv.put(keys.secret(jobId('j1')), bytes('x')))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => kv.put(keys.job(jobId('j1')), bytes('{}')))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => kv.range({ key: keys.authRoot, prefix: true }))).toBeInstanceOf(KvPermissionDeniedError);
    await heartbeat.stop();
    expect((await kv.range({ key: keys.alive(machineId('m1')) })).kvs).toHaveLength(0);
  });

  it("a job's secret env goes in through the API and out only to agents, as the cell's own code writes and reads it", async () => {
    const api = new Cell(storeAs(API_USER), CELL);
    const id = jobId('with-secrets');
    const { created } = await api.createJob({ id, spec: jobSpec('with-secrets').build(), requestId: 'req-secrets', secretEnv: { PASSWORD: 'hunter2' } });
    expect(created).toBe(true);
    expect(await new Cell(storeAs(agentUser('m1')), CELL).readSecretEnv(id)).toEqual({ PASSWORD: 'hunter2' });
    expect(await refusal(() => new Cell(storeAs(SCHEDULER_USER), CELL).readSecretEnv(id))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => api.readSecretEnv(id))).toBeInstanceOf(KvPermissionDeniedError);
  });

  it('the hollow agent writes the machines of its prefix only', async () => {
    const kv = storeAs(HOLLOW_USER);
    const cell = new Cell(kv, CELL);
    await cell.registerMachines([registration('hollow-0000'), registration('hollow-0001')]);
    expect(await refusal(() => cell.registerMachine(registration('m1')))).toBeInstanceOf(KvPermissionDeniedError);
    expect(await refusal(() => kv.put(keys.alive(machineId('m2')), bytes('{}')))).toBeInstanceOf(KvPermissionDeniedError);
  });

  it.each([API_USER, SCHEDULER_USER, agentUser('m2'), HOLLOW_USER])('%s grants, keeps alive and revokes a lease with its key', async (user) => {
    const kv = storeAs(user);
    const key = user === API_USER ? keys.job(jobId('leased')) : user === SCHEDULER_USER ? keys.owner(jobId('leased')) : user === HOLLOW_USER ? keys.alive(machineId('hollow-0002')) : keys.alive(machineId('m2'));
    const lease = await kv.grantLease(5, { autoKeepAlive: true });
    await kv.put(key, bytes('{}'), { lease: lease.id });
    expect((await kv.range({ key })).kvs[0]?.lease).toBe(lease.id);
    await lease.revoke();
    expect((await kv.range({ key })).kvs).toHaveLength(0);
    // The revision probe reads the cell's root, which every identity may read.
    expect(await kv.currentRevision()).toBeGreaterThan(0);
  });

  it('a second setup with another table widens and narrows the roles to it', async () => {
    const target = { endpoints: secure.endpoints, root: secure.pki.identity('root') };
    const widened = await setupCellAccess(target, CELL, { agents: ['m1', 'm2'], hollow: true });
    expect(widened.changed).toEqual(
      expect.arrayContaining([`${HOLLOW_USER} -readwrite ${keys.prefix('machines')}hollow-*`, `${HOLLOW_USER} +readwrite ${keys.prefix('machines')}*`]),
    );
    await storeAs(HOLLOW_USER).put(keys.alive(machineId('m1')), bytes('{}'));
    const narrowed = await setupCellAccess(target, CELL, { agents: ['m1', 'm2'], hollow: true, hollowPrefix: 'hollow' });
    expect(narrowed.changed).toContain(`${HOLLOW_USER} -readwrite ${keys.prefix('alive')}*`);
    expect(await refusal(() => storeAs(HOLLOW_USER).put(keys.alive(machineId('m1')), bytes('{}')))).toBeInstanceOf(KvPermissionDeniedError);
  });
});

describe('a TLS etcd cluster from the launcher', () => {
  it('serves https:// on every member, elects a leader and lists its members', async () => {
    const cluster = await startEtcdCluster({ members: 3, tls: secure.pki.files('etcd') });
    try {
      expect(cluster.endpoints.every((url) => url.startsWith('https://127.0.0.1:'))).toBe(true);
      expect(await eventuallyDefined(() => cluster.leader())).toBeDefined();
      expect(await cluster.memberList()).toHaveLength(3);
      const kv = new EtcdKv({ endpoints: cluster.endpoints, tls: secure.pki.identity('root') });
      stores.push(kv);
      await kv.put('/omega/x/k', bytes('v'));
      expect((await kv.range({ key: '/omega/x/k' })).kvs).toHaveLength(1);
      const plain = new EtcdKv({ endpoints: cluster.endpoints.map((url) => url.replace('https://', 'http://')), dialTimeoutMs: 2_000 });
      stores.push(plain);
      expect(await refusal(() => plain.range({ key: '/omega/x/k' }))).toBeInstanceOf(KvUnavailableError);
    } finally {
      await cluster.stop();
    }
  });
});

async function eventuallyDefined<T>(read: () => Promise<T | undefined>): Promise<T | undefined> {
  for (let i = 0; i < 100; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}
