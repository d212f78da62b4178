import { describe, expect, it } from 'vitest';
import { analyticBusyness, analyticTolerance, expectedTasks } from './analytic.js';
import { runSimulation, type SimulationConfig, type SimulationResult } from './simulation.js';
import type { CellShape, Workload } from './workload.js';

const GiB = 1024 ** 3;
const HOUR = 3600_000;

/** A small cell and a light workload, so a run of hours takes well under a second. */
const CELL: CellShape = { machines: 100, cpuMillis: 4000, memoryBytes: 16 * GiB, prefillCpuFraction: 0.5, prefillTask: { cpuMillis: 1000, memoryBytes: 4 * GiB } };
const WORKLOAD: Workload = {
  name: 'W-omega-like',
  batch: { kind: 'batch', interArrivalMeanMs: 20_000, tasksMean: 10, durationMeanMs: 60_000, cpuMillis: 500, memoryBytes: 1 * GiB },
  service: { kind: 'service', interArrivalMeanMs: 60_000, tasksMean: 5, durationMeanMs: 600_000, cpuMillis: 500, memoryBytes: 2 * GiB },
};

function omega(overrides: Partial<SimulationConfig> = {}): SimulationConfig {
  return {
    seed: 7,
    cell: CELL,
    workload: WORKLOAD,
    durationMs: 2 * HOUR,
    schedulers: [
      { name: 'batch-0', role: 'batch', thinkTimes: { batch: { jobMs: 1000, taskMs: 100 } } },
      { name: 'batch-1', role: 'batch', thinkTimes: { batch: { jobMs: 1000, taskMs: 100 } } },
      { name: 'service-0', role: 'service', thinkTimes: { service: { jobMs: 20_000, taskMs: 100 } }, conflictMode: 'sequence-numbers' },
    ],
    servicePlacement: 'first-fit',
    ...overrides,
  };
}

/** Everything but the wall time, which is the one number that may differ between identical runs. */
function deterministic(r: SimulationResult): Omit<SimulationResult, 'wallMs'> {
  const { wallMs: _, ...rest } = r;
  return rest;
}

