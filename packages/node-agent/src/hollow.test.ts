import { afterEach, describe, expect, it } from 'vitest';
import { Cell, jobId, MemoryKv, taskId, type CellMirror, type MachineId } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent } from './agent.js';
import { HollowExecutor, hollowMachineIds, hollowMachines } from './hollow.js';
import { eventually, placeTasks } from './testing/index.js';

const MiB = 1024 ** 2;

describe('hollow machines', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(n: number): Promise<{ kv: MemoryKv; cell: Cell; mirror: CellMirror; agent: Agent; ids: MachineId[] }> {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const agent = new Agent({
      cell,
      machines: hollowMachines('h', n, { cpuMillis: 4000, memoryBytes: 8 * 1024 ** 3 }, { zone: 'z1' }),
      executor: ({ reporter }) => new HollowExecutor(reporter),
      flushIntervalMs: 10,
    });
    await agent.start();
    const mirror = cell.mirror();
    await mirror.start();
    cleanups.push(async () => {
      await agent.stop();
      await mirror.stop();
      await kv.close();
    });
    return { kv, cell, mirror, agent, ids: hollowMachineIds('h', n) };
  }

  it('are named <prefix>-0000 onwards', () => {
    expect(hollowMachineIds('h', 3)).toEqual(['h-0000', 'h-0001', 'h-0002']);
    expect(hollowMachineIds('h', 10_001).at(-1)).toBe('h-10000');
  });

  it('register every machine as hollow, each with its own alive key on one shared lease', async () => {
    const { mirror, ids } = await setup(25);
    const snap = mirror.snapshot();
    expect(snap.machineCount).toBe(25);
    expect(ids.every((id) => snap.machine(id)?.hollow === true && snap.machine(id)?.attributes.zone === 'z1')).toBe(true);
    const leases = new Set([...snap.aliveMachines()].map((a) => a.lease));
    expect([...snap.aliveMachines()]).toHaveLength(25);
    expect(leases.size).toBe(1);
  });

  it('run tasks for their duration, then report succeeded with exit code 0 or failed with exit code 1', async () => {
    const { cell, mirror, ids } = await setup(10);
    await cell.createJob({ id: jobId('ok'), spec: jobSpec('ok').instances(30).duration(20).build() });
    await cell.createJob({ id: jobId('bad'), spec: jobSpec('bad').instances(10).duration(20).failing().build() });
    await placeTasks(cell, mirror, [
      ...Array.from({ length: 30 }, (_, i) => ({ taskId: taskId('ok', i), machineId: ids[i % 10]!, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } })),
      ...Array.from({ length: 10 }, (_, i) => ({ taskId: taskId('bad', i), machineId: ids[i]!, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } })),
    ]);
    await eventually('every task to end', () => [...mirror.snapshot().tasksOf(jobId('ok')), ...mirror.snapshot().tasksOf(jobId('bad'))].every((t) => t.state === 'succeeded' || t.state === 'failed'));
    expect([...mirror.snapshot().tasksOf(jobId('ok'))].every((t) => t.state === 'succeeded' && t.exitCode === 0 && t.finishedAtMs >= t.startedAtMs)).toBe(true);
    expect([...mirror.snapshot().tasksOf(jobId('bad'))].every((t) => t.state === 'failed' && t.exitCode === 1)).toBe(true);
  });

  it('stop a task whose job is killed, reporting it killed', async () => {
    const { cell, mirror, ids } = await setup(2);
    await cell.createJob({ id: jobId('long'), spec: jobSpec('long').duration(3_600_000).build() });
    await placeTasks(cell, mirror, [{ taskId: taskId('long', 0), machineId: ids[1]!, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
    await eventually('the task to run', () => mirror.snapshot().task(taskId('long', 0))?.state === 'running');
    await cell.setJobDesired(jobId('long'), 'killed');
    await eventually('the task to be killed', () => mirror.snapshot().task(taskId('long', 0))?.state === 'killed');
    expect(mirror.snapshot().task(taskId('long', 0))).toMatchObject({ state: 'killed', reason: 'job-killed', signal: 'SIGTERM' });
  });
});
