/**
 * E3 (live): conflict detection x transaction mode on real etcd, checked against the simulator at
 * the same scaled settings. That agreement is what says the etcd commit path means what the
 * simulator means.
 *
 * Scaling: W-omega-like's rates scaled to the cell (`scaledTo`), then time compressed by
 * `compression`: arrival gaps, task durations and think times all divided by it, so every
 * "rate x window" product (what conflicts depend on) is unchanged while minutes of wall time
 * cover hours of the workload. What cannot be compressed is the store's own latency (a few ms
 * per commit), which widens each live think window a little: the tolerance allows for it.
 *
 * Service density: W-omega-like sends a service job a minute to 10,000 machines, so a scaled-down
 * cell sees a handful per live minute: too few transactions for a check that could fail. Service
 * jobs arrive `serviceDensity` times as often and last as many times less, which keeps the
 * service load on the cell (jobs x tasks x duration) and multiplies the service transactions.
 * The agreement check ({@link agreement}) states the difference in conflict fraction it can
 * detect from the transaction counts it saw.
 *
 * Per point: a fresh cell, a hollow agent (machines of 4 CPU / 16 GiB), the prefill (same code as
 * the simulator's), one batch and one service scheduler process with the arm's modes and the
 * compressed think times, and the workload fed from the same seeded arrival stream for
 * `seconds`. The simulator then runs the identical config (same machines, rates, think times,
 * retry backoff and placement policies) for `simFactor` times as long, to keep its own sampling
 * error small.
 */
import { Progress, jobId, type CellMirror, type ConflictMode, type JobKind, type MachineId, type TransactionMode } from '@omega/cell-state';
import { hash32, seededRandom, type SchedulerMetrics } from '@omega/scheduler-core';
import { PAPER_CELL, W_OMEGA_LIKE, arrivalJobSpec, arrivals, merge, prefillCell, runSimulation, scaledTo, type CellShape, type SimulationConfig, type SimulationResult, type Workload } from '@omega/simulator';
import { finalMetrics, waitFor, waitForAnnouncements, type ChildHandle, type LiveCluster } from './live-cluster.js';
import { frac, pct } from './markdown.js';
import type { CheckResult } from './result.js';
import { E3_ARMS, modeArm } from './sim-experiments.js';

export interface LiveE3Options {
  readonly machines: number;
  readonly compression: number;
  /** t_job(service) in the paper's (uncompressed) seconds. */
  readonly tJobServiceS: readonly number[];
  readonly seconds: number;
  readonly simFactor: number;
  /** Service jobs this many times as often, lasting this many times less (see above). Default {@link LIVE_E3_SERVICE_DENSITY}. */
  readonly serviceDensity?: number;
  readonly seed: number;
  readonly print: (line: string) => void;
}

export interface RoleCounts {
  readonly ok: number;
  readonly failed: number;
  readonly conflictFraction: number;
}

export interface LiveE3Point {
  readonly arm: string;
  readonly conflictMode: ConflictMode;
  readonly transactionMode: TransactionMode;
  readonly tJobServiceS: number;
  readonly live: { readonly batch: RoleCounts; readonly service: RoleCounts; readonly metrics: Readonly<Record<string, SchedulerMetrics | undefined>>; readonly jobsSubmitted: Readonly<Record<JobKind, number>> };
  readonly sim: { readonly batch: RoleCounts; readonly service: RoleCounts; readonly result: SimulationResult };
  readonly simConfig: SimulationConfig;
}

/** The scaled, compressed workload, its service jobs `serviceDensity` times as dense and as short. */
export function compressedWorkload(machines: number, compression: number, serviceDensity = 1): Workload {
  const w = scaledTo(W_OMEGA_LIKE, machines);
  const squeeze = (c: Workload['batch'], f: number): Workload['batch'] => ({ ...c, interArrivalMeanMs: c.interArrivalMeanMs / (compression * f), durationMeanMs: c.durationMeanMs / (compression * f) });
  return { name: w.name, batch: squeeze(w.batch, 1), service: squeeze(w.service, serviceDensity) };
}

/** Service jobs of the live E3 come this many times as often as W-omega-like's, and last as many times less. */
export const LIVE_E3_SERVICE_DENSITY = 10;

/** Failed and successful transactions. */
export interface TransactionTally {
  readonly failed: number;
  readonly ok: number;
}

/** One stratum of an agreement test: the same settings run live and simulated. */
export interface Stratum {
  readonly live: TransactionTally;
  readonly sim: TransactionTally;
}

