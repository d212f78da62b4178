/**
 * Every write a scheduler makes may reach etcd twice: etcd3 resends a call whose reply was lost
 * (UNAVAILABLE / DEADLINE_EXCEEDED) after etcd applied it. These tests send each of the
 * scheduler's writes through `replayingKv`, which applies a write, loses the reply and resends
 * it, and show that the second copy has no effect of its own.
 */
import { Cell, MemoryKv, jobId, type KvStore, type SchedulerStats } from '@omega/cell-state';
import { freshCellName, keysWritten, replayingKv, type ReplayedWrite } from '@omega/cell-state/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const writesUnder = (segment: string) => (write: ReplayedWrite): boolean => {
  const keys = write.type === 'txn' ? keysWritten(write.request) : [write.key];
  return keys.some((k) => k.includes(`/${segment}/`));
};

/** A cell over a fresh MemoryKv, and the same cell seen through a store that replays `replay`'s writes. */
async function replayedCell(replay: (write: ReplayedWrite) => boolean, lose: 'resend' | 'throw' = 'resend') {
  const kv = new MemoryKv();
  const name = freshCellName();
  const plain = new Cell(kv, name);
  const replaying = replayingKv(kv, { replay, lose });
  return { kv, plain, cell: new Cell(replaying.kv, name), counters: replaying.counters };
}

async function keysUnder(kv: KvStore, prefix: string) {
  return (await kv.range({ key: prefix, prefix: true })).kvs;
}

describe('a replayed owner-create', () => {
  it('leaves the job owned and scheduled by the instance that sent it', async () => {
    let replaying: ReturnType<typeof replayingKv> | undefined;
    h = await SchedulerHarness.open({ machines: 2 });
    const a = await h.addScheduler(firstFitPolicy(), {
      name: 'batch-a',
      store: (kv) => (replaying = replayingKv(kv, { replay: writesUnder('owners'), limit: 1 })).kv,
    });
    const job = await h.submit(jobSpec('web').instances(2).cpu(500));
    await h.runUntilIdle();
    expect(replaying?.counters.replayed).toBe(1);
    const snapshot = await h.snapshot();
    expect(snapshot.owner(job)).toMatchObject({ scheduler: 'batch-a', lease: a.currentLease?.id });
    expect(a.ownedJobs()).toEqual([job]);
    expect(snapshot.status(job)?.state).toBe('running');
    expect((await h.tasks(job)).map((t) => t.state)).toEqual(['placed', 'placed']);
    expect(a.metrics().jobsAcquired).toBe(1);
  });

  it('whose reply is lost as an error still leaves the job owned and scheduled by its sender', async () => {
    let replaying: ReturnType<typeof replayingKv> | undefined;
    h = await SchedulerHarness.open({ machines: 2 });
    const a = await h.addScheduler(firstFitPolicy(), {
      name: 'batch-a',
      store: (kv) => (replaying = replayingKv(kv, { replay: writesUnder('owners'), limit: 1, lose: 'throw' })).kv,
    });
    const job = await h.submit(jobSpec('web').instances(2).cpu(500));
    await h.runUntilIdle();
    expect(replaying?.counters.replayed).toBe(1);
    const snapshot = await h.snapshot();
    expect(snapshot.owner(job)).toMatchObject({ scheduler: 'batch-a', lease: a.currentLease?.id });
    expect(snapshot.status(job)?.state).toBe('running');
    expect(a.metrics()).toMatchObject({ jobsAcquired: 1, storeErrors: 1 });
  });

  it('answers true to its sender, with the same record, and still false to anyone else', async () => {
    const { kv, plain, cell, counters } = await replayedCell(writesUnder('owners'));
    const mine = await kv.grantLease(10, { autoKeepAlive: true });
    const other = await kv.grantLease(10, { autoKeepAlive: true });
    expect(await cell.acquireOwnership(jobId('j'), 'batch-a', 'batch', mine)).toBe(true);
    expect(counters.replayed).toBe(1);
    const [record] = await keysUnder(kv, plain.keys.owner(jobId('j')));
    expect(record).toMatchObject({ lease: mine.id, version: 1 });
    // Sent again later (our own retry after a lost reply): still ours, nothing written.
    expect(await cell.acquireOwnership(jobId('j'), 'batch-a', 'batch', mine)).toBe(true);
    expect((await keysUnder(kv, plain.keys.owner(jobId('j'))))[0]).toEqual(record);
    // Another lease, or another name under the same lease, does not own it.
    expect(await plain.acquireOwnership(jobId('j'), 'batch-b', 'batch', other)).toBe(false);
    expect(await plain.acquireOwnership(jobId('j'), 'batch-b', 'batch', mine)).toBe(false);
  });

  it('is ours when our own retry follows a create whose reply was lost', async () => {
    const { kv, plain, cell } = await replayedCell(writesUnder('owners'), 'throw');
    const mine = await kv.grantLease(10, { autoKeepAlive: true });
    await expect(cell.acquireOwnership(jobId('j'), 'batch-a', 'batch', mine)).rejects.toThrow(/reply lost/);
    expect(await plain.acquireOwnership(jobId('j'), 'batch-a', 'batch', mine)).toBe(true);
    expect(await keysUnder(kv, plain.keys.owner(jobId('j')))).toHaveLength(1);
  });
});

