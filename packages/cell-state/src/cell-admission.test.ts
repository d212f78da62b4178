import { afterEach, describe, expect, it } from 'vitest';
import { Cell, type SubmitJobOptions } from './cell.js';
import type { KvStore } from './kv.js';
import { MemoryKv } from './memory-kv.js';
import { createNamespace, readNamespace, setQuota } from './namespace-records.js';
import { describeExcess } from './quota.js';
import { RequestIdReusedError } from './request-records.js';
import { jobSpec, mirroredCell, replayingKv, type MirroredCell } from './testing/index.js';
import { jobId } from './types.js';

const MiB = 1024 ** 2;
const opened: MirroredCell[] = [];
afterEach(async () => {
  for (const m of opened.splice(0)) await m.stop();
});

/** A Cell on `kv` with a mirror for its quota checks, and the options it needs. */
async function cellOn(kv: KvStore): Promise<{ cell: Cell; options: SubmitJobOptions }> {
  const mirrored = await mirroredCell(kv, 1_000);
  opened.push(mirrored);
  return { cell: mirrored.cell, options: { snapshotAtLeast: mirrored.snapshotAtLeast, pause: async () => {} } };
}

async function jobCount(kv: KvStore): Promise<number> {
  return (await kv.range({ key: '/omega/test/jobs/', prefix: true })).kvs.length;
}

const quota = { cpuMillis: 1000, memoryBytes: 0, tasks: 0 };
const spec = (cpu: number, instances = 1) => jobSpec('web').namespace('a').cpu(cpu).memory(MiB).instances(instances).build();