export interface Agreement {
  /** Live failed transactions, and as many as the simulated failure rates predict for the live counts. */
  readonly observed: number;
  readonly expected: number;
  /** (observed - expected) / its standard deviation (binomial, live and simulated sampling both). */
  readonly z: number;
  /** Two-sided p-value of `z`. */
  readonly pValue: number;
  /**
   * The smallest relative difference in conflict fraction (live = (1 + d) x sim, at every stratum)
   * that this test detects at {@link AGREEMENT_ALPHA} with power {@link AGREEMENT_POWER}
   * (the larger of the upward and downward one); Infinity when none is.
   */
  readonly detectable: number;
  /** The same for a live conflict fraction above the simulated one, and below it. */
  readonly detectableUp: number;
  readonly detectableDown: number;
}

/** Significance of the agreement test (two-sided). */
export const AGREEMENT_ALPHA = 0.05;
/** Power at which the detectable difference is stated. */
export const AGREEMENT_POWER = 0.8;
/** The difference in conflict fraction a check must be able to detect to count. */
export const AGREEMENT_REQUIRED_DIFFERENCE = 0.3;

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 through erf; |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(x)) / Math.SQRT2);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-(x * x) / 2);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** The standard normal quantile, by bisection on {@link normalCdf}. */
export function normalQuantile(p: number): number {
  let lo = -10;
  let hi = 10;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Whether live and simulated failure rates agree, stratum by stratum (Mantel-Haenszel style): the
 * live failed transactions against those the simulated rate of each stratum predicts for its live
 * transactions, a binomial variance for each side. The conflict fraction is failed / ok, so a
 * rate q = failed / (failed + ok) and cf = q / (1 - q) carry the same information; a stratum whose
 * simulation saw no failure is taken at half of one (an unseen rate is not known to be zero).
 */
export function agreement(strata: readonly Stratum[]): Agreement {
  const rows = strata
    .map((s) => {
      const n = s.live.failed + s.live.ok;
      const m = s.sim.failed + s.sim.ok;
      const q = m === 0 ? 0 : Math.max(s.sim.failed, 0.5) / m;
      return { n, m, q, failed: s.live.failed };
    })
    .filter((r) => r.n > 0 && r.m > 0);
  const observed = rows.reduce((a, r) => a + r.failed, 0);
  const variance = (qOf: (q: number) => number): number => rows.reduce((a, r) => a + r.n * qOf(r.q) * (1 - qOf(r.q)) + (r.n * r.n * r.q * (1 - r.q)) / r.m, 0);
  const expectedAt = (qOf: (q: number) => number): number => rows.reduce((a, r) => a + r.n * qOf(r.q), 0);
  const expected = expectedAt((q) => q);
  const sd0 = Math.sqrt(variance((q) => q));
  const z = sd0 === 0 ? (observed === expected ? 0 : Infinity) : (observed - expected) / sd0;
  const pValue = Number.isFinite(z) ? 2 * (1 - normalCdf(Math.abs(z))) : 0;
  // The live rate if the conflict fraction were (1 + d) times the simulated one.
  const shifted = (d: number) => (q: number): number => {
    const cf = (q / (1 - q)) * (1 + d);
    return cf / (1 + cf);
  };
  const zAlpha = normalQuantile(1 - AGREEMENT_ALPHA / 2);
  const zPower = normalQuantile(AGREEMENT_POWER);
  const powered = (d: number): boolean => {
    const q = shifted(d);
    const gap = Math.abs(expectedAt(q) - expected);
    return gap >= zAlpha * sd0 + zPower * Math.sqrt(variance(q));
  };
  const smallest = (sign: 1 | -1): number => {
    const limit = sign === 1 ? 100 : 0.999;
    if (rows.length === 0 || !powered(sign * limit)) return Infinity;
    let lo = 0;
    let hi = limit;
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (powered(sign * mid)) hi = mid;
      else lo = mid;
    }
    return hi;
  };
  const up = smallest(1);
  const down = smallest(-1);
  return { observed, expected, z, pValue, detectable: Math.max(up, down), detectableUp: up, detectableDown: down };
}

/** The simulation config matching one live point (live retry defaults: 10 ms doubling to 1 s). */
export function simConfigFor(options: LiveE3Options, conflictMode: ConflictMode, transactionMode: TransactionMode, tJobServiceS: number): SimulationConfig {
  const c = options.compression;
  const cell: CellShape = { ...PAPER_CELL, machines: options.machines };
  return {
    seed: options.seed,
    cell,
    workload: compressedWorkload(options.machines, c, options.serviceDensity ?? LIVE_E3_SERVICE_DENSITY),
    durationMs: options.seconds * 1000 * options.simFactor,
    schedulers: [
      { name: 'batch-0', role: 'batch', thinkTimes: { batch: { jobMs: 100 / c, taskMs: 5 / c } }, conflictMode, transactionMode },
      { name: 'service-0', role: 'service', thinkTimes: { service: { jobMs: (tJobServiceS * 1000) / c, taskMs: 5 / c } }, conflictMode, transactionMode },
    ],
    mirror: 'shared',
    servicePlacement: 'careful',
    retryBackoff: { initialMs: 10, maxMs: 1000 },
  };
}

