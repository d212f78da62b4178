/**
 * The built-in checks of the simulated experiments (printed as PASS/FAIL, kept in result.json):
 *
 * - every run: the metrics add up (the schedulers' own counts agree with what the store shows;
 *   submitted = fully scheduled + abandoned + still queued; incremental utilization = full count);
 * - E1: the monolithic arms' busyness equals the no-conflict demand, arrival rate x mean decision
 *   time: tightly against the demand of the arrivals the run drew (the simulator's clock and
 *   accounting), and against the closed form within the run's sampling error;
 * - E2: the conflict fraction rises with the number of batch schedulers;
 * - E3: sequence-numbers conflicts more than resource-fit, all-or-nothing more than incremental.
 */
import { analyticTolerance } from '@omega/simulator';
import { frac, pct } from './markdown.js';
import type { CheckResult } from './result.js';
import { E3_ARMS, modeArm, type SimExperiment } from './sim-experiments.js';
import type { SimPointResult } from './sim-runner.js';

/** Points whose no-conflict demand is below this are compared with it (above, queues grow). */
export const UNSATURATED = 0.9;
/** Measured busyness vs the drawn arrivals' demand: what the simulator's own error may be. */
export const REALIZED_TOLERANCE = 0.02;

/** Transactions summed over schedulers: failed / successful. */
export function pooledConflictFraction(points: readonly SimPointResult[], role?: string): number {
  let failed = 0;
  let ok = 0;
  for (const p of points) {
    for (const s of p.result.schedulers) {
      if (role !== undefined && s.role !== role) continue;
      failed += s.metrics.transactionsFailed;
      ok += s.metrics.transactionsOk;
    }
  }
  return ok > 0 ? failed / ok : failed;
}

/** Mean over the schedulers of a role of their conflict fraction. */
export function meanConflictFraction(point: SimPointResult, role: string): number {
  const s = point.result.schedulers.filter((x) => x.role === role);
  return s.length === 0 ? 0 : s.reduce((a, x) => a + x.metrics.conflictFraction, 0) / s.length;
}

export function meanBusyness(point: SimPointResult, role: string): number {
  const s = point.result.schedulers.filter((x) => x.role === role);
  return s.length === 0 ? 0 : s.reduce((a, x) => a + x.metrics.busyness, 0) / s.length;
}

/** Every point's counts agree with each other. */
export function metricsAddUp(points: readonly SimPointResult[]): CheckResult {
  const problems: string[] = [];
  for (const p of points) {
    const r = p.result;
    const sum = (f: (m: (typeof r.schedulers)[number]['metrics']) => number): number => r.schedulers.reduce((a, s) => a + f(s.metrics), 0);
    const w = [r.workloads.batch, r.workloads.service];
    const placed = w.reduce((a, x) => a + x.tasksPlaced, 0);
    const fully = w.reduce((a, x) => a + x.jobsFullyScheduled, 0);
    const abandoned = w.reduce((a, x) => a + x.jobsAbandoned, 0);
    if (sum((m) => m.claimsCommitted) !== placed) problems.push(`${p.id}: claims committed ${sum((m) => m.claimsCommitted)} != first placements seen ${placed}`);
    if (sum((m) => m.jobsPlaced) !== fully) problems.push(`${p.id}: jobs placed (schedulers) ${sum((m) => m.jobsPlaced)} != fully scheduled (store) ${fully}`);
    if (sum((m) => m.jobsAbandoned) !== abandoned) problems.push(`${p.id}: jobs abandoned (schedulers) ${sum((m) => m.jobsAbandoned)} != abandoned statuses ${abandoned}`);
    for (const x of w) {
      if (x.jobsFullyScheduled + x.jobsAbandoned + x.jobsStillQueued !== x.jobsSubmitted) problems.push(`${p.id}: ${x.kind} jobs do not add up`);
    }
    if (sum((m) => m.claimsAttempted) !== sum((m) => m.claimsCommitted + m.claimsConflicted)) problems.push(`${p.id}: claims attempted != committed + conflicted`);
    if (r.utilizationDrift > 1e-9) problems.push(`${p.id}: utilization bookkeeping drifted by ${r.utilizationDrift}`);
  }
  return {
    name: 'metrics add up',
    pass: problems.length === 0,
    detail:
      problems.length === 0
        ? `${points.length} runs: claims committed = first placements, jobs placed/abandoned (schedulers) = store, submitted = fully scheduled + abandoned + queued, utilization exact`
        : problems.slice(0, 5).join('; '),
  };
}

/** E1: the monolithic arms against the no-conflict demand. */
export function e1Checks(experiment: SimExperiment, points: readonly SimPointResult[]): CheckResult[] {
  const mono = points.filter((p) => p.arm.startsWith('monolithic'));
  let worstRealized = 0;
  let worstRealizedAt = '';
  let worstAnalytic = 0;
  let worstAnalyticAt = '';
  let analyticFailures = 0;
  let compared = 0;
  for (const p of mono) {
    const s = p.result.schedulers[0];
    if (s === undefined || s.analyticBusyness >= UNSATURATED) continue;
    compared++;
    const measured = s.metrics.busyness;
    const realizedErr = Math.abs(measured - s.realizedDemand) / s.realizedDemand;
    if (realizedErr > worstRealized) {
      worstRealized = realizedErr;
      worstRealizedAt = `${p.id}: measured ${frac(measured)} vs ${frac(s.realizedDemand)}`;
    }
    const tolerance = analyticTolerance(p.config.workload, s.thinkTimes, p.result.simulatedMs, p.config.batchRateFactor ?? 1);
    const analyticErr = Math.abs(measured - s.analyticBusyness) / s.analyticBusyness;
    if (analyticErr > tolerance) analyticFailures++;
    if (analyticErr / tolerance > worstAnalytic) {
      worstAnalytic = analyticErr / tolerance;
      worstAnalyticAt = `${p.id}: measured ${frac(measured)} vs analytic ${frac(s.analyticBusyness)} (error ${pct(analyticErr)}, tolerance ${pct(tolerance)})`;
    }
  }
  return [
    {
      name: `${experiment.id} monolithic busyness = demand of the drawn arrivals (rate x decision time), within ${pct(REALIZED_TOLERANCE)}`,
      pass: compared > 0 && worstRealized <= REALIZED_TOLERANCE,
      detail: compared === 0 ? 'no unsaturated monolithic point' : `${compared} unsaturated points; worst error ${pct(worstRealized)} (${worstRealizedAt})`,
    },
    {
      name: `${experiment.id} monolithic busyness = analytic λ·E[t_job + t_task·tasks] within 3 standard errors of the run's sampling (at least 3%)`,
      pass: compared > 0 && analyticFailures === 0,
      detail: compared === 0 ? 'no unsaturated monolithic point' : `${compared - analyticFailures}/${compared} within tolerance; worst: ${worstAnalyticAt}`,
    },
  ];
}

