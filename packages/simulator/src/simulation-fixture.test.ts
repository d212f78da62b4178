/**
 * Guards "same seed, same result" across changes to how fast the simulator runs: a short run of
 * a small cell must give exactly the result recorded in `fixtures/short-run.json`: every number
 * but the wall time and the store's request and byte counts (those change when a component
 * batches or drops writes without changing any decision; the revision count stays pinned). A
 * change meant to alter scheduling decisions regenerates it with
 *
 *   UPDATE_SIM_FIXTURE=1 npx vitest run packages/simulator/src/simulation-fixture.test.ts
 *
 * and says so in its commit; a speed-up must never need to.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runSimulation, type SimulationConfig } from './simulation.js';
import type { CellShape, Workload } from './workload.js';

const GiB = 1024 ** 3;
const FIXTURE = new URL('./fixtures/short-run.json', import.meta.url);

/** W-omega-like's shapes on 200 machines (rates scaled to the cell), twice its batch load; all three schedulers commit. */
const CELL: CellShape = { machines: 200, cpuMillis: 4000, memoryBytes: 16 * GiB, prefillCpuFraction: 0.6, prefillTask: { cpuMillis: 1000, memoryBytes: 4 * GiB } };
const WORKLOAD: Workload = {
  name: 'W-omega-like',
  batch: { kind: 'batch', interArrivalMeanMs: 200_000, tasksMean: 100, durationMeanMs: 300_000, cpuMillis: 500, memoryBytes: 1 * GiB },
  service: { kind: 'service', interArrivalMeanMs: 600_000, tasksMean: 10, durationMeanMs: 12 * 3600_000, cpuMillis: 500, memoryBytes: 2 * GiB },
};
const CONFIG: SimulationConfig = {
  seed: 11,
  cell: CELL,
  workload: WORKLOAD,
  batchRateFactor: 2,
  durationMs: 3600_000,
  schedulers: [
    { name: 'batch-0', role: 'batch', thinkTimes: { batch: { jobMs: 100, taskMs: 5 } } },
    { name: 'batch-1', role: 'batch', thinkTimes: { batch: { jobMs: 100, taskMs: 5 } }, transactionMode: 'all-or-nothing' },
    { name: 'service-0', role: 'service', thinkTimes: { service: { jobMs: 30_000, taskMs: 5 } }, conflictMode: 'sequence-numbers' },
  ],
  servicePlacement: 'first-fit',
  retryBackoff: { initialMs: 1000, maxMs: 1000 },
};

describe('a recorded short simulation', () => {
  it('gives the same result for its seed as when it was recorded (every number but the wall time)', async () => {
    const { wallMs: _, store, ...rest } = await runSimulation(CONFIG);
    const result = { ...rest, store: { revision: store.revision } };
    // JSON round trip: the fixture holds what JSON can (no undefined, no -0).
    const now = JSON.parse(JSON.stringify(result)) as unknown;
    if (process.env.UPDATE_SIM_FIXTURE === '1') writeFileSync(FIXTURE, `${JSON.stringify(now, null, 1)}\n`);
    const recorded = JSON.parse(readFileSync(FIXTURE, 'utf8')) as unknown;
    expect(now).toEqual(recorded);
    // The run exercises what it guards: conflicts, and tasks ending.
    expect(result.schedulers.find((s) => s.name === 'service-0')?.metrics.transactionsFailed).toBeGreaterThan(0);
    expect(result.tasksEnded).toBeGreaterThan(0);
  });
});
