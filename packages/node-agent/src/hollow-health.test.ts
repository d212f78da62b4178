import { afterEach, describe, expect, it } from 'vitest';
import { Cell, HEALTH_CHECK_FAILED, jobId, MemoryKv, taskId, type CellMirror, type MachineId } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent } from './agent.js';
import { HollowExecutor, hollowMachineIds, hollowMachines } from './hollow.js';
import { eventually, placeTasks } from './testing/index.js';

const MiB = 1024 ** 2;

describe('health checks on hollow machines', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(n: number): Promise<{ cell: Cell; mirror: CellMirror; ids: MachineId[] }> {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const agent = new Agent({ cell, machines: hollowMachines('h', n, { cpuMillis: 4000, memoryBytes: 8 * 1024 ** 3 }), executor: ({ reporter }) => new HollowExecutor(reporter), flushIntervalMs: 10 });
    await agent.start();
    const mirror = cell.mirror();
    await mirror.start();
    cleanups.push(async () => {
      await agent.stop();
      await mirror.stop();
      await kv.close();
    });
    return { cell, mirror, ids: hollowMachineIds('h', n) };
  }

  it('report passing after the grace period and keep running; a task without a check has no health', async () => {
    const { cell, mirror, ids } = await setup(2);
    await cell.createJob({ id: jobId('web'), spec: jobSpec('web').service().duration(60_000).healthCheck({ http: { port: 80, path: '/' }, gracePeriodMs: 150 }).build() });
    await cell.createJob({ id: jobId('plain'), spec: jobSpec('plain').service().duration(60_000).build() });
    await placeTasks(cell, mirror, [
      { taskId: taskId('web', 0), machineId: ids[0]!, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
      { taskId: taskId('plain', 0), machineId: ids[1]!, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
    ]);
    await eventually('the web task to run', () => mirror.snapshot().task(taskId('web', 0))?.state === 'running');
    expect(mirror.snapshot().task(taskId('web', 0))?.health).toBeUndefined();
    await eventually('the web task to pass its check', () => mirror.snapshot().task(taskId('web', 0))?.health === 'passing');
    const web = mirror.snapshot().task(taskId('web', 0))!;
    expect(web.state).toBe('running');
    expect(web.healthSinceMs! - web.startedAtMs).toBeGreaterThanOrEqual(150);
    expect(mirror.snapshot().task(taskId('plain', 0))?.health).toBeUndefined();
  });

  it('with hollowFailing report failing, then fail the task health-check-failed after the threshold', async () => {
    const { cell, mirror, ids } = await setup(1);
    await cell.createJob({ id: jobId('bad'), spec: jobSpec('bad').service().duration(60_000).healthCheck({ tcp: { port: 80 }, intervalMs: 100, failureThreshold: 3, hollowFailing: true }).build() });
    await placeTasks(cell, mirror, [{ taskId: taskId('bad', 0), machineId: ids[0]!, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
    await eventually('the task to fail its check', () => mirror.snapshot().task(taskId('bad', 0))?.state === 'failed');
    const bad = mirror.snapshot().task(taskId('bad', 0))!;
    expect(bad).toMatchObject({ state: 'failed', reason: HEALTH_CHECK_FAILED, health: 'failing' });
    expect(bad.finishedAtMs - bad.healthSinceMs!).toBeGreaterThanOrEqual(200);
  });
});
