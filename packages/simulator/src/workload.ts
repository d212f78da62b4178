/**
 * The benchmark's workloads (shared/BENCH.md): job arrivals with exponential inter-arrival
 * times, task counts ceil(Exp(mean)), durations Exp(mean), identical tasks per job; and the cell
 * they run on (10,000 machines x 4 CPU x 16 GiB, prefilled to 60% CPU with long-running tasks).
 * Everything draws from a seeded Random, so a seed gives the same arrivals every time.
 */
import { DEFAULT_NAMESPACE, type JobSpec } from '@omega/cell-state';
import type { Random } from '@omega/scheduler-core';

export interface JobClass {
  readonly kind: 'batch' | 'service';
  /** Mean time between job arrivals. */
  readonly interArrivalMeanMs: number;
  /** Tasks per job: ceil(Exp(mean)). */
  readonly tasksMean: number;
  /** Task duration from commit: Exp(mean). */
  readonly durationMeanMs: number;
  readonly cpuMillis: number;
  readonly memoryBytes: number;
}

export interface Workload {
  readonly name: 'W-sim-example' | 'W-omega-like';
  readonly batch: JobClass;
  readonly service: JobClass;
}

const GiB = 1024 ** 3;

/** The public simulator's example: light load. */
export const W_SIM_EXAMPLE: Workload = {
  name: 'W-sim-example',
  batch: { kind: 'batch', interArrivalMeanMs: 10_000, tasksMean: 100, durationMeanMs: 100_000, cpuMillis: 1000, memoryBytes: 2 * GiB },
  service: { kind: 'service', interArrivalMeanMs: 20_000, tasksMean: 10, durationMeanMs: 500_000, cpuMillis: 1000, memoryBytes: 2 * GiB },
};

/** Calibrated to the paper's shape: >80% of jobs batch, most resources to service; ~79% CPU. */
export const W_OMEGA_LIKE: Workload = {
  name: 'W-omega-like',
  batch: { kind: 'batch', interArrivalMeanMs: 4_000, tasksMean: 100, durationMeanMs: 300_000, cpuMillis: 500, memoryBytes: 1 * GiB },
  service: { kind: 'service', interArrivalMeanMs: 60_000, tasksMean: 10, durationMeanMs: 12 * 3600_000, cpuMillis: 500, memoryBytes: 2 * GiB },
};

export const WORKLOADS: Readonly<Record<Workload['name'], Workload>> = { 'W-sim-example': W_SIM_EXAMPLE, 'W-omega-like': W_OMEGA_LIKE };

export interface CellShape {
  readonly machines: number;
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  /** Fraction of the cell's CPU taken by long-running tasks before the run starts. */
  readonly prefillCpuFraction: number;
  readonly prefillTask: { readonly cpuMillis: number; readonly memoryBytes: number };
}

/** The paper-scale cell. */
export const PAPER_CELL: CellShape = {
  machines: 10_000,
  cpuMillis: 4000,
  memoryBytes: 16 * GiB,
  prefillCpuFraction: 0.6,
  prefillTask: { cpuMillis: 1000, memoryBytes: 4 * GiB },
};

/** Exp(mean) by inversion. */
export function exponential(random: Random, mean: number): number {
  return -mean * Math.log(1 - random.next());
}

export interface Arrival {
  readonly atMs: number;
  readonly kind: 'batch' | 'service';
  readonly tasks: number;
  readonly durationMs: number;
  readonly cpuMillis: number;
  readonly memoryBytes: number;
}

/**
 * The job an arrival submits: its tasks run once for their duration on hollow (or simulated)
 * machines, as in the paper's simulator (a service's default restart policy would restart them).
 * The simulation and the live E3 run submit exactly this.
 */
export function arrivalJobSpec(a: Arrival): JobSpec {
  return {
    name: a.kind,
    namespace: DEFAULT_NAMESPACE,
    kind: a.kind,
    priority: 0,
    instances: a.tasks,
    commitMode: 'default',
    task: { command: ['hollow'], env: {}, resources: { cpuMillis: a.cpuMillis, memoryBytes: a.memoryBytes }, runDurationMs: a.durationMs, hollowFail: false, pidsLimit: 0 },
    constraints: [],
    restartPolicy: { kind: 'never', maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 },
  };
}

/**
 * Job arrivals of one class from `startMs` until `untilMs`, in time order. `rateFactor`
 * multiplies the arrival rate (E2's batch load sweep; also used to scale a workload to a
 * smaller cell).
 */
export function* arrivals(jobClass: JobClass, random: Random, startMs: number, untilMs: number, rateFactor = 1): Generator<Arrival> {
  let t = startMs;
  for (;;) {
    t += exponential(random, jobClass.interArrivalMeanMs / rateFactor);
    if (t > untilMs) return;
    yield {
      atMs: t,
      kind: jobClass.kind,
      tasks: Math.max(1, Math.ceil(exponential(random, jobClass.tasksMean))),
      durationMs: Math.max(1, Math.round(exponential(random, jobClass.durationMeanMs))),
      cpuMillis: jobClass.cpuMillis,
      memoryBytes: jobClass.memoryBytes,
    };
  }
}

/** Merges two time-ordered arrival streams. */
export function* merge(a: Iterator<Arrival>, b: Iterator<Arrival>): Generator<Arrival> {
  let x = a.next();
  let y = b.next();
  while (!x.done || !y.done) {
    if (y.done || (!x.done && x.value.atMs <= y.value.atMs)) {
      yield x.value as Arrival;
      x = a.next();
    } else {
      yield y.value;
      y = b.next();
    }
  }
}

/**
 * A workload for a cell of `machines` instead of the paper's 10,000: arrival rates scale with
 * the cell so the load (and utilization) stays the same.
 */
export function scaledTo(workload: Workload, machines: number): Workload {
  const f = PAPER_CELL.machines / machines;
  return {
    name: workload.name,
    batch: { ...workload.batch, interArrivalMeanMs: workload.batch.interArrivalMeanMs * f },
    service: { ...workload.service, interArrivalMeanMs: workload.service.interArrivalMeanMs * f },
  };
}
