/**
 * Secret env values on a real etcd with client certificates and the cell's roles: the API
 * stores them (write-only) with the job, only agents read them back, schedulers cannot read
 * them and delete them with the job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_USER, Cell, CellKeys, EtcdKv, KvPermissionDeniedError, RequestIdReusedError, SCHEDULER_USER, agentUser, jobId, type KvStore } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { startSecureEtcd, type SecureEtcd } from './support/secure-etcd.js';

const CELL = 'secrets';
const keys = new CellKeys(CELL);
const SECRET = 'etcd-held-s3cret';

let secure: SecureEtcd;
const stores: KvStore[] = [];

function cellAs(user: string): Cell {
  const kv = new EtcdKv({ endpoints: secure.endpoints, tls: secure.pki.identity(user), probeKey: keys.root, dialTimeoutMs: 10_000 });
  stores.push(kv);
  return new Cell(kv, CELL);
}

beforeAll(async () => {
  secure = await startSecureEtcd({ cell: CELL, agents: ['m1'] });
});

afterAll(async () => {
  await Promise.all(stores.map((kv) => kv.close()));
  await secure?.stop();
});

describe('secret env values under etcd roles', () => {
  it('the API stores them with the job and cannot read them back; an agent reads them; a scheduler cannot, and deletes them with the job', async () => {
    const api = cellAs(API_USER);
    const agent = cellAs(agentUser('m1'));
    const scheduler = cellAs(SCHEDULER_USER);
    const id = jobId('with-secret');
    const { job, created } = await api.createJob({ id, spec: jobSpec('with-secret').build(), requestId: 'req-1', secretEnv: { TOKEN: SECRET } });
    expect(created).toBe(true);
    expect(job.spec.task.secretEnvNames).toEqual(['TOKEN']);

    // A repeat through another API server: recognised (same values) or refused (other values).
    const other = cellAs(API_USER);
    expect((await other.createJob({ id: jobId('with-secret-2'), spec: jobSpec('with-secret').build(), requestId: 'req-1', secretEnv: { TOKEN: SECRET } })).created).toBe(false);
    await expect(other.createJob({ id: jobId('with-secret-2'), spec: jobSpec('with-secret').build(), requestId: 'req-1', secretEnv: { TOKEN: 'changed' } })).rejects.toBeInstanceOf(RequestIdReusedError);

    await expect(api.readSecretEnv(id)).rejects.toBeInstanceOf(KvPermissionDeniedError);
    await expect(scheduler.readSecretEnv(id)).rejects.toBeInstanceOf(KvPermissionDeniedError);
    expect(await agent.readSecretEnv(id)).toEqual({ TOKEN: SECRET });
    // The digest key sits with the credentials: no agent or scheduler reads it.
    await expect(agent.kv.range({ key: keys.secretDigestKey })).rejects.toBeInstanceOf(KvPermissionDeniedError);
    await expect(scheduler.kv.range({ key: keys.secretDigestKey })).rejects.toBeInstanceOf(KvPermissionDeniedError);

    await scheduler.putJobStatus({ jobId: id, state: 'succeeded', reason: '', ruledOut: [], attempts: 1, scheduler: 's1', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const status = (await scheduler.kv.range({ key: keys.status(id) })).kvs[0];
    const result = await scheduler.deleteJob({ jobId: id, jobRevision: job.revision, statusRevision: status?.modRevision ?? 0 });
    expect(result.outcome).toBe('deleted');
    expect(await agent.readSecretEnv(id)).toBeUndefined();
  });
});
