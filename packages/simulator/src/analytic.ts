/**
 * Closed-form expectations the simulation is checked against. With no conflicts, a scheduler's
 * busyness is its demand: the arrival rate of the jobs it takes times their mean decision time,
 * `t_job + t_task x tasks` (the Omega paper's model, section 4). If the simulator's clock or
 * accounting were wrong (think time counted twice, time not advancing during a think, attempts
 * lost), a monolithic scheduler's measured busyness would drift from this number.
 */
import type { JobKind } from '@omega/cell-state';
import type { Arrival, JobClass, Workload } from './workload.js';

/** Think time of one attempt: `jobMs + taskMs x tasks to place`. */
export interface ThinkTime {
  readonly jobMs: number;
  readonly taskMs: number;
}

/** The think time per job kind a scheduler uses (a kind it does not take is absent). */
export type ThinkTimes = Readonly<Partial<Record<JobKind, ThinkTime>>>;

/** E[ceil(X)] for X ~ Exp(mean): the geometric mean 1 / (1 - e^(-1/mean)). */
export function expectedTasks(tasksMean: number): number {
  return 1 / -Math.expm1(-1 / tasksMean);
}

/** Arrivals per millisecond of a job class, with E2's load factor for batch. */
export function arrivalRatePerMs(jobClass: JobClass, rateFactor = 1): number {
  return rateFactor / jobClass.interArrivalMeanMs;
}

/**
 * The no-conflict busyness of a scheduler taking the job kinds in `thinkTimes`: sum over kinds
 * of rate x (t_job + t_task x E[tasks]). Above 1 the scheduler saturates (its queue grows).
 */
export function analyticBusyness(workload: Workload, thinkTimes: ThinkTimes, batchRateFactor = 1): number {
  let busyness = 0;
  for (const jobClass of [workload.batch, workload.service]) {
    const think = thinkTimes[jobClass.kind];
    if (think === undefined) continue;
    const factor = jobClass.kind === 'batch' ? batchRateFactor : 1;
    busyness += arrivalRatePerMs(jobClass, factor) * (think.jobMs + think.taskMs * expectedTasks(jobClass.tasksMean));
  }
  return busyness;
}

/**
 * The same demand from the arrivals a run actually drew: sum of decision times of the jobs of
 * the scheduler's kinds, over `elapsedMs`. Removes the sampling noise of a short run from the
 * comparison, so what is left is the simulator's own error (plus jobs still waiting at the end).
 */
export function realizedDemand(arrivals: Iterable<Arrival>, thinkTimes: ThinkTimes, elapsedMs: number): number {
  let demand = 0;
  for (const a of arrivals) {
    const think = thinkTimes[a.kind];
    if (think !== undefined) demand += think.jobMs + think.taskMs * a.tasks;
  }
  return elapsedMs > 0 ? demand / elapsedMs : 0;
}

/**
 * A tolerance for comparing a short run's busyness with {@link analyticBusyness}: three standard
 * errors of the sampled demand (jobs arrive as a Poisson process; task counts are geometric, so
 * the decision time of one job has a coefficient of variation near 1), never below `floor`.
 */
export function analyticTolerance(workload: Workload, thinkTimes: ThinkTimes, elapsedMs: number, batchRateFactor = 1, floor = 0.03): number {
  // Var of a compound Poisson sum over time T: rate x T x E[D^2]; relative error sqrt(E[D^2] / (n E[D]^2)).
  let mean = 0;
  let second = 0;
  for (const jobClass of [workload.batch, workload.service]) {
    const think = thinkTimes[jobClass.kind];
    if (think === undefined) continue;
    const rate = arrivalRatePerMs(jobClass, jobClass.kind === 'batch' ? batchRateFactor : 1) * elapsedMs;
    const n = expectedTasks(jobClass.tasksMean);
    // Geometric task count: E[N^2] = Var + mean^2 = n(n - 1) + n^2.
    const eD = think.jobMs + think.taskMs * n;
    const eD2 = think.jobMs ** 2 + 2 * think.jobMs * think.taskMs * n + think.taskMs ** 2 * (n * (n - 1) + n * n);
    mean += rate * eD;
    second += rate * eD2;
  }
  if (mean === 0) return floor;
  return Math.max(floor, (3 * Math.sqrt(second)) / mean);
}

/**
 * The t_job at which a single-path monolithic scheduler (one t_job for every job, `taskMs` per
 * task) saturates: rate x (t_job + t_task x E[tasks]) = 1 summed over both kinds. BENCH.md: near
 * 3.3 s for W-omega-like. Infinity when the per-task time alone saturates it.
 */
export function saturationJobMs(workload: Workload, taskMs: number, batchRateFactor = 1): number {
  const classes = [workload.batch, workload.service];
  const rate = classes.reduce((a, c) => a + arrivalRatePerMs(c, c.kind === 'batch' ? batchRateFactor : 1), 0);
  const perTask = classes.reduce((a, c) => a + arrivalRatePerMs(c, c.kind === 'batch' ? batchRateFactor : 1) * taskMs * expectedTasks(c.tasksMean), 0);
  return perTask >= 1 ? Infinity : (1 - perTask) / rate;
}