function counts(ok: number, failed: number): RoleCounts {
  return { ok, failed, conflictFraction: ok > 0 ? failed / ok : failed };
}

function aliveIds(mirror: CellMirror): MachineId[] {
  return [...mirror.snapshot().aliveMachines()].map((a) => a.machineId).sort();
}

/** Feeds the arrival stream into the cell in (compressed) real time for `seconds`. */
async function feed(options: LiveE3Options, config: SimulationConfig, cell: ReturnType<LiveCluster['cell']>): Promise<Record<JobKind, number>> {
  const stream = merge(
    arrivals(config.workload.batch, seededRandom(config.seed ^ hash32('batch')), 0, options.seconds * 1000),
    arrivals(config.workload.service, seededRandom(config.seed ^ hash32('service')), 0, options.seconds * 1000),
  );
  const n: Record<JobKind, number> = { batch: 0, service: 0 };
  const start = Date.now();
  const pending: Promise<unknown>[] = [];
  for (const a of stream) {
    const wait = start + a.atMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = jobId(`${a.kind}-${n[a.kind]++}`);
    pending.push(
      cell.createJob({
        id,
        spec: arrivalJobSpec(a),
      }),
    );
  }
  await Promise.all(pending);
  const rest = start + options.seconds * 1000 - Date.now();
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  return n;
}

async function livePoint(cluster: LiveCluster, options: LiveE3Options, conflictMode: ConflictMode, transactionMode: TransactionMode, tJobServiceS: number, index: number): Promise<LiveE3Point['live']> {
  const config = simConfigFor(options, conflictMode, transactionMode, tJobServiceS);
  const cellName = `e3-${index}`;
  const cell = cluster.cell(cellName);
  const agent = cluster.startAgents(cellName, options.machines, { cpu: '4', memory: '16Gi' });
  const mirror = cell.mirror();
  await mirror.start();
  const handles: ChildHandle[] = [];
  try {
    await waitFor(mirror, () => aliveIds(mirror).length >= options.machines, 120_000, `${options.machines} hollow machines alive`);
    const lease = await cluster.kv.grantLease(60, { autoKeepAlive: true });
    await prefillCell(cell, config.cell, aliveIds(mirror), seededRandom(options.seed), lease, 24 * 3600_000);
    for (const s of config.schedulers) {
      const kind = s.role === 'batch' ? 'batch' : 'service';
      const think = s.thinkTimes[kind];
      handles.push(
        cluster.startScheduler(kind, cellName, s.name, [
          '--conflict-mode',
          conflictMode,
          '--transaction-mode',
          transactionMode,
          '--t-job-ms',
          String(think?.jobMs ?? 0),
          '--t-task-ms',
          String(think?.taskMs ?? 0),
          // A job per commit, as the simulated schedulers (the batch process would commit up to 32 at once).
          ...(kind === 'batch' ? ['--choice', 'first-fit', '--max-jobs-per-commit', '1'] : []),
          '--ownership-grace-ms',
          String(365 * 24 * 3600_000),
          '--seed',
          String((options.seed ^ hash32(s.name)) >>> 0),
        ]),
      );
    }
    await waitForAnnouncements(mirror, handles);
    const jobsSubmitted = await feed(options, config, cell);
    const metrics: Record<string, SchedulerMetrics | undefined> = {};
    for (const h of handles) {
      await cluster.stopProcess(h);
      metrics[h.name] = finalMetrics(h);
      if (metrics[h.name] === undefined) throw new Error(`scheduler ${h.name} printed no final metrics: ${h.stderrTail.slice(-5).join(' | ')}`);
    }
    await lease.revoke();
    const m = (name: string): SchedulerMetrics | undefined => metrics[name];
    return {
      batch: counts(m('batch-0')?.transactionsOk ?? 0, m('batch-0')?.transactionsFailed ?? 0),
      service: counts(m('service-0')?.transactionsOk ?? 0, m('service-0')?.transactionsFailed ?? 0),
      metrics,
      jobsSubmitted,
    };
  } finally {
    for (const h of handles) await cluster.stopProcess(h);
    await cluster.stopProcess(agent);
    await mirror.stop();
    await cell.kv.delete(cell.keys.root, { prefix: true });
  }
}

