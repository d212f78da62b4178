import { describe, expect, it } from 'vitest';
import { Cell, JobIdTakenError } from './cell.js';
import { decodeRequestRecord, encodeRequestRecord } from './codec.js';
import type { KvStore } from './kv.js';
import { MemoryKv } from './memory-kv.js';
import { DEFAULT_REQUEST_RETENTION_MS, RequestIdReusedError, RequestJobGoneError, specSha256 } from './request-records.js';
import { jobSpec, replayingKv } from './testing/index.js';
import { jobId, type JobId } from './types.js';

const HOUR = 60 * 60 * 1000;

function cellOn(kv: KvStore, now = () => 1_000): Cell {
  return new Cell(kv, 'test', { now });
}

async function count(kv: KvStore, segment: 'jobs' | 'requests'): Promise<number> {
  return (await kv.range({ key: `/omega/test/${segment}/`, prefix: true })).kvs.length;
}

describe('job creation through a store that loses replies', () => {
  const spec = jobSpec('hello').instances(2).build();

  it('leaves one job and answers created when the create is resent after it applied', async () => {
    const inner = new MemoryKv();
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn' });
    const result = await cellOn(kv).createJob({ id: jobId('j-1'), spec, requestId: 'req-1' });
    expect(counters.replayed).toBe(1);
    expect(result).toMatchObject({ created: true, job: { id: 'j-1', spec } });
    expect(await count(inner, 'jobs')).toBe(1);
    expect(await count(inner, 'requests')).toBe(1);
  });

  it('recognises its own create without a request id by the job record itself', async () => {
    const inner = new MemoryKv();
    const { kv } = replayingKv(inner, { replay: (w) => w.type === 'txn' });
    const result = await cellOn(kv).createJob({ id: jobId('j-1'), spec });
    expect(result).toMatchObject({ created: true, job: { id: 'j-1' } });
    expect(await count(inner, 'jobs')).toBe(1);
    // Another create of the same id (other time, so other bytes) is a genuine collision.
    await expect(cellOn(inner, () => 2_000).createJob({ id: jobId('j-1'), spec })).rejects.toThrow(JobIdTakenError);
  });

  it("answers created when the caller's own retry, with the same nonce, follows an unknown outcome", async () => {
    const inner = new MemoryKv();
    const { kv } = replayingKv(inner, { replay: (w) => w.type === 'txn', limit: 1, lose: 'throw' });
    const cell = cellOn(kv);
    const call = { id: jobId('j-1'), spec, requestId: 'req-1', nonce: 'nonce-1' };
    await expect(cell.createJob(call)).rejects.toMatchObject({ retryable: true });
    expect(await cell.createJob(call)).toMatchObject({ created: true, job: { id: 'j-1' } });
    expect(await count(inner, 'jobs')).toBe(1);
  });
});

