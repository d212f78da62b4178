import { afterEach, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type TaskId } from '@omega/cell-state';
import { freshCellName, jobSpec, machine, outageKv } from '@omega/cell-state/testing';
import { StatusReporter } from './status-reporter.js';
import { eventually, placeTasks } from './testing/index.js';

const MiB = 1024 ** 2;
const m1 = machineId('m1');

describe('the status reporter', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(tasks: number, maxBatch?: number): Promise<{ kv: MemoryKv; cell: Cell; mirror: CellMirror; reporter: StatusReporter; ids: TaskId[] }> {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    await cell.registerMachine(machine('m1').cpu(100_000).memory('64Gi').build());
    await cell.createJob({ id: jobId('j'), spec: jobSpec('j').instances(tasks).build() });
    const mirror = cell.mirror();
    await mirror.start();
    const ids = Array.from({ length: tasks }, (_, i) => taskId('j', i));
    await placeTasks(cell, mirror, ids.map((id) => ({ taskId: id, machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } })));
    // A long window: the test flushes by hand, so nothing depends on timing.
    const reporter = new StatusReporter(cell, mirror, { flushIntervalMs: 60_000, ...(maxBatch === undefined ? {} : { maxBatch }) });
    cleanups.push(async () => {
      await reporter.close();
      await mirror.stop();
      await kv.close();
    });
    return { kv, cell, mirror, reporter, ids };
  }

  const claimOf = (mirror: CellMirror, id: TaskId): string => mirror.snapshot().task(id)!.claimId;

  it('writes the updates of many tasks reported in one window in one request', async () => {
    const { kv, cell, mirror, reporter, ids } = await setup(50);
    const before = kv.counters.roundTrips;
    const outcomes = ids.map((id, i) => reporter.report(id, claimOf(mirror, id), { state: 'running', pid: 1000 + i, startedAtMs: 1 }));
    await reporter.flush();
    expect(await Promise.all(outcomes)).toEqual(ids.map(() => 'updated'));
    expect(kv.counters.roundTrips - before).toBe(1);
    expect(await cell.getTask(ids[7]!)).toMatchObject({ state: 'running', pid: 1007 });
    expect(reporter.counters).toMatchObject({ reports: 50, updates: 50, batches: 1, solo: 0 });
  });

  it('writes a backlog larger than one batch oldest first, one batch per flush, keeping the rest queued', async () => {
    const { cell, mirror, reporter, ids } = await setup(7, 3);
    const outcomes = ids.map((id, i) => reporter.report(id, claimOf(mirror, id), { state: 'running', pid: 100 + i, startedAtMs: 1 }));
    const running = async (): Promise<number[]> => (await Promise.all(ids.map((id) => cell.getTask(id)))).flatMap((t, i) => (t?.state === 'running' ? [i] : []));
    await reporter.flush();
    expect(await running()).toEqual([0, 1, 2]);
    expect(reporter.backlog).toBe(4);
    // A later report of a queued task merges into its queued entry, in place.
    void reporter.report(ids[4]!, claimOf(mirror, ids[4]!), { pid: 999 });
    await reporter.flush();
    expect(await running()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await cell.getTask(ids[4]!)).toMatchObject({ pid: 999 });
    await reporter.flush();
    expect(reporter.backlog).toBe(0);
    expect(await Promise.all(outcomes)).toEqual(ids.map(() => 'updated'));
    expect(reporter.counters).toMatchObject({ batches: 3, updates: 7 });
  });

  it('merges running and succeeded of one task reported in the same window into one write', async () => {
    const { kv, cell, mirror, reporter, ids } = await setup(1);
    const id = ids[0]!;
    const revision = mirror.snapshot().task(id)!.revision;
    const before = kv.counters.roundTrips;
    const running = reporter.report(id, claimOf(mirror, id), { state: 'running', pid: 42, startedAtMs: 10 });
    const succeeded = reporter.report(id, claimOf(mirror, id), { state: 'succeeded', exitCode: 0, finishedAtMs: 20 });
    await reporter.flush();
    expect([await running, await succeeded]).toEqual(['updated', 'updated']);
    expect(kv.counters.roundTrips - before).toBe(1);
    const stored = await cell.getTask(id);
    expect(stored).toMatchObject({ state: 'succeeded', pid: 42, startedAtMs: 10, exitCode: 0, finishedAtMs: 20 });
    expect(stored!.revision).toBeGreaterThan(revision);
  });

  it('needs no re-read for an update sent once the mirror shows the previous write of the same task', async () => {
    const { kv, cell, mirror, reporter, ids } = await setup(1);
    const id = ids[0]!;
    const before = kv.counters.roundTrips;
    const running = reporter.report(id, claimOf(mirror, id), { state: 'running', pid: 42, startedAtMs: 10 });
    await reporter.flush();
    await running;
    const succeeded = reporter.report(id, claimOf(mirror, id), { state: 'failed', exitCode: 3, finishedAtMs: 20 });
    await mirror.waitForRevision(await kv.currentRevision());
    await reporter.flush();
    expect(await succeeded).toBe('updated');
    // Two batches, no fallback read-and-CAS (the currentRevision call above is the third).
    expect(kv.counters.roundTrips - before).toBe(3);
    expect(await cell.getTask(id)).toMatchObject({ state: 'failed', exitCode: 3, pid: 42 });
  });

  it('keeps the reason and message of a terminal record: a preempted task stays preempted while its exit is added', async () => {
    const { cell, mirror, reporter, ids } = await setup(1);
    const id = ids[0]!;
    const claim = claimOf(mirror, id);
    await cell.updateTask(id, claim, { state: 'killed', reason: 'preempted', finishedAtMs: 5 });
    await mirror.waitForRevision((await cell.getTask(id))!.revision);
    const outcome = reporter.report(id, claim, { state: 'failed', reason: 'disk-exceeded', message: 'the work dir holds 3 GiB, over its 2 GiB', signal: 'SIGTERM', finishedAtMs: 9, cpuSeconds: 0.5 });
    await reporter.flush();
    expect(await outcome).toBe('updated');
    expect(await cell.getTask(id)).toMatchObject({ state: 'killed', reason: 'preempted', message: '', signal: 'SIGTERM', finishedAtMs: 9, cpuSeconds: 0.5 });
  });

  it('refuses as stale an update for a claim the task no longer has', async () => {
    const { cell, reporter, ids } = await setup(1);
    const id = ids[0]!;
    const outcome = reporter.report(id, 'some-old-claim', { state: 'running', pid: 1 });
    await reporter.flush();
    expect(await outcome).toBe('stale');
    expect(await cell.getTask(id)).toMatchObject({ state: 'placed', pid: 0 });
  });

  it('keeps unsent reports through an outage in one entry per attempt and writes them once the store is back', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    await cell.registerMachine(machine('m1').cpu(100_000).memory('64Gi').build());
    await cell.createJob({ id: jobId('j'), spec: jobSpec('j').instances(2).build() });
    const mirror = cell.mirror();
    await mirror.start();
    const ids = [taskId('j', 0), taskId('j', 1)];
    await placeTasks(cell, mirror, ids.map((id) => ({ taskId: id, machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } })));
    const store = outageKv(kv);
    store.refuse();
    const reporter = new StatusReporter(new Cell(store.kv, cell.keys.cell), mirror, { flushIntervalMs: 5 });
    cleanups.push(async () => {
      await reporter.close();
      await mirror.stop();
      await kv.close();
    });
    const [a, b] = ids as [TaskId, TaskId];
    const outcomes = [
      reporter.report(a, claimOf(mirror, a), { state: 'running', pid: 7, startedAtMs: 1 }),
      reporter.report(b, claimOf(mirror, b), { state: 'running', pid: 8, startedAtMs: 1 }),
    ];
    await eventually('failed flushes', () => reporter.counters.failures >= 2);
    outcomes.push(reporter.report(a, claimOf(mirror, a), { state: 'succeeded', exitCode: 0, finishedAtMs: 2 }));
    await eventually('more failed flushes', () => reporter.counters.failures >= 3);
    // However many retries and reports: one pending entry per task attempt.
    expect(reporter.backlog).toBe(2);
    // Taken for lost meanwhile (the machine's heartbeat lapsed): b stays lost, the report only
    // adds how it ran.
    await cell.updateTask(b, claimOf(mirror, b), { state: 'lost', reason: 'machine-lost' });
    store.resume();
    expect(await Promise.all(outcomes)).toEqual(['updated', 'updated', 'updated']);
    expect(await cell.getTask(a)).toMatchObject({ state: 'succeeded', exitCode: 0, pid: 7 });
    expect(await cell.getTask(b)).toMatchObject({ state: 'lost', reason: 'machine-lost' });
    expect(reporter.backlog).toBe(0);
  });
});