describe('Cell.submitJob', () => {
  it('refuses a namespace that does not exist and stores nothing', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    const result = await cell.submitJob({ id: jobId('j1'), spec: spec(100), requestId: 'r1' }, options);
    expect(result).toEqual({ kind: 'unknown-namespace', namespace: 'a' });
    expect(await jobCount(kv)).toBe(0);
    expect((await kv.range({ key: '/omega/test/requests/', prefix: true })).kvs).toHaveLength(0);
  });

  it('admits to "default" without a record, and to a created namespace, counting admissions in its record', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    expect(await cell.submitJob({ id: jobId('d1'), spec: jobSpec('d').build() }, options)).toMatchObject({ kind: 'admitted', created: true });
    await createNamespace(kv, cell.keys, 'a', 1);
    expect(await cell.submitJob({ id: jobId('a1'), spec: spec(100) }, options)).toMatchObject({ kind: 'admitted', created: true, conflicts: 0 });
    expect(await readNamespace(kv, cell.keys, 'a')).toMatchObject({ admissions: 1 });
  });

  it('refuses a job over the quota with RESOURCE_EXHAUSTED words, storing nothing', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    expect(await setQuota(kv, cell.keys, 'a', quota, { ...options, nowMs: 1 })).toMatchObject({ kind: 'set' });
    expect(await cell.submitJob({ id: jobId('a1'), spec: spec(300, 2) }, options)).toMatchObject({ kind: 'admitted' });
    const before = await readNamespace(kv, cell.keys, 'a');
    const result = await cell.submitJob({ id: jobId('a2'), spec: spec(500) }, options);
    expect(result.kind).toBe('over-quota');
    if (result.kind !== 'over-quota') return;
    expect(describeExcess(result.excess)).toBe('namespace "a": cpu 500m requested + 600m in use exceeds the quota of 1000m');
    expect(await jobCount(kv)).toBe(1);
    expect(await readNamespace(kv, cell.keys, 'a')).toEqual(before);
    // Exactly up to the quota is allowed.
    expect(await cell.submitJob({ id: jobId('a3'), spec: spec(400) }, options)).toMatchObject({ kind: 'admitted' });
  });

  it('answers a resend of an admitted request id with its job, even when the namespace is now full', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    await setQuota(kv, cell.keys, 'a', quota, { ...options, nowMs: 1 });
    const first = await cell.submitJob({ id: jobId('a1'), spec: spec(1000), requestId: 'req-1' }, options);
    expect(first).toMatchObject({ kind: 'admitted', created: true });
    const again = await cell.submitJob({ id: jobId('other-id'), spec: spec(1000), requestId: 'req-1' }, options);
    expect(again).toMatchObject({ kind: 'admitted', created: false, job: { id: 'a1' } });
    await expect(cell.submitJob({ id: jobId('x'), spec: spec(10), requestId: 'req-1' }, options)).rejects.toThrow(RequestIdReusedError);
    expect(await readNamespace(kv, cell.keys, 'a')).toMatchObject({ admissions: 1 });
  });

  it('stores one job and counts one admission when every write is resent after it applied', async () => {
    const inner = new MemoryKv();
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn' });
    const { cell, options } = await cellOn(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    await setQuota(kv, cell.keys, 'a', quota, { ...options, nowMs: 1 });
    const replayedBefore = counters.replayed;
    const result = await cell.submitJob({ id: jobId('a1'), spec: spec(600), requestId: 'req-1' }, options);
    expect(counters.replayed).toBeGreaterThan(replayedBefore);
    expect(result).toMatchObject({ kind: 'admitted', created: true });
    expect(await jobCount(inner)).toBe(1);
    expect(await readNamespace(inner, cell.keys, 'a')).toMatchObject({ admissions: 1 });
    // The use counted once: 600m of 1000m, so 500m more is refused and 400m admitted.
    expect((await cell.submitJob({ id: jobId('a2'), spec: spec(500) }, options)).kind).toBe('over-quota');
    expect((await cell.submitJob({ id: jobId('a3'), spec: spec(400) }, options)).kind).toBe('admitted');
  });

  it('judges again against a fresh snapshot when another server admitted in between, and refuses then', async () => {
    const kv = new MemoryKv();
    const mine = await cellOn(kv);
    const theirs = await cellOn(kv);
    await createNamespace(kv, mine.cell.keys, 'a', 1);
    await setQuota(kv, mine.cell.keys, 'a', quota, { ...mine.options, nowMs: 1 });
    let interleaved = false;
    const options: SubmitJobOptions = {
      ...mine.options,
      snapshotAtLeast: async (revision) => {
        const stale = await mine.options.snapshotAtLeast(revision);
        if (!interleaved) {
          // The other server admits 700m after this one took its snapshot, before it writes.
          interleaved = true;
          expect(await theirs.cell.submitJob({ id: jobId('theirs'), spec: spec(700) }, theirs.options)).toMatchObject({ kind: 'admitted' });
        }
        return stale;
      },
    };
    const result = await mine.cell.submitJob({ id: jobId('mine'), spec: spec(700) }, options);
    expect(result).toMatchObject({ kind: 'over-quota', conflicts: 1, excess: { resource: 'cpu', used: 700, requested: 700 } });
    expect(await jobCount(kv)).toBe(1);
  });

  it('gives up as contended after its attempts when every attempt loses to another admission', async () => {
    const kv = new MemoryKv();
    const mine = await cellOn(kv);
    const theirs = await cellOn(kv);
    await createNamespace(kv, mine.cell.keys, 'a', 1);
    await setQuota(kv, mine.cell.keys, 'a', { cpuMillis: 100_000, memoryBytes: 0, tasks: 0 }, { ...mine.options, nowMs: 1 });
    let n = 0;
    const options: SubmitJobOptions = {
      ...mine.options,
      maxAttempts: 3,
      snapshotAtLeast: async (revision) => {
        const stale = await mine.options.snapshotAtLeast(revision);
        await theirs.cell.submitJob({ id: jobId(`theirs-${n++}`), spec: spec(10) }, theirs.options);
        return stale;
      },
    };
    expect(await mine.cell.submitJob({ id: jobId('mine'), spec: spec(10) }, options)).toEqual({ kind: 'contended', conflicts: 3 });
    expect((await kv.range({ key: '/omega/test/jobs/mine' })).kvs).toHaveLength(0);
  });

  it('names the namespace field of an invalid namespace and stores nothing', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await expect(cell.submitJob({ id: jobId('j'), spec: { ...spec(1), namespace: 'Not_A_Label' } }, options)).rejects.toThrow(/job\.namespace: must be a DNS label/);
    expect(await jobCount(kv)).toBe(0);
  });
});