/** Spearman rank correlation of two equally long series (ties get average ranks). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const rank = (v: readonly number[]): number[] => {
    const order = v.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(v.length).fill(0);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && (order[j + 1] as readonly [number, number])[0] === (order[i] as readonly [number, number])[0]) j++;
      for (let k = i; k <= j; k++) r[(order[k] as readonly [number, number])[1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const mean = (v: number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    const x = (ra[i] as number) - ma;
    const y = (rb[i] as number) - mb;
    num += x * y;
    da += x * x;
    db += y * y;
  }
  return da === 0 || db === 0 ? 0 : num / Math.sqrt(da * db);
}

/** E2: batch schedulers' conflict fraction (pooled over the load sweep) rises with their number. */
export function e2Checks(experiment: SimExperiment, points: readonly SimPointResult[]): CheckResult[] {
  const checks: CheckResult[] = [];
  for (const workload of [...new Set(points.map((p) => p.workload))]) {
    const counts = [...new Set(points.filter((p) => p.workload === workload).map((p) => p.x.batchSchedulers as number))].sort((a, b) => a - b);
    const cf = counts.map((n) => pooledConflictFraction(points.filter((p) => p.workload === workload && p.x.batchSchedulers === n), 'batch'));
    const rho = spearman(counts, cf);
    const first = cf[0] ?? 0;
    const last = cf[cf.length - 1] ?? 0;
    checks.push({
      name: `${experiment.id} ${workload}: batch conflict fraction rises with the number of batch schedulers`,
      pass: last > first && rho >= 0.8,
      detail: `pooled over the load sweep: ${counts.map((n, i) => `${n}: ${frac(cf[i] as number)}`).join(', ')} (Spearman ρ = ${rho.toFixed(2)}, needs ≥ 0.8 and last > first)`,
    });
  }
  return checks;
}

/**
 * E3: the paper's ordering as main effects, pooled over the other mode, the schedulers and the
 * t_job(service) sweep (failed / successful transactions): sequence-numbers conflicts more than
 * resource-fit, all-or-nothing more than incremental. Pooling keeps the check about the effect,
 * not about the noise of one cell: where conflicts are rare (resource-fit at short think times)
 * the two transaction modes differ by a handful of transactions in a quick run.
 */
export function e3Checks(experiment: SimExperiment, points: readonly SimPointResult[]): CheckResult[] {
  const pooled = (test: (conflictMode: string, transactionMode: string) => boolean): number =>
    pooledConflictFraction(points.filter((p) => E3_ARMS.some((a) => test(a.conflictMode, a.transactionMode) && p.arm === modeArm(a.conflictMode, a.transactionMode))));
  const cell = (c: Parameters<typeof modeArm>[0], t: Parameters<typeof modeArm>[1]): string => `${modeArm(c, t)} ${frac(pooledConflictFraction(points.filter((p) => p.arm === modeArm(c, t))))}`;
  const seq = pooled((c) => c === 'sequence-numbers');
  const fit = pooled((c) => c === 'resource-fit');
  const aon = pooled((_, t) => t === 'all-or-nothing');
  const inc = pooled((_, t) => t === 'incremental');
  return [
    {
      name: `${experiment.id} sequence-numbers conflicts more than resource-fit`,
      pass: seq > fit,
      detail: `pooled conflict fraction ${frac(seq)} > ${frac(fit)} (per pair: ${cell('sequence-numbers', 'incremental')} vs ${cell('resource-fit', 'incremental')}; ${cell('sequence-numbers', 'all-or-nothing')} vs ${cell('resource-fit', 'all-or-nothing')})`,
    },
    {
      name: `${experiment.id} all-or-nothing conflicts more than incremental`,
      pass: aon > inc,
      detail: `pooled conflict fraction ${frac(aon)} > ${frac(inc)} (per pair: ${cell('resource-fit', 'all-or-nothing')} vs ${cell('resource-fit', 'incremental')}; ${cell('sequence-numbers', 'all-or-nothing')} vs ${cell('sequence-numbers', 'incremental')})`,
    },
  ];
}

/** Every check of a simulated experiment. */
export function simChecks(experiment: SimExperiment, points: readonly SimPointResult[]): CheckResult[] {
  const checks = [metricsAddUp(points)];
  switch (experiment.id) {
    case 'E1':
      checks.push(...e1Checks(experiment, points));
      break;
    case 'E2':
      checks.push(...e2Checks(experiment, points));
      break;
    case 'E3':
      checks.push(...e3Checks(experiment, points));
      break;
    case 'E4':
      break;
  }
  return checks;
}