describe('the simulation', () => {
  it("matches the analytic no-conflict busyness of a monolithic scheduler (the clock's and the accounting's check)", async () => {
    const think = { batch: { jobMs: 1000, taskMs: 100 }, service: { jobMs: 3000, taskMs: 100 } };
    const config: SimulationConfig = { ...omega(), durationMs: 12 * HOUR, schedulers: [{ name: 'mono-0', role: 'monolithic', thinkTimes: think }] };
    const result = await runSimulation(config);
    const mono = result.schedulers[0];
    if (mono === undefined) throw new Error('no scheduler result');
    const analytic = analyticBusyness(WORKLOAD, think);
    // 0.05/s x (1 + 0.1 x 10.5) + 1/60 s x (3 + 0.1 x 5.5) ≈ 0.162
    expect(analytic).toBeCloseTo((1 / 20) * (1 + 0.1 * expectedTasks(10)) + (1 / 60) * (3 + 0.1 * expectedTasks(5)), 9);
    expect(mono.analyticBusyness).toBeCloseTo(analytic, 9);
    expect(mono.metrics.transactionsFailed).toBe(0);
    // Exact up to the job in progress at the end: every think is counted once, at the right length.
    expect(Math.abs(mono.metrics.busyness - mono.realizedDemand) / mono.realizedDemand).toBeLessThan(0.01);
    // And the arrivals are what the workload says, within the run's sampling error.
    const tolerance = analyticTolerance(WORKLOAD, think, config.durationMs);
    expect(Math.abs(mono.metrics.busyness - analytic) / analytic).toBeLessThan(tolerance);
    expect(result.workloads.batch.jobsAbandoned + result.workloads.service.jobsAbandoned).toBe(0);
  });

  it('repeats exactly for a seed, and differs for another seed', async () => {
    const a = await runSimulation(omega());
    const b = await runSimulation(omega());
    expect(deterministic(b)).toEqual(deterministic(a));
    const c = await runSimulation(omega({ seed: 8 }));
    expect(c.workloads.batch.jobsSubmitted).not.toBe(a.workloads.batch.jobsSubmitted);
  });

  it('gives the same result with one mirror per scheduler as with one shared mirror', async () => {
    const shared = await runSimulation(omega({ mirror: 'shared' }));
    const own = await runSimulation(omega({ mirror: 'own' }));
    // The only difference: each extra mirror's initial list is one more store request.
    const { store: ownStore, ...ownRest } = deterministic(own);
    const { store: sharedStore, ...sharedRest } = deterministic(shared);
    expect(ownRest).toEqual(sharedRest);
    expect(ownStore.requests - sharedStore.requests).toBe(3);
    expect(ownStore.revision).toBe(sharedStore.revision);
  });

  it('decides the same with and without the janitor deleting finished jobs', async () => {
    const kept = await runSimulation(omega({ janitorPeriodMs: 0 }));
    const swept = await runSimulation(omega({ janitorPeriodMs: 300_000 }));
    expect(kept.jobsDeleted).toBe(0);
    expect(swept.jobsDeleted).toBeGreaterThan(0);
    // Only the store's traffic and the janitor's own timers differ.
    const { store: _a, jobsDeleted: _b, timersWoken: _c, ...keptRest } = deterministic(kept);
    const { store: _d, jobsDeleted: _e, timersWoken: _f, ...sweptRest } = deterministic(swept);
    expect(sweptRest).toEqual(keptRest);
  });

  it('decides the same with a short store history as with a long one (the history only costs memory)', async () => {
    const short = await runSimulation(omega({ storeHistory: 100 }));
    const long = await runSimulation(omega({ storeHistory: 5_000 }));
    expect(deterministic(short)).toEqual(deterministic(long));
  });

  it("logs every transaction the schedulers count, first ones and retries apart", async () => {
    const r = await runSimulation(omega({ schedulers: [...omega().schedulers.slice(0, 2), { name: 'service-0', role: 'service', thinkTimes: { service: { jobMs: 20_000, taskMs: 100 } }, conflictMode: 'sequence-numbers', transactionMode: 'all-or-nothing' }] }));
    for (const s of r.schedulers) {
      const { first, retry } = s.transactions;
      expect(first.transactions + retry.transactions).toBe(s.metrics.transactionsOk + s.metrics.transactionsFailed);
      expect(first.failed + retry.failed).toBe(s.metrics.transactionsFailed);
      expect(first.claims + retry.claims).toBe(s.metrics.claimsAttempted);
      expect(first.ownConflicts + retry.ownConflicts + first.gangConflicts + retry.gangConflicts).toBe(s.metrics.claimsConflicted);
      // One first transaction per job that committed anything or conflicted.
      expect(first.transactions).toBeLessThanOrEqual(s.metrics.jobsAcquired);
      expect(Object.values(s.transactions.failedByMachines).reduce((a, n) => a + n, 0)).toBe(s.metrics.transactionsFailed);
      expect(s.transactions.machinesPerTransaction.mean).toBeLessThanOrEqual(s.transactions.claimsPerTransaction.mean);
    }
    const service = r.schedulers.find((s) => s.name === 'service-0');
    // The gang conflicts: every failed all-or-nothing transaction has its own conflicts and, unless it had one claim, gang ones.
    expect(service?.transactions.first.failed).toBeGreaterThan(0);
    expect((service?.transactions.first.gangConflicts ?? 0) + (service?.transactions.retry.gangConflicts ?? 0)).toBeGreaterThan(0);
    expect(service?.transactions.reasons['machine-changed']).toBeGreaterThan(0);
  });

  it('refuses a store history below one revision, naming the field', async () => {
    await expect(runSimulation(omega({ storeHistory: 0 }))).rejects.toThrow(/storeHistory: must be an integer >= 1/);
  });

  it('has metrics that add up: schedulers, store and workloads agree', async () => {
    const r = await runSimulation(omega());
    const sum = (f: (s: (typeof r.schedulers)[number]) => number): number => r.schedulers.reduce((a, s) => a + f(s), 0);
    const w = [r.workloads.batch, r.workloads.service];
    expect(sum((s) => s.metrics.claimsCommitted)).toBe(w.reduce((a, x) => a + x.tasksPlaced, 0));
    expect(sum((s) => s.metrics.jobsPlaced)).toBe(w.reduce((a, x) => a + x.jobsFullyScheduled, 0));
    expect(sum((s) => s.metrics.jobsAbandoned)).toBe(w.reduce((a, x) => a + x.jobsAbandoned, 0));
    for (const x of w) {
      expect(x.jobsFullyScheduled + x.jobsAbandoned + x.jobsStillQueued).toBe(x.jobsSubmitted);
      expect(x.jobsAttempted).toBeLessThanOrEqual(x.jobsSubmitted);
      expect(x.waitFirstAttempt.count).toBe(x.jobsAttempted);
      expect(x.waitFullyScheduled.count).toBe(x.jobsFullyScheduled);
    }
    for (const s of r.schedulers) {
      const m = s.metrics;
      expect(m.claimsAttempted).toBe(m.claimsCommitted + m.claimsConflicted);
      expect(m.busyness).toBeCloseTo((m.busyUsefulMs + m.busyWastedMs) / m.elapsedMs, 12);
      expect(m.elapsedMs).toBe(2 * HOUR);
    }
    // The service scheduler thinks 20 s on sequence numbers while two batch schedulers commit: it conflicts.
    expect(r.schedulers.find((s) => s.name === 'service-0')?.metrics.transactionsFailed).toBeGreaterThan(0);
    expect(r.utilizationDrift).toBeLessThan(1e-9);
    expect(r.utilization.cpuMean).toBeGreaterThan(CELL.prefillCpuFraction - 0.01);
    expect(r.prefillTasks).toBe(200);
  });

  it('refuses a config that leaves a job kind without a scheduler, naming the field', async () => {
    await expect(runSimulation(omega({ schedulers: [{ name: 'b', role: 'batch', thinkTimes: { batch: { jobMs: 1, taskMs: 1 } } }] }))).rejects.toThrow(/schedulers: no scheduler takes service jobs/);
  });
});
