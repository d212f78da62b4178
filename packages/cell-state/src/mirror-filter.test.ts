import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import type { MirrorFilter } from './cell-snapshot.js';
import { MemoryKv } from './memory-kv.js';
import type { CellMirror } from './mirror.js';
import { PrivateCell, claimIdFactory } from './private-cell.js';
import { jobId, machineId, taskId, type JobId, type MachineId, type TaskId } from './types.js';
import { jobSpec, machine } from './testing/builders.js';
import { freshCellName } from './testing/cell-contract.js';

const MiB = 1024 ** 2;
const m1 = machineId('m1');
const m2 = machineId('m2');
const nextClaim = claimIdFactory();

describe('a filtered mirror', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(): Promise<{ cell: Cell; full: CellMirror; part: CellMirror; wanted: Set<JobId> }> {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    await cell.registerMachine(machine('m1').cpu(8000).memory('8Gi').build());
    await cell.registerMachine(machine('m2').cpu(8000).memory('8Gi').build());
    const wanted = new Set<JobId>();
    const filter: MirrorFilter = {
      key: (kind, id) => (kind === 'machine' ? id === m1 : kind === 'task' ? true : kind === 'job' ? wanted.has(id as JobId) : false),
      taskMachine: (machine) => machine === m1,
    };
    const full = cell.mirror();
    const part = cell.mirror({ filter });
    await full.start();
    await part.start();
    cleanups.push(async () => {
      await part.stop();
      await full.stop();
      await kv.close();
    });
    return { cell, full, part, wanted };
  }

  async function place(cell: Cell, full: CellMirror, placements: [TaskId, MachineId][]): Promise<number> {
    const pc = new PrivateCell(full.snapshot(), 'test', nextClaim);
    for (const [task, on] of placements) pc.claim(on, { taskId: task, resources: { cpuMillis: 100, memoryBytes: 64 * MiB }, priority: 0 });
    const result = await cell.committer().commit(pc.transaction('resource-fit', 'incremental'));
    await full.waitForRevision(result.revision);
    return result.revision;
  }

  it('holds only what its filter admits, and drops a task that moves to another machine', async () => {
    const { cell, full, part } = await setup();
    await cell.createJob({ id: jobId('a'), spec: jobSpec('a').instances(2).build() });
    const revision = await place(cell, full, [
      [taskId('a', 0), m1],
      [taskId('a', 1), m2],
    ]);
    await part.waitForRevision(revision);
    const held = part.snapshot();
    expect(held.machine(m1)).toBeDefined();
    expect(held.machine(m2)).toBeUndefined();
    expect(held.task(taskId('a', 0))).toMatchObject({ machineId: m1 });
    expect(held.task(taskId('a', 1))).toBeUndefined();
    expect(held.job(jobId('a'))).toBeUndefined();
    expect(held.alive(m1)).toBeUndefined();
    // The unfiltered mirror of the same cell holds everything.
    expect(full.snapshot().task(taskId('a', 1))).toBeDefined();

    // Lost and placed again on m2: the record leaves m1, and the filtered mirror says so.
    const changes: string[] = [];
    part.onChange((c) => changes.push(...c.changes.map((x) => `${x.kind}:${x.id}:${x.type}`)));
    const task = full.snapshot().task(taskId('a', 0))!;
    await cell.updateTask(task.id, task.claimId, { state: 'lost', reason: 'machine-lost' });
    await part.waitForRevision(await place(cell, full, [[taskId('a', 0), m2]]));
    expect(part.snapshot().task(taskId('a', 0))).toBeUndefined();
    expect(changes).toContain(`task:${taskId('a', 0)}:delete`);
  });

  it('reads a record the filter starts to admit, keeps it current, and forgets it when no longer admitted', async () => {
    const { cell, part, wanted } = await setup();
    await cell.createJob({ id: jobId('j'), spec: jobSpec('j').build() });
    expect(part.snapshot().job(jobId('j'))).toBeUndefined();
    wanted.add(jobId('j'));
    await part.refilter('job', jobId('j'));
    expect(part.snapshot().job(jobId('j'))).toMatchObject({ desired: 'running' });
    const killed = await cell.setJobDesired(jobId('j'), 'killed');
    await part.waitForRevision(killed!.revision);
    expect(part.snapshot().job(jobId('j'))).toMatchObject({ desired: 'killed' });
    wanted.delete(jobId('j'));
    await part.refilter('job', jobId('j'));
    expect(part.snapshot().job(jobId('j'))).toBeUndefined();
    // Later changes of a record not admitted are not held.
    await cell.setJobDesired(jobId('j'), 'running');
    await cell.createJob({ id: jobId('k'), spec: jobSpec('k').build() });
    expect(part.snapshot().jobCount).toBe(0);
  });

  it('holds a refused job record from its recall cache when it becomes wanted, at its newest version, and reads one that was deleted', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const wanted = new Set<JobId>();
    const part = cell.mirror({ filter: { key: (kind, id) => kind === 'job' && wanted.has(id as JobId), recall: { kinds: ['job'], maxEntries: 8, maxBytes: 1 << 20 } } });
    await part.start();
    cleanups.push(async () => {
      await part.stop();
      await kv.close();
    });
    await cell.createJob({ id: jobId('a'), spec: jobSpec('a').build() });
    await cell.createJob({ id: jobId('gone'), spec: jobSpec('gone').build() });
    await cell.setJobDesired(jobId('a'), 'killed');
    const last = await kv.txn({ compare: [], success: [{ type: 'delete', key: cell.keys.job(jobId('gone')) }], failure: [] });
    await part.waitForRevision(last.revision);
    expect(part.snapshot().jobCount).toBe(0);
    const reads = kv.counters.roundTrips;
    wanted.add(jobId('a'));
    await part.refilter('job', jobId('a'));
    expect(part.snapshot().job(jobId('a'))?.desired).toBe('killed');
    expect(part.counters.recalled).toBe(1);
    expect(kv.counters.roundTrips).toBe(reads);
    wanted.add(jobId('gone'));
    await part.refilter('job', jobId('gone'));
    expect(part.snapshot().job(jobId('gone'))).toBeUndefined();
    expect(part.counters.recalled).toBe(1);
    expect(kv.counters.roundTrips).toBe(reads + 1);
  });
});
