/**
 * One simulation run: the real schedulers (scheduler-core's loop, the batch and service
 * policies, cell-state's PrivateCell and Committer) against the in-memory store on a virtual
 * clock, fed a seeded workload, measured the way BENCH.md defines it.
 *
 * ```
 *  VirtualClock ──► MemoryKv (leases) ──► Cell: machines + heartbeats + prefill (sim-cell.ts)
 *      │                                   │ watch
 *      │                           mirror(s) ──► Scheduler.run() x N  (think = clock.sleep)
 *      ├─ feeder: arrivals ──► cell.createJob at their instants
 *      ├─ SimAgent: ends tasks runDurationMs after their commit (batched writes)
 *      └─ WorkloadMetrics: first placements, utilization samples; AttemptLog via policy probes
 * ```
 *
 * Contract: the result is a pure function of the config (same seed, same numbers), whatever the
 * machine's speed: nothing reads the wall clock except `wallMs`. Think time is virtual
 * (`t_job + t_task x tasks to place`, per job kind); store operations and placement take no
 * virtual time. With `mirror: 'shared'` every scheduler, the agent and the metrics read one
 * replica; with `'own'` each scheduler has its own, as separate processes would. MemoryKv
 * delivers every change before virtual time can move, so both see the same states at the same
 * instants; 'shared' decodes each record once instead of once per scheduler.
 */
import { jobId, type CellMirror, type ConflictMode, type JobKind, type TransactionMode } from '@omega/cell-state';
import { batchPolicy } from '@omega/scheduler-batch';
import { Scheduler, hash32, seededRandom, type PlacementPolicy, type SchedulerMetrics, type SchedulerSettings } from '@omega/scheduler-core';
import { analyticBusyness, realizedDemand, type ThinkTime, type ThinkTimes } from './analytic.js';
import { AttemptLog, monolithicPolicy, probePolicy, simServicePolicy, type ServicePlacement } from './policies.js';
import { SIM_STORE_HISTORY, buildSimCell, sequentialClaimIds } from './sim-cell.js';
import { SimAgent } from './sim-agent.js';
import { SimJanitor } from './sim-janitor.js';
import { TransactionLog, type TransactionSummary } from './transaction-log.js';
import { VirtualClock } from './virtual-clock.js';
import { WorkloadMetrics, type UtilizationSummary, type WorkloadSummary } from './workload-metrics.js';
import { arrivalJobSpec, arrivals, merge, type Arrival, type CellShape, type Workload } from './workload.js';

/** What a simulated scheduler does: batch jobs, service jobs, or both (a monolithic scheduler). */
export type SchedulerRole = 'batch' | 'service' | 'monolithic';

export interface SimSchedulerConfig {
  /** Unique instance name (an id). */
  readonly name: string;
  readonly role: SchedulerRole;
  /** Think time for each kind the scheduler takes (batch: `batch`; service: `service`; monolithic: both). */
  readonly thinkTimes: ThinkTimes;
  /** Default `resource-fit`. */
  readonly conflictMode?: ConflictMode;
  /** Default `incremental`. */
  readonly transactionMode?: TransactionMode;
}

export interface SimulationConfig {
  readonly seed: number;
  readonly cell: CellShape;
  /** Arrival rates as given (scale them with `scaledTo()` for a smaller cell). */
  readonly workload: Workload;
  /** E2: multiplies the batch arrival rate. Default 1. */
  readonly batchRateFactor?: number;
  /** Virtual time simulated after the prefill. */
  readonly durationMs: number;
  readonly schedulers: readonly SimSchedulerConfig[];
  /** Default `shared`. */
  readonly mirror?: 'shared' | 'own';
  /** Default `careful` (the real service policy). */
  readonly servicePlacement?: ServicePlacement;
  /**
   * Backoff before retrying a job whose attempt committed nothing: starts at `initialMs`,
   * doubles up to `maxMs`, jittered (scheduler-core). Default 1 s flat (BENCH.md: re-queue after 1 s).
   */
  readonly retryBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Utilization samples over the run. Default 100. */
  readonly utilizationSamples?: number;
  /** How often finished jobs' records are deleted (sim-janitor.ts); 0: never. Default 10 min. */
  readonly janitorPeriodMs?: number;
  /** Store revisions kept readable; changes memory only, never a result. Default {@link SIM_STORE_HISTORY} (100). */
  readonly storeHistory?: number;
}

export interface SimSchedulerResult {
  readonly name: string;
  readonly role: SchedulerRole;
  readonly thinkTimes: ThinkTimes;
  readonly conflictMode: ConflictMode;
  readonly transactionMode: TransactionMode;
  /** Everything the scheduler counted (BENCH.md's definitions, see scheduler-core metrics.ts). */
  readonly metrics: SchedulerMetrics;
  /** No-conflict busyness from the workload's parameters: rate x mean decision time. */
  readonly analyticBusyness: number;
  /** The same from the arrivals this run drew. */
  readonly realizedDemand: number;
  /** The shape and outcome of its transactions, first ones and retries apart (transaction-log.ts). */
  readonly transactions: TransactionSummary;
}