describe('the other writes of a scheduler, replayed', () => {
  it('releaseOwnership: the resent delete removes nothing more, not even a record taken since', async () => {
    const { kv, plain, cell, counters } = await replayedCell(writesUnder('owners'));
    const mine = await kv.grantLease(10, { autoKeepAlive: true });
    const other = await kv.grantLease(10, { autoKeepAlive: true });
    expect(await plain.acquireOwnership(jobId('j'), 'batch-a', 'batch', mine)).toBe(true);
    await cell.releaseOwnership(jobId('j'), mine);
    expect(counters.replayed).toBe(1);
    expect(await keysUnder(kv, plain.keys.owner(jobId('j')))).toEqual([]);
    // The next owner's record is safe from a late release by the previous one.
    expect(await plain.acquireOwnership(jobId('j'), 'batch-b', 'batch', other)).toBe(true);
    await cell.releaseOwnership(jobId('j'), mine);
    expect((await keysUnder(kv, plain.keys.owner(jobId('j'))))[0]).toMatchObject({ lease: other.id });
  });

  it('putJobStatus: the resent put stores the same record, under the one key', async () => {
    const { kv, plain, cell, counters } = await replayedCell(writesUnder('status'));
    const status = {
      jobId: jobId('j'),
      state: 'unschedulable' as const,
      reason: 'no machine has 8 CPU',
      ruledOut: [{ filter: 'cpu', machines: 3 }],
      attempts: 4,
      scheduler: 'batch-a',
      updatedAtMs: 1234,
      firstAttemptAtMs: 1000,
      fullyPlacedAtMs: 0,
    };
    await cell.putJobStatus(status);
    expect(counters.replayed).toBe(1);
    const mirror = plain.mirror();
    await mirror.start();
    expect(mirror.snapshot().status(jobId('j'))).toMatchObject(status);
    await mirror.stop();
    expect(await keysUnder(kv, `${plain.keys.root}status/`)).toHaveLength(1);
  });

  it('publishSchedulerStats: the resent put stores the same record, still bound to the lease', async () => {
    const { kv, plain, cell, counters } = await replayedCell(writesUnder('schedulers'));
    const lease = await kv.grantLease(10, { autoKeepAlive: true });
    const stats: SchedulerStats = {
      name: 'batch-a',
      kind: 'batch',
      conflictMode: 'resource-fit',
      transactionMode: 'incremental',
      transactionsOk: 7,
      transactionsFailed: 1,
      claimsCommitted: 20,
      claimsConflicted: 2,
      busyUsefulMs: 100,
      busyWastedMs: 10,
      busyNoFitMs: 0,
      elapsedMs: 1000,
      jobsPlaced: 5,
      jobsAbandoned: 0,
      waitFirstAttemptMeanMs: 1,
      waitFirstAttemptP90Ms: 2,
      waitFullyPlacedMeanMs: 3,
      waitFullyPlacedP90Ms: 4,
      spuriousRetries: 0,
      updatedAtMs: 5000,
    };
    await cell.publishSchedulerStats(stats, lease);
    expect(counters.replayed).toBe(1);
    const records = await keysUnder(kv, `${plain.keys.root}schedulers/`);
    expect(records).toHaveLength(1);
    expect(records[0]?.lease).toBe(lease.id);
    // The same bytes as one write to a store that loses nothing.
    const single = new Cell(new MemoryKv(), plain.keys.cell);
    await single.publishSchedulerStats(stats);
    const [once] = await keysUnder(single.kv, `${plain.keys.root}schedulers/`);
    expect(records[0]?.value).toEqual(once?.value);
    const mirror = plain.mirror();
    await mirror.start();
    expect([...mirror.snapshot().schedulerStats()].map((s) => [s.name, s.transactionsOk, s.claimsCommitted, s.updatedAtMs])).toEqual([['batch-a', 7, 20, 5000]]);
    await mirror.stop();
  });

  it('a whole scheduler run with every status and stats write replayed ends as one without replays', async () => {
    const run = async (replay: boolean) => {
      const harness = await SchedulerHarness.open({ machines: 2 });
      h = harness;
      let counters: { replayed: number } | undefined;
      const a = await harness.addScheduler(firstFitPolicy(), {
        name: 'batch-a',
        ...(replay ? { store: (kv: KvStore) => ({ kv, counters } = replayingKv(kv, { replay: (w) => writesUnder('status')(w) || writesUnder('schedulers')(w) })).kv } : {}),
      });
      const fits = await harness.submit(jobSpec('fits').instances(2).cpu(1000), { id: 'fits' });
      const big = await harness.submit(jobSpec('big').cpu(64_000), { id: 'big' });
      await harness.runUntilIdle();
      await a.publishStats();
      const snapshot = await harness.snapshot();
      const result = {
        statuses: [fits, big].map((id) => snapshot.status(id)).map((s) => ({ state: s?.state, reason: s?.reason, attempts: s?.attempts, scheduler: s?.scheduler })),
        stats: [...snapshot.schedulerStats()].map((s) => ({ name: s.name, transactionsOk: s.transactionsOk, claimsCommitted: s.claimsCommitted, jobsPlaced: s.jobsPlaced, jobsAbandoned: s.jobsAbandoned })),
        replayed: counters?.replayed ?? 0,
      };
      await harness.close();
      h = undefined;
      return result;
    };
    const once = await run(false);
    const twice = await run(true);
    expect(twice.replayed).toBeGreaterThan(2);
    expect({ ...twice, replayed: 0 }).toEqual(once);
    expect(once.statuses.map((s) => s.state)).toEqual(['running', 'unschedulable']);
  });
});
