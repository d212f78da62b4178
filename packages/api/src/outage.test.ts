import { status } from '@grpc/grpc-js';
import { jobId, MemoryKv, type KvStore } from '@omega/cell-state';
import { outageKv, replayingKv } from '@omega/cell-state/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

const job = (name = 'hello') => ({
  name,
  kind: 'JOB_KIND_BATCH',
  instances: 1,
  task: { command: ['true'], resources: { cpu_millis: 100, memory_bytes: 64 * 1024 * 1024 } },
});

/** Short budgets so an outage is answered quickly; the assertions are on codes, never on time. */
const FAST = { storeTimeoutMs: 300, watchProbeMs: 100, mirrorRetry: { initialBackoffMs: 20, maxBackoffMs: 100 } } as const;

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function jobKeys(kv: KvStore): Promise<string[]> {
  return (await kv.range({ key: '/omega/test/jobs/', prefix: true })).kvs.map((kv) => kv.key);
}

describe('SubmitJob through a store that loses replies', () => {
  it('leaves one job for a submit without a request id whose create etcd3 resent', async () => {
    const inner = new MemoryKv();
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn' && w.request.success.some((op) => op.type === 'put' && op.key.includes('/jobs/')) });
    api = await startTestApi({ kv });
    const reply = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job() });
    expect(counters.replayed).toBe(1);
    expect(reply.created).toBe(true);
    expect(await jobKeys(inner)).toEqual([`/omega/test/jobs/${reply.job_id}`]);
    // The server made a request id for the call and recorded it with the job.
    expect((await api.cell.getJob(jobId(reply.job_id)))?.requestId).toMatch(/^srv-/);
  });

  it('leaves one job when the reply was lost and the API server retried the create itself', async () => {
    const inner = new MemoryKv();
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn', limit: 1, lose: 'throw' });
    api = await startTestApi({ kv });
    const reply = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job() });
    expect(counters.replayed).toBe(1);
    expect(reply.created).toBe(true);
    expect(await jobKeys(inner)).toHaveLength(1);
  });
});

describe('the API server while the store is unreachable', () => {
  it('answers every call UNAVAILABLE while the store hangs, then serves again when it is back', async () => {
    const outage = outageKv(new MemoryKv());
    api = await startTestApi({ kv: outage.kv, server: FAST });
    const before = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: job() });
    outage.stop();
    const refused = await Promise.all([
      refusal(api.client.unary('jobs', 'GetJob', { job_id: before.job_id })),
      refusal(api.client.unary('jobs', 'ListJobs', {})),
      refusal(api.client.unary('jobs', 'KillJob', { job_id: before.job_id })),
      refusal(api.client.unary('jobs', 'SubmitJob', { job: job() })),
      refusal(api.client.unary('cells', 'ListMachines', {})),
    ]);
    expect(refused.map((e) => e.code)).toEqual(refused.map(() => status.UNAVAILABLE));
    expect(refused[0]?.details).toMatch(/the cell store \(etcd\) did not answer within 300 ms/);
    // A submit without a request id says which one to retry with, so a retry cannot make a second job.
    expect(refused[3]?.details).toMatch(/may or may not have been created.*retry with request_id "srv-[0-9a-f-]+"/);
    outage.resume();
    const after = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job('after') });
    expect(after.created).toBe(true);
    expect((await api.client.unary<{ id: string }>('jobs', 'GetJob', { job_id: after.job_id })).id).toBe(after.job_id);
  });

  it('answers UNAVAILABLE when the store refuses connections, retrying a submit within its budget', async () => {
    const outage = outageKv(new MemoryKv());
    api = await startTestApi({ kv: outage.kv, server: FAST });
    outage.refuse();
    const error = await refusal(api.client.unary('jobs', 'SubmitJob', { job: job(), request_id: 'mine' }));
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.details).toMatch(/retry with the same request_id$/);
    outage.resume();
    expect(await api.client.unary('jobs', 'SubmitJob', { job: job(), request_id: 'mine' })).toMatchObject({ created: true });
  });

  it('listens before the store answers, serves UNAVAILABLE, and lists the cell once the store is back', async () => {
    const outage = outageKv(new MemoryKv());
    outage.refuse();
    api = await startTestApi({ kv: outage.kv, server: FAST });
    expect(await api.server.whenReady(0)).toBe(false);
    const error = await refusal(api.client.unary('jobs', 'ListJobs', {}));
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.details).toMatch(/has not read the cell from etcd yet/);
    outage.resume();
    expect(await api.server.whenReady(10_000)).toBe(true);
    expect(await api.client.unary('jobs', 'ListJobs', {})).toMatchObject({ jobs: [] });
  });

  it('ends an open WatchJob with UNAVAILABLE when the store stops answering', async () => {
    const outage = outageKv(new MemoryKv());
    api = await startTestApi({ kv: outage.kv, server: FAST });
    const submitted = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: job() });
    let first: () => void = () => undefined;
    const gotFirst = new Promise<void>((resolve) => (first = resolve));
    const watching = api.client.stream('WatchJob', { job_id: submitted.job_id }, () => first());
    await gotFirst;
    outage.stop();
    const { messages, error } = await watching;
    expect(messages).toHaveLength(1);
    expect(error?.code).toBe(status.UNAVAILABLE);
    expect(error?.details).toMatch(/stopped answering; watch again/);
    outage.resume();
  });
});