describe('request ids', () => {
  const spec = jobSpec('hello').build();

  it('answers a repeat with the same spec with the first job, not created', async () => {
    const cell = cellOn(new MemoryKv());
    await cell.createJob({ id: jobId('j-1'), spec, requestId: 'req-1' });
    const again = await cell.createJob({ id: jobId('j-2'), spec: { ...spec }, requestId: 'req-1' });
    expect(again).toMatchObject({ created: false, job: { id: 'j-1' } });
    expect(await cell.getJob(jobId('j-2'))).toBeUndefined();
  });

  it('refuses a repeat with a different spec, naming the request id and the job, and writes nothing', async () => {
    const kv = new MemoryKv();
    const cell = cellOn(kv);
    await cell.createJob({ id: jobId('j-1'), spec, requestId: 'req-1' });
    const revision = await kv.currentRevision();
    const other = jobSpec('hello').instances(3).build();
    const error = await cell.createJob({ id: jobId('j-2'), spec: other, requestId: 'req-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestIdReusedError);
    expect((error as Error).message).toBe('request_id "req-1": already used for job j-1 with a different spec');
    expect(await kv.currentRevision()).toBe(revision);
  });

  it('hashes specs independently of key order and sensitively to argument order', () => {
    const a = jobSpec('x').build();
    const env = { ...a, task: { ...a.task, env: { A: '1', B: '2' } } };
    const envSwapped = { ...a, task: { ...a.task, env: { B: '2', A: '1' } } };
    expect(specSha256(env)).toBe(specSha256(envSwapped));
    const args = { ...a, task: { ...a.task, command: ['a', 'b'] } };
    const argsSwapped = { ...a, task: { ...a.task, command: ['b', 'a'] } };
    expect(specSha256(args)).not.toBe(specSha256(argsSwapped));
  });

  it('reads the bare job id older versions stored, comparing with the stored job spec', async () => {
    const kv = new MemoryKv();
    const cell = cellOn(kv);
    await cell.createJob({ id: jobId('j-1'), spec });
    await kv.put('/omega/test/requests/old', new TextEncoder().encode('j-1'));
    expect(decodeRequestRecord(new TextEncoder().encode('j-1'))).toEqual({ jobId: 'j-1', specSha256: '', nonce: '', createdAtMs: 0 });
    expect(await cell.createJob({ id: jobId('j-2'), spec, requestId: 'old' })).toMatchObject({ created: false, job: { id: 'j-1' } });
    await expect(cell.createJob({ id: jobId('j-3'), spec: jobSpec('other').build(), requestId: 'old' })).rejects.toThrow(RequestIdReusedError);
  });

  it('says clearly that the job of a used request id was deleted', async () => {
    const kv = new MemoryKv();
    const cell = cellOn(kv);
    await cell.createJob({ id: jobId('j-1'), spec, requestId: 'req-1' });
    await kv.delete('/omega/test/jobs/j-1');
    const error = await cell.createJob({ id: jobId('j-2'), spec, requestId: 'req-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestJobGoneError);
    expect((error as Error).message).toMatch(/^request_id "req-1": already used for job j-1, which has since been deleted/);
    expect(await count(kv, 'jobs')).toBe(0);
  });
});

describe('deleteExpiredRequests', () => {
  const spec = jobSpec('hello').build();

  async function submitAt(kv: KvStore, atMs: number, n: number, prefix = 'r'): Promise<void> {
    const cell = cellOn(kv, () => atMs);
    for (let i = 0; i < n; i++) await cell.createJob({ id: jobId(`${prefix}-job-${i}`) as JobId, spec, requestId: `${prefix}-${i}` });
  }

  it('deletes exactly the records at least the retention old, across pages, and keeps their jobs', async () => {
    const kv = new MemoryKv();
    await submitAt(kv, 1_000, 1_203, 'old');
    await submitAt(kv, 5 * HOUR, 3, 'new');
    const cell = cellOn(kv);
    expect(await cell.deleteExpiredRequests(1_000 + DEFAULT_REQUEST_RETENTION_MS - 1, DEFAULT_REQUEST_RETENTION_MS)).toBe(0);
    expect(await cell.deleteExpiredRequests(1_000 + DEFAULT_REQUEST_RETENTION_MS, DEFAULT_REQUEST_RETENTION_MS)).toBe(1_203);
    expect(await count(kv, 'requests')).toBe(3);
    expect(await count(kv, 'jobs')).toBe(1_206);
    expect(await cell.deleteExpiredRequests(1_000 + DEFAULT_REQUEST_RETENTION_MS, DEFAULT_REQUEST_RETENTION_MS)).toBe(0);
  });

  it('keeps a record rewritten between its read and its delete', async () => {
    const inner = new MemoryKv();
    await submitAt(inner, 1_000, 2);
    const key = '/omega/test/requests/r-0';
    // A store that rewrites r-0 right after the janitor's read of the page.
    const racing = new Proxy(inner, {
      get(target, property, receiver) {
        if (property === 'range') {
          return async (...args: Parameters<KvStore['range']>) => {
            const page = await target.range(...args);
            await target.put(key, encodeRequestRecord({ jobId: jobId('r-job-0'), specSha256: '', nonce: 'n', createdAtMs: 9_999 }));
            return page;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    expect(await cellOn(racing).deleteExpiredRequests(1_000 + HOUR, HOUR)).toBe(1);
    expect((await inner.range({ key })).kvs).toHaveLength(1);
  });

  it('gives a record of an older version a full retention from its first sweep', async () => {
    const kv = new MemoryKv();
    await kv.put('/omega/test/requests/legacy', new TextEncoder().encode('j-1'));
    const cell = cellOn(kv);
    expect(await cell.deleteExpiredRequests(10 * HOUR, HOUR)).toBe(0);
    const stamped = decodeRequestRecord((await kv.range({ key: '/omega/test/requests/legacy' })).kvs[0]!.value);
    expect(stamped).toEqual({ jobId: 'j-1', specSha256: '', nonce: '', createdAtMs: 10 * HOUR });
    expect(await cell.deleteExpiredRequests(11 * HOUR - 1, HOUR)).toBe(0);
    expect(await cell.deleteExpiredRequests(11 * HOUR, HOUR)).toBe(1);
  });

  it('deletes each record once when several sweeps run at once', async () => {
    const kv = new MemoryKv();
    await submitAt(kv, 1_000, 300);
    const results = await Promise.all([0, 1, 2].map(() => cellOn(kv).deleteExpiredRequests(1_000 + HOUR, HOUR)));
    expect(results.reduce((a, b) => a + b, 0)).toBe(300);
    expect(await count(kv, 'requests')).toBe(0);
  });

  it('refuses a negative or fractional time, naming it, and deletes nothing', async () => {
    const kv = new MemoryKv();
    await submitAt(kv, 1_000, 1);
    const cell = cellOn(kv);
    await expect(cell.deleteExpiredRequests(5_000, -1)).rejects.toThrow(/^retentionMs: /);
    await expect(cell.deleteExpiredRequests(1.5, 0)).rejects.toThrow(/^nowMs: /);
    expect(await count(kv, 'requests')).toBe(1);
  });
});