describe('Cell.submitJob judged on a recent snapshot', () => {
  async function withRecent(kv: KvStore): Promise<{ cell: Cell; options: SubmitJobOptions; freeze: () => void; caughtUp: () => Promise<void> }> {
    const { cell, options } = await cellOn(kv);
    const mirror = cell.mirror();
    await mirror.start();
    opened.push({ cell, snapshotAtLeast: options.snapshotAtLeast, stop: () => mirror.stop() });
    let frozen: ReturnType<typeof mirror.snapshot> | undefined;
    return {
      cell,
      options: { ...options, recentSnapshot: () => frozen ?? mirror.snapshot() },
      freeze: () => {
        frozen = mirror.snapshot();
      },
      caughtUp: async () => mirror.waitForRevision((await kv.range({ key: cell.keys.root })).revision, 5_000),
    };
  }

  it('stores a job in a namespace without a quota in one round trip, counting the admission in its record', async () => {
    const kv = new MemoryKv();
    const { cell, options, caughtUp } = await withRecent(kv);
    let before = kv.counters.roundTrips;
    expect(await cell.submitJob({ id: jobId('d1'), spec: jobSpec('d').build(), requestId: 'r-d' }, options)).toMatchObject({ kind: 'admitted', created: true, conflicts: 0 });
    expect(kv.counters.roundTrips - before).toBe(1);
    await createNamespace(kv, cell.keys, 'a', 1);
    await caughtUp();
    before = kv.counters.roundTrips;
    expect(await cell.submitJob({ id: jobId('a1'), spec: spec(100) }, options)).toMatchObject({ kind: 'admitted', created: true, conflicts: 0 });
    expect(kv.counters.roundTrips - before).toBe(1);
    expect(await readNamespace(kv, cell.keys, 'a')).toMatchObject({ admissions: 1 });
  });

  it('judges again on the record the store returns when the snapshot is stale: a quota set since refuses, a deleted namespace is unknown', async () => {
    const kv = new MemoryKv();
    const { cell, options, freeze, caughtUp } = await withRecent(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    await caughtUp();
    freeze();
    await setQuota(kv, cell.keys, 'a', quota, { ...options, nowMs: 1 });
    const result = await cell.submitJob({ id: jobId('a1'), spec: spec(2000) }, options);
    expect(result).toMatchObject({ kind: 'over-quota', conflicts: 0 });
    expect(await jobCount(kv)).toBe(0);
    await kv.txn({ compare: [], success: [{ type: 'delete', key: cell.keys.namespace('a') }], failure: [] });
    expect(await cell.submitJob({ id: jobId('a2'), spec: spec(10) }, options)).toEqual({ kind: 'unknown-namespace', namespace: 'a' });
    expect(await jobCount(kv)).toBe(0);
  });

  it('answers a repeated request id with the job it created, also through a resent transaction', async () => {
    const inner = new MemoryKv();
    const replaying = replayingKv(inner);
    const { cell, options } = await withRecent(replaying.kv);
    const first = await cell.submitJob({ id: jobId('d1'), spec: jobSpec('d').build(), requestId: 'req-1' }, options);
    expect(first).toMatchObject({ kind: 'admitted', created: true });
    const again = await cell.submitJob({ id: jobId('d2'), spec: jobSpec('d').build(), requestId: 'req-1' }, options);
    expect(again).toMatchObject({ kind: 'admitted', created: false, job: { id: 'd1' } });
    await expect(cell.submitJob({ id: jobId('d3'), spec: jobSpec('other').build(), requestId: 'req-1' }, options)).rejects.toThrow(RequestIdReusedError);
    expect(await jobCount(inner)).toBe(1);
    expect(replaying.counters.replayed).toBeGreaterThan(0);
  });
});