/** Every arm at every t_job(service): live, then the simulator at the same settings. */
export async function runLiveE3(cluster: LiveCluster, options: LiveE3Options): Promise<LiveE3Point[]> {
  const points: LiveE3Point[] = [];
  let index = 0;
  const progress = new Progress(options.tJobServiceS.length * E3_ARMS.length);
  for (const t of options.tJobServiceS) {
    for (const { conflictMode, transactionMode } of E3_ARMS) {
      const arm = modeArm(conflictMode, transactionMode);
      options.print(`  ${progress.starting()} E3 live: ${arm}, t_job(service) = ${t} s (${(t * 1000) / options.compression} ms compressed), ${options.seconds} s`);
      const live = await livePoint(cluster, options, conflictMode, transactionMode, t, index++);
      const simConfig = simConfigFor(options, conflictMode, transactionMode, t);
      const result = await runSimulation(simConfig);
      const role = (r: string): RoleCounts => {
        const s = result.schedulers.filter((x) => x.role === r);
        return counts(
          s.reduce((a, x) => a + x.metrics.transactionsOk, 0),
          s.reduce((a, x) => a + x.metrics.transactionsFailed, 0),
        );
      };
      const point: LiveE3Point = { arm, conflictMode, transactionMode, tJobServiceS: t, live, sim: { batch: role('batch'), service: role('service'), result }, simConfig };
      options.print(
        `    service conflict fraction live ${point.live.service.conflictFraction.toFixed(3)} (${point.live.service.failed}/${point.live.service.ok}) vs sim ${point.sim.service.conflictFraction.toFixed(3)} (${point.sim.service.failed}/${point.sim.service.ok}); batch live ${point.live.batch.conflictFraction.toFixed(3)} vs sim ${point.sim.batch.conflictFraction.toFixed(3)}`,
      );
      points.push(point);
      progress.step();
    }
  }
  return points;
}

/** What a detectable difference reads as. */
function detectableText(a: Agreement): string {
  const side = (d: number, sign: string): string => (Number.isFinite(d) ? `${sign}${pct(d)}` : `no ${sign === '+' ? 'rise' : 'fall'}`);
  return `${side(a.detectableUp, '+')} / ${side(a.detectableDown, '−')}`;
}

function cfText(t: TransactionTally): string {
  return `${frac(t.ok > 0 ? t.failed / t.ok : t.failed)} (${t.failed}/${t.ok})`;
}

/**
 * The E3 live = sim checks: per mode pair (its points pooled as strata) and over every point,
 * the service scheduler's failure rate live against the simulated one ({@link agreement}). A pair
 * passes when the difference is not significant at 1%; the pooled check also needs the power to
 * see a {@link AGREEMENT_REQUIRED_DIFFERENCE} difference in conflict fraction, so a run too short to
 * tell fails instead of passing. Each states the difference it could detect.
 */
export function e3Checks(points: readonly LiveE3Point[], arms: readonly string[]): CheckResult[] {
  const stratum = (p: LiveE3Point): Stratum => ({ live: p.live.service, sim: p.sim.service });
  const sum = (ps: readonly LiveE3Point[], side: 'live' | 'sim'): TransactionTally => ({ failed: ps.reduce((a, p) => a + p[side].service.failed, 0), ok: ps.reduce((a, p) => a + p[side].service.ok, 0) });
  const describe = (ps: readonly LiveE3Point[], a: Agreement): string =>
    `live ${cfText(sum(ps, 'live'))} vs sim ${cfText(sum(ps, 'sim'))}: ${a.observed} live failed transactions where the simulated rates predict ${a.expected.toFixed(1)}, z ${a.z.toFixed(2)}, p ${a.pValue.toFixed(3)}; detects ${detectableText(a)} in conflict fraction (alpha ${AGREEMENT_ALPHA}, power ${AGREEMENT_POWER})`;
  const perArm = arms.map((arm): CheckResult => {
    const ps = points.filter((p) => p.arm === arm);
    const a = agreement(ps.map(stratum));
    return { name: `E3 live = sim, service conflict fraction, ${arm}`, pass: ps.length > 0 && a.pValue >= 0.01, detail: `${describe(ps, a)}; passes when p ≥ 0.01` };
  });
  const all = agreement(points.map(stratum));
  const powered = all.detectable <= AGREEMENT_REQUIRED_DIFFERENCE;
  return [
    ...perArm,
    {
      name: `E3 live = sim over every point, with the power to see a ${pct(AGREEMENT_REQUIRED_DIFFERENCE)} difference`,
      pass: points.length > 0 && all.pValue >= 0.01 && powered,
      detail: `${describe(points, all)}; passes when p ≥ 0.01 and a ${pct(AGREEMENT_REQUIRED_DIFFERENCE)} difference is detectable${powered ? '' : ' (it is not: too few transactions)'}`,
    },
  ];
}