export interface SimulationResult {
  readonly workloads: Readonly<Record<JobKind, WorkloadSummary>>;
  readonly schedulers: readonly SimSchedulerResult[];
  readonly utilization: UtilizationSummary;
  /** Incremental utilization vs a full count of live claims at the end (0 when the bookkeeping is right). */
  readonly utilizationDrift: number;
  readonly prefillTasks: number;
  readonly simulatedMs: number;
  /** Store traffic and events: how much the run did. */
  readonly store: { readonly revision: number; readonly requests: number; readonly bytesWritten: number };
  readonly timersWoken: number;
  readonly tasksEnded: number;
  /** Finished jobs whose records the janitor deleted. */
  readonly jobsDeleted: number;
  /** Wall-clock time of the run (the only non-deterministic number). */
  readonly wallMs: number;
}

/** The simulation's virtual epoch: a real date, because 0 means "never" in some records. */
export const SIM_EPOCH_MS = Date.UTC(2025, 0, 1);

/** A scheduler config was invalid; names the scheduler and the problem. */
export class SimulationConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'SimulationConfigError';
  }
}

const KINDS_OF: Record<SchedulerRole, readonly JobKind[]> = { batch: ['batch'], service: ['service'], monolithic: ['batch', 'service'] };

function validate(config: SimulationConfig): void {
  if (!(config.durationMs > 0)) throw new SimulationConfigError('durationMs', `must be > 0, got ${config.durationMs}`);
  if (config.storeHistory !== undefined && !(Number.isSafeInteger(config.storeHistory) && config.storeHistory >= 1)) {
    throw new SimulationConfigError('storeHistory', `must be an integer >= 1, got ${config.storeHistory}`);
  }
  if (config.schedulers.length === 0) throw new SimulationConfigError('schedulers', 'at least one is needed');
  const names = new Set<string>();
  config.schedulers.forEach((s, i) => {
    if (names.has(s.name)) throw new SimulationConfigError(`schedulers[${i}].name`, `${s.name} appears twice`);
    names.add(s.name);
    for (const kind of KINDS_OF[s.role]) {
      const t = s.thinkTimes[kind];
      if (t === undefined || !(t.jobMs >= 0) || !(t.taskMs >= 0)) throw new SimulationConfigError(`schedulers[${i}].thinkTimes.${kind}`, 'must give jobMs >= 0 and taskMs >= 0');
    }
  });
  for (const kind of ['batch', 'service'] as const) {
    if (!config.schedulers.some((s) => KINDS_OF[s.role].includes(kind))) throw new SimulationConfigError('schedulers', `no scheduler takes ${kind} jobs`);
  }
}

/** Loop settings of one simulated scheduler. */
function settingsFor(s: SimSchedulerConfig, retry: { readonly initialMs: number; readonly maxMs: number }): Partial<SchedulerSettings> {
  const kinds = KINDS_OF[s.role];
  const single = kinds.length === 1 ? (s.thinkTimes[kinds[0] as JobKind] as ThinkTime) : undefined;
  return {
    conflictMode: s.conflictMode ?? 'resource-fit',
    transactionMode: s.transactionMode ?? 'incremental',
    thinkTimeJobMs: single?.jobMs ?? 0,
    thinkTimeTaskMs: single?.taskMs ?? 0,
    jobKinds: kinds,
    thinkTimeByKind: single === undefined ? s.thinkTimes : {},
    // Jobs stay with the instance their id hashes to (BENCH.md E2): no stealing after a grace.
    ownershipGraceMs: 365 * 24 * 3600_000,
    retryBackoffInitialMs: retry.initialMs,
    retryBackoffMaxMs: retry.maxMs,
    // Membership is published once at start; periodic stats would only add store traffic.
    statsIntervalMs: 0,
  };
}

/** Runs one simulation to `durationMs` of virtual time and measures it. */
export async function runSimulation(config: SimulationConfig): Promise<SimulationResult> {
  validate(config);
  const wallStart = performance.now();
  const clock = new VirtualClock(SIM_EPOCH_MS);
  const random = seededRandom(config.seed);
  const sim = await buildSimCell(config.cell, clock, random, 'sim', config.storeHistory ?? SIM_STORE_HISTORY);
  const { cell, kv } = sim;
  const shared = config.mirror !== 'own';
  const mirrors: CellMirror[] = [];
  const newMirror = async (): Promise<CellMirror> => {
    const m = cell.mirror();
    await m.start();
    mirrors.push(m);
    return m;
  };
  const observer = await newMirror();

  const log = new AttemptLog();
  const transactions = new TransactionLog();
  const service = simServicePolicy(config.servicePlacement ?? 'careful');
  const policyFor = (role: SchedulerRole): PlacementPolicy => (role === 'batch' ? batchPolicy({ choice: 'first-fit' }) : role === 'service' ? service : monolithicPolicy(service));
  const schedulers: Scheduler[] = [];
  for (const s of config.schedulers) {
    const mirror = shared ? observer : await newMirror();
    const lease = await kv.grantLease(60, { autoKeepAlive: true });
    schedulers.push(
      new Scheduler({
        cell: transactions.probeCell(cell, s.name),
        mirror,
        policy: probePolicy(policyFor(s.role), log, clock),
        name: s.name,
        lease,
        clock,
        random: seededRandom(config.seed ^ hash32(s.name)),
        claimIds: sequentialClaimIds(s.name),
        settings: settingsFor(s, config.retryBackoff ?? { initialMs: 1000, maxMs: 1000 }),
      }),
    );
  }

  const metrics = new WorkloadMetrics(observer, clock, log);
  metrics.start();
  const agent = new SimAgent(cell, observer, clock);
  agent.start();
  const janitorPeriod = config.janitorPeriodMs ?? 600_000;
  const janitor = new SimJanitor(cell, observer, clock, janitorPeriod);

  const start = clock.now();
  const end = start + config.durationMs;
  const fed: Arrival[] = [];
  const stream = merge(
    arrivals(config.workload.batch, seededRandom(config.seed ^ hash32('batch')), 0, config.durationMs, config.batchRateFactor ?? 1),
    arrivals(config.workload.service, seededRandom(config.seed ^ hash32('service')), 0, config.durationMs),
  );
  const counters = { batch: 0, service: 0 };
  const feed = async (): Promise<void> => {
    for (const a of stream) {
      const at = start + Math.round(a.atMs);
      if (at > end) break;
      if (at > clock.now()) await clock.sleep(at - clock.now());
      const id = jobId(`${a.kind}-${counters[a.kind]++}`);
      await cell.createJob({
        id,
        submittedAtMs: at,
        spec: arrivalJobSpec(a),
      });
      metrics.submittedJob(id, a.kind, a.tasks, at);
      fed.push(a);
    }
  };

  const failures: unknown[] = [];
  const controller = new AbortController();
  const runs = schedulers.map((s) => s.run(controller.signal).catch((error: unknown) => void failures.push(error)));
  const feeding = feed().catch((error: unknown) => void failures.push(error));
  const samples = config.utilizationSamples ?? 100;
  if (samples > 0) metrics.sampleEvery(clock, config.durationMs / samples, end - 1);
  if (janitorPeriod > 0) janitor.start(end - 1);

  await clock.runUntil(end);
  if (failures.length > 0) throw failures[0];

  const results: SimSchedulerResult[] = config.schedulers.map((s, i) => {
    const scheduler = schedulers[i] as Scheduler;
    const thinkTimes = Object.fromEntries(KINDS_OF[s.role].map((k) => [k, s.thinkTimes[k]])) as ThinkTimes;
    return {
      name: s.name,
      role: s.role,
      thinkTimes,
      conflictMode: s.conflictMode ?? 'resource-fit',
      transactionMode: s.transactionMode ?? 'incremental',
      metrics: scheduler.metrics(),
      analyticBusyness: analyticBusyness(config.workload, shareOf(thinkTimes, s, config.schedulers), config.batchRateFactor ?? 1),
      realizedDemand: realizedDemand(fed, thinkTimes, config.durationMs) * shareFraction(s, config.schedulers),
      transactions: transactions.summary(s.name),
    };
  });
  const workloads = { batch: metrics.summary('batch'), service: metrics.summary('service') };
  const utilization = metrics.utilization();
  const utilizationDrift = metrics.utilizationDrift();

  const revision = observer.revision;
  controller.abort();
  await clock.runUntil(clock.now());
  await Promise.all([...runs, feeding]);
  metrics.stop();
  agent.stop();
  janitor.stop();
  for (const s of schedulers) s.close();
  for (const m of mirrors) await m.stop();
  await kv.close();
  if (failures.length > 0) throw failures[0];

  return {
    workloads,
    schedulers: results,
    utilization,
    utilizationDrift,
    prefillTasks: sim.prefillTasks,
    simulatedMs: config.durationMs,
    store: { revision, requests: kv.counters.roundTrips, bytesWritten: kv.counters.bytesWritten },
    timersWoken: clock.woken,
    tasksEnded: agent.tasksEnded,
    jobsDeleted: janitor.jobsDeleted,
    wallMs: performance.now() - wallStart,
  };
}

/**
 * The fraction of its kinds' jobs one scheduler gets: jobs are spread over the instances that
 * take the same role by hashing, so each of N gets about 1/N.
 */
function shareFraction(s: SimSchedulerConfig, all: readonly SimSchedulerConfig[]): number {
  return 1 / all.filter((o) => o.role === s.role).length;
}

/** Think times scaled by the scheduler's share of the jobs, for the analytic demand. */
function shareOf(thinkTimes: ThinkTimes, s: SimSchedulerConfig, all: readonly SimSchedulerConfig[]): ThinkTimes {
  const f = shareFraction(s, all);
  return Object.fromEntries(Object.entries(thinkTimes).map(([k, t]) => [k, { jobMs: t.jobMs * f, taskMs: t.taskMs * f }])) as ThinkTimes;
}
