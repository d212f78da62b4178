/**
 * The Scheduler: one scheduler instance's loop, shared by every policy. See README.md.
 *
 * ```
 *  mirror.onChange ──► dirty jobs / machines ──► maintain(): take unowned jobs (rendezvous, grace),
 *                                                judge owned jobs (done? killed? restarts?),
 *                                                mark tasks of lost machines, publish stats
 *  runOnce() ──► maintain() ──► next owned jobs (priority, then age; up to maxJobsPerCommit) ──► attempt:
 *      snapshot ─► PrivateCell ─► policy.place() per job ─► think time (clock) ─► one commit ─► wait for mirror
 *        │ nothing fit: say why, back off        │ conflicts: re-place only those, at once
 *        └─ 1,000 attempts or 100 without progress: abandon (status says why)
 * ```
 *
 * Contract:
 * - `runOnce()` does one step (maintenance, then at most one attempt) and says what it did; it
 *   never runs concurrently with itself. A simulator calls it in a loop, advancing its virtual
 *   clock to `wakeAtMs` when every instance is idle. `run(signal)` is that loop for processes:
 *   it sleeps on the Clock until the mirror changes or the next wake time.
 * - All time and randomness come from the injected Clock and Random; the loop sets no timers of
 *   its own. The same code runs live (etcd, system clock) and simulated (MemoryKv, virtual clock).
 * - The instance's lease binds its ownerships and its `schedulers/<name>` stats record: when the
 *   lease ends (crash, or `revoke()` at shutdown), both vanish together and other instances take
 *   the jobs over. When the lease is lost while the instance runs (the store was unreachable for
 *   longer than its TTL), the instance survives it:
 *
 *   ```
 *   lease lost ──► stop committing: an attempt in its think time is dropped, no write starts
 *             └──► forget every owned job and candidate
 *   runOnce() ──► grant a new lease ──► mirror caught up to the store's current revision
 *             (each retried with backoff, ──► announce (stats record under the new lease)
 *              step 'recovering')         ──► full rescan: take jobs again, resume
 *   ```
 *   A commit already in flight when the loss is noticed finishes (it cannot be recalled); the
 *   commit path's task guard keeps it from placing anything twice.
 * - An attempt covers one job, or with `maxJobsPerCommit` > 1 several incremental ones placed on
 *   one PrivateCell and committed in one commit (`Committer.commitMany`); each job's outcome,
 *   counters, backoff and status are its own, exactly as if it had been attempted alone on that
 *   cell. An all-or-nothing job is always attempted alone.
 * - Conflicts and misfits are values; store errors come back as `{kind: 'error'}` steps (the job
 *   is retried later); a bad job record ends as a failed or unschedulable job; only bugs throw.
 */
import {
  Cell,
  ContentionError,
  KvError,
  MirrorStoppedError,
  RetryState,
  STORE_RETRY_BACKOFF,
  TransactionTooLargeError,
  claimIdFactory,
  jobSpecProblems,
  parseTaskId,
  type BackoffPolicy,
  type CellMirror,
  type CellSnapshot,
  type ClaimId,
  type Committer,
  type JobId,
  type KvLease,
  type KvStore,
  type MachineId,
  type MirrorChange,
  type TransactionMode,
  type ClaimDelta,
  type CommitResult,
  type Job,
  type Transaction,
  PrivateCell,
} from '@omega/cell-state';
import type { Logger } from 'pino';
import pino from 'pino';
import { systemClock, type Clock } from './clock.js';
import { JobBook, type OwnedJob } from './job-book.js';
import { assessJob, restartRateReason } from './job-progress.js';
import { RestartLog } from './restart-log.js';
import { JobActions } from './job-actions.js';
import { Janitor } from './janitor.js';
import { LeaseKeeper, NoLeaseError, type LeaseSource } from './lease-keeper.js';
import { noFitReason, type OfferedMachines } from './job-status.js';
import { proposePlacement, type Proposal } from './propose.js';
import { OfferedMachinesCache } from './offered-cache.js';
import { MachineLossWatch } from './machine-loss.js';
import { NO_METRICS, type Metrics } from '@omega/metrics/seam';
import { CronRunner } from './cron.js';
import { schedulerHistograms, type SchedulerHistograms } from './scheduler-metrics.js';
import { DrainWatch } from './drain.js';
import { Rollouts } from './rollout.js';
import { MetricsRecorder, toSchedulerStats, type SchedulerMetrics } from './metrics.js';
import { Ownership } from './ownership.js';
import type { PlacementPolicy } from './policy.js';
import { seededRandom, type Random } from './random.js';
import { hash32 } from './rendezvous.js';
import { resolveSettings, type SchedulerSettings } from './settings.js';

export interface SchedulerOptions {
  /** The cell; its committer writes `placedAtMs` with this scheduler's clock. */
  readonly cell: Cell;
  /** This instance's own replica, already started. */
  readonly mirror: CellMirror;
  readonly policy: PlacementPolicy;
  /** Instance name, unique in the cell (an id: letters, digits, `.`, `_`, `-`). */
  readonly name: string;
  /**
   * The first lease: ownerships and the stats record are bound to it (keep-alive, owned by the
   * caller, who revokes it at shutdown). Without it, the first step grants one from `leases`.
   */
  readonly lease?: KvLease;
  /**
   * Grants the next lease after one is lost. Default: a keep-alive lease of the first lease's TTL
   * (10 s without one) from the cell's store.
   */
  readonly leases?: LeaseSource;
  /** Backoff between tries while re-granting a lost lease. Default 250 ms doubling to 10 s. */
  readonly leaseRetry?: BackoffPolicy;
  readonly clock?: Clock;
  /** Default: seeded from the name, so runs repeat. */
  readonly random?: Random;
  /** Default silent. */
  readonly logger?: Logger;
  readonly settings?: Partial<SchedulerSettings>;
  /** Claim ids; default {@link claimIdFactory} (unique across processes). */
  readonly claimIds?: () => ClaimId;
  /** Where the loop records its latency histograms (scheduler-metrics.ts); default nowhere. */
  readonly metrics?: Metrics;
}

/** What one attempt did. */
export interface AttemptReport {
  readonly jobId: JobId;
  /** The job's attempt number at this instance (1 for the first). */
  readonly attempt: number;
  /** Tasks it tried to place. */
  readonly tasks: number;
  /** Claims the policy made on the PrivateCell. */
  readonly claimed: number;
  readonly committed: number;
  readonly conflicted: number;
  readonly thinkMs: number;
  /** Snapshot to commit reply, think time included. */
  readonly busyMs: number;
  readonly outcome: 'placed' | 'partial' | 'conflicted' | 'no-fit' | 'interrupted';
  /** The job was given up at this attempt. */
  readonly abandoned: boolean;
}

/** What one `runOnce()` did. */
export type Step =
  /** `attempts`: one report per job of the attempt (several with `maxJobsPerCommit` > 1); `attempt` is the first. */
  | { readonly kind: 'attempt'; readonly attempt: AttemptReport; readonly attempts: readonly AttemptReport[] }
  /** Maintenance wrote to the store (took jobs, wrote statuses, marked tasks); call again. */
  | { readonly kind: 'maintenance'; readonly writes: number }
  /** Nothing to do until the mirror changes or the clock reaches `wakeAtMs`. */
  | { readonly kind: 'idle'; readonly wakeAtMs: number | undefined }
  /** A store error; the work is retried later (after `errorBackoffMs` in `run()`). */
  | { readonly kind: 'error'; readonly error: Error }
  /**
   * The lease was lost: the instance is granting a new one, catching its mirror up and announcing
   * itself (retried with backoff). Call again at `retryAtMs`; `error` is the last try's failure.
   */
  | { readonly kind: 'recovering'; readonly retryAtMs: number; readonly error: Error | undefined }
  /** `stop()` was called. */
  | { readonly kind: 'stopped' };

/** One job of an attempt, from choosing it to its commit. */
interface Prepared {
  readonly entry: OwnedJob;
  readonly job: Job;
  readonly progress: ReturnType<RestartLog['throttle']>;
  readonly mode: TransactionMode;
  /** Tasks to place. */
  readonly tasks: number;
  thinkMs: number;
  /** The job's own claims on the attempt's PrivateCell. */
  deltas: readonly ClaimDelta[];
  proposal: Proposal | undefined;
}

/** Why an idle wait ends early: the mirror changed. */
const WOKEN = 'mirror changed';

/** Longest single sleep of `run()` when nothing is scheduled (a wake-up costs one cheap step). */
const MAX_IDLE_SLEEP_MS = 60_000;

/** Owned jobs judged at once in a maintenance pass (bounds the writes in flight after a rescan of thousands). */
export const ASSESS_CONCURRENCY = 32;

/** The mirror did not show a commit's revision in time (the store or the watch is slow). Retryable. */
export class MirrorLagError extends Error {
  readonly retryable = true;
  constructor(revision: number, options?: { cause?: unknown }) {
    super(`the mirror did not reach revision ${revision} after a commit`, options);
    this.name = 'MirrorLagError';
  }
}

/** Errors from the store side that the loop survives (the work is retried later). */
function isStoreError(error: unknown): error is Error {
  return error instanceof KvError || error instanceof ContentionError || error instanceof MirrorStoppedError || error instanceof MirrorLagError;
}

/** TTL of the leases granted by default when no first lease says which. */
const DEFAULT_LEASE_TTL_S = 10;

export class Scheduler {
  readonly name: string;
  readonly settings: SchedulerSettings;
  private readonly cell: Cell;
  private readonly mirror: CellMirror;
  private readonly policy: PlacementPolicy;
  private readonly leases: LeaseKeeper;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly claimIds: () => ClaimId;
  private readonly committer: Committer;
  private readonly book = new JobBook();
  private readonly loss: MachineLossWatch;
  private readonly drain = new DrainWatch();
  private readonly cron: CronRunner;
  private readonly histograms: SchedulerHistograms;
  private readonly recorder: MetricsRecorder;
  private readonly ownership: Ownership;
  private readonly actions: JobActions;
  /** Scale down and rolling updates of owned jobs (rollout.ts). */
  private readonly rollouts: Rollouts;
  /** Deletes finished jobs after their retention (janitor.ts); made at the first maintenance. */
  private janitor: Janitor | undefined;

  private dirtyJobs = new Set<JobId>();
  private dirtyMachines = new Set<MachineId>();
  /** Owned jobs to judge at the next maintenance. */
  private readonly toAssess = new Set<JobId>();
  private rescanAll = true;
  private seenLists = -1;
  /** Set by the mirror listener, cleared when maintenance reads the snapshot. */
  private changed = true;
  private retryMaintenanceAtMs: number | undefined;
  private nextStatsAtMs: number;
  private readonly offeredCache = new OfferedMachinesCache();
  /** Restarts committed in the last minute, for the crash-loop cap. */
  private readonly restartLog: RestartLog;

  private stepping = false;
  private stopping = false;
  /** The lease was lost (or none given): the next step re-grants, catches up and rebuilds. */
  private recovering: boolean;
  /** Not before this clock time does the next recovery try run. */
  private recoveryRetryAtMs = 0;
  private recoveryError: Error | undefined;
  private readonly recoveryRetry: RetryState;
  /** Store errors in a row (logged at the first, and when a step succeeds again). */
  private failingSteps = 0;
  private readonly stopController = new AbortController();
  /** Aborts the think time of the attempt in progress (stop, or a lost lease). */
  private thinkController: AbortController | undefined;
  private idleWaiter: AbortController | undefined;
  private readonly unsubscribe: () => void;

  constructor(options: SchedulerOptions) {
    this.name = options.name;
    this.settings = resolveSettings(options.settings);
    this.restartLog = new RestartLog(this.settings.maxRestartsPerJobPerMinute);
    this.cell = options.cell;
    this.mirror = options.mirror;
    this.policy = options.policy;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? seededRandom(hash32(options.name));
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'scheduler', scheduler: options.name, kind: options.policy.kind });
    this.claimIds = options.claimIds ?? claimIdFactory();
    this.committer = this.cell.committer({ latest: () => this.mirror.snapshot(), now: () => this.clock.now() });
    const store: KvStore = this.cell.kv;
    const ttl = options.lease?.ttlSeconds ?? DEFAULT_LEASE_TTL_S;
    this.leases = new LeaseKeeper(options.leases ?? (() => store.grantLease(ttl, { autoKeepAlive: true })), (error, lease) => this.noteLeaseLost(error, lease), options.lease);
    this.recovering = options.lease === undefined;
    this.recoveryRetry = new RetryState(this.logger, options.leaseRetry ?? STORE_RETRY_BACKOFF, { down: 'scheduler lease not granted yet; retrying' });
    const lease = (): KvLease => this.leases.current();
    this.loss = new MachineLossWatch(this.settings.machineLossGraceMs);
    this.recorder = new MetricsRecorder(this.clock.now());
    this.histograms = schedulerHistograms(options.metrics ?? NO_METRICS);
    this.ownership = new Ownership({
      cell: this.cell,
      lease,
      name: this.name,
      kind: this.policy.kind,
      jobKinds: this.settings.jobKinds ?? [this.policy.kind],
      settings: this.settings,
      book: this.book,
      recorder: this.recorder,
      logger: this.logger,
    });
    this.actions = new JobActions({
      cell: this.cell,
      lease,
      name: this.name,
      clock: this.clock,
      random: this.random,
      settings: this.settings,
      book: this.book,
      ownership: this.ownership,
      recorder: this.recorder,
      logger: this.logger,
    });
    this.rollouts = new Rollouts({ cell: this.cell, lease, actions: this.actions, recorder: this.recorder, logger: this.logger });
    this.cron = new CronRunner({
      cell: this.cell,
      name: this.name,
      logger: this.logger,
      lease: () => void this.leases.current(),
      snapshotAtLeast: async (revision) => {
        await this.mirror.waitForRevision(revision);
        return this.mirror.snapshot();
      },
    });
    this.nextStatsAtMs = this.clock.now();
    this.unsubscribe = this.mirror.onChange((change) => this.noteChange(change));
  }

  /** The transaction mode used for jobs whose commit mode is `default`. */
  get defaultTransactionMode(): TransactionMode {
    return this.settings.transactionMode ?? this.policy.defaultTransactionMode;
  }

  /** Everything counted so far (cheap; a copy). */
  metrics(): SchedulerMetrics {
    return this.recorder.snapshot(this.clock.now(), this.book.ownedCount, this.book.queuedCount);
  }

  /** Jobs this instance owns now. */
  ownedJobs(): JobId[] {
    return this.book.ownedIds();
  }

  /**
   * The lease the instance holds now; undefined while a lost one is being granted again. The
   * process revokes it at shutdown (after `run()` returned).
   */
  get currentLease(): KvLease | undefined {
    return this.leases.held;
  }

  /** Whether the instance is without a working lease now (lost, and not yet granted, caught up and announced again). */
  get isRecovering(): boolean {
    return this.recovering;
  }

  /**
   * Publishes the metrics to `schedulers/<name>`, bound to the lease (the record is also this
   * instance's membership). Throws {@link NoLeaseError} while the instance holds no lease.
   */
  async publishStats(): Promise<void> {
    const lease = this.leases.current();
    const now = this.clock.now();
    this.nextStatsAtMs = now + this.settings.statsIntervalMs;
    const who = { name: this.name, kind: this.policy.kind, conflictMode: this.settings.conflictMode, transactionMode: this.defaultTransactionMode };
    await this.cell.publishSchedulerStats(toSchedulerStats(this.metrics(), who, now), lease);
  }

  /**
   * Stops taking work: an attempt in its think time is dropped (nothing committed), a commit in
   * flight finishes. `run()` then publishes the stats once more and returns. Idempotent.
   */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopController.abort();
    this.thinkController?.abort();
    this.idleWaiter?.abort();
  }

  /** Stops and detaches from the mirror. Ownerships end with the lease, which the caller owns. */
  close(): void {
    this.stop();
    this.unsubscribe();
  }

  /**
   * Loops `runOnce()` until `signal` aborts or `stop()`: sleeps on the clock while idle, waking on
   * mirror changes, the next wake time, and every `statsIntervalMs` to publish stats. Publishes the
   * stats at the start (announcing the instance) and at the end.
   */
  async run(signal?: AbortSignal): Promise<void> {
    const onAbort = (): void => this.stop();
    if (signal?.aborted === true) this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (!this.recovering) await this.publishStatsQuietly();
      while (!this.stopping) {
        const step = await this.runOnce();
        if (step.kind === 'stopped') break;
        if (step.kind === 'idle') await this.waitForWork(step.wakeAtMs);
        else if (step.kind === 'error') await this.clock.sleep(this.settings.errorBackoffMs, this.stopController.signal);
        else if (step.kind === 'recovering') await this.clock.sleep(Math.max(0, step.retryAtMs - this.clock.now()), this.stopController.signal);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!this.recovering) await this.publishStatsQuietly();
  }

  /**
   * One step: maintenance (take jobs, judge owned jobs, mark lost tasks, publish stats when due),
   * then at most one placement attempt. Never call it while a previous call is still running.
   */
  async runOnce(): Promise<Step> {
    if (this.stepping) throw new Error('Scheduler.runOnce() is already running: steps must not overlap');
    if (this.stopping) return { kind: 'stopped' };
    this.stepping = true;
    const generation = this.leases.generation;
    try {
      if (this.recovering) return await this.recover();
      const step = await this.work();
      if (this.failingSteps > 0) {
        this.logger.info({ failedSteps: this.failingSteps }, 'store errors over; scheduling again');
        this.failingSteps = 0;
      }
      return step;
    } catch (error) {
      // A loss noticed mid-step surfaces as NoLeaseError (or as the store refusing the old lease).
      if (error instanceof NoLeaseError || (this.leases.generation !== generation && isStoreError(error))) {
        return { kind: 'recovering', retryAtMs: this.clock.now(), error };
      }
      if (!isStoreError(error)) throw error;
      this.recorder.counts.storeErrors++;
      this.retryMaintenanceAtMs = this.clock.now() + this.settings.errorBackoffMs;
      if (this.failingSteps++ === 0) this.logger.warn({ err: error }, 'store error; retrying');
      return { kind: 'error', error };
    } finally {
      this.stepping = false;
    }
  }

  /** A step with a lease: maintenance, then at most one attempt. */
  private async work(): Promise<Step> {
    const writes = await this.maintain();
    if (this.stopping) return { kind: 'stopped' };
    const now = this.clock.now();
    const jobs = this.book.ready(now, this.settings.maxJobsPerCommit);
    if (jobs.length > 0) {
      const attempts = await this.attempt(jobs);
      const first = attempts[0];
      if (first !== undefined) return { kind: 'attempt', attempt: first, attempts };
      return { kind: 'maintenance', writes };
    }
    if (writes > 0) return { kind: 'maintenance', writes };
    return { kind: 'idle', wakeAtMs: this.nextWake(now) };
  }

  // ---- a lost lease ---------------------------------------------------------------------------

  /** The LeaseKeeper saw the held lease lost: stop writing at once, forget every job. */
  private noteLeaseLost(error: Error, lease: KvLease): void {
    this.recorder.counts.leasesLost++;
    this.book.clear();
    this.toAssess.clear();
    this.rollouts.clear();
    this.thinkController?.abort();
    if (this.stopping) return;
    this.logger.error({ err: error, lease: lease.id }, 'scheduler lease lost; granting a new one');
    this.recovering = true;
    this.recoveryRetryAtMs = 0;
    this.idleWaiter?.abort();
  }

  /**
   * One recovery try: grant a lease (unless one is held), bring the mirror up to the store's
   * current revision, rebuild the book from a full rescan, announce the instance. A failure sets
   * the next try's time (backoff); success resumes normal steps.
   */
  private async recover(): Promise<Step> {
    const now = this.clock.now();
    if (now < this.recoveryRetryAtMs) return { kind: 'recovering', retryAtMs: this.recoveryRetryAtMs, error: this.recoveryError };
    try {
      const lease = this.leases.held ?? (await this.leases.grant());
      // A fresh view: everything committed before now, including what was written while the
      // lease was gone, is in the snapshot the rescan reads.
      const revision = await this.cell.kv.currentRevision();
      await this.mirror.waitForRevision(revision);
      if (this.leases.held !== lease) throw new NoLeaseError();
      this.book.clear();
      this.toAssess.clear();
      this.ownership.reset();
      this.rescanAll = true;
      this.changed = true;
      await this.publishStats();
      if (this.leases.held !== lease) throw new NoLeaseError();
      this.recovering = false;
      this.recoveryError = undefined;
      this.recorder.counts.leasesGranted++;
      this.logger.info({ lease: lease.id, revision, failedTries: this.recoveryRetry.failuresInARow }, 'scheduler lease granted; resuming');
      this.recoveryRetry.succeeded();
      return { kind: 'maintenance', writes: 1 };
    } catch (error) {
      if (this.stopping) return { kind: 'stopped' };
      const failure = error instanceof Error ? error : new Error(String(error));
      this.recoveryError = failure;
      this.recoveryRetryAtMs = this.clock.now() + this.recoveryRetry.failed(failure);
      return { kind: 'recovering', retryAtMs: this.recoveryRetryAtMs, error: failure };
    }
  }

  // ---- waking -------------------------------------------------------------------------------

  private noteChange(change: MirrorChange): void {
    this.offeredCache.note(change);
    for (const c of change.changes) {
      switch (c.kind) {
        case 'job':
        case 'status':
        case 'owner':
          this.dirtyJobs.add(c.id as JobId);
          break;
        case 'task': {
          const parsed = parseTaskId(c.id);
          if (parsed !== undefined) this.dirtyJobs.add(parsed.jobId);
          break;
        }
        case 'machine':
        case 'alive':
          this.dirtyMachines.add(c.id as MachineId);
          break;
        case 'scheduler':
          this.ownership.noteMembershipChanged();
          break;
        case 'request':
          break;
      }
    }
    this.changed = true;
    // A constant reason: abort() without one builds a DOMException (a stack trace) per mirror batch.
    this.idleWaiter?.abort(WOKEN);
  }

  private nextWake(now: number): number | undefined {
    const times = [this.book.nextReadyAt(now), this.loss.nextDeadline(now), this.drain.nextDeadline(now), this.cron.nextWake(), this.rollouts.nextWake(), this.retryMaintenanceAtMs, this.ownership.nextWake()];
    const future = times.filter((t): t is number => t !== undefined && t > now);
    return future.length === 0 ? undefined : Math.min(...future);
  }

  private async waitForWork(wakeAtMs: number | undefined): Promise<void> {
    if (this.changed || this.stopping) return;
    const now = this.clock.now();
    const until = Math.min(wakeAtMs ?? Infinity, this.settings.statsIntervalMs > 0 ? this.nextStatsAtMs : Infinity, now + MAX_IDLE_SLEEP_MS);
    const waiter = new AbortController();
    this.idleWaiter = waiter;
    try {
      await this.clock.sleep(Math.max(0, until - now), waiter.signal);
    } finally {
      this.idleWaiter = undefined;
    }
  }

  private async publishStatsQuietly(): Promise<void> {
    try {
      await this.publishStats();
    } catch (error) {
      this.logger.warn({ err: error }, 'could not publish scheduler stats');
    }
  }

  // ---- maintenance ----------------------------------------------------------------------------

  /** Brings the book up to the mirror and does the writes that follow from it. Returns how many writes. */
  private async maintain(): Promise<number> {
    this.changed = false;
    const snapshot = this.mirror.snapshot();
    const now = this.clock.now();
    let writes = 0;
    if (this.mirror.counters.lists !== this.seenLists) {
      // First step, or the mirror re-listed (it does not say what changed): look at everything.
      this.seenLists = this.mirror.counters.lists;
      this.rescanAll = true;
    }
    const dirtyJobs = this.dirtyJobs;
    const dirtyMachines = this.dirtyMachines;
    this.dirtyJobs = new Set();
    this.dirtyMachines = new Set();
    if (this.rescanAll) {
      this.rescanAll = false;
      for (const job of snapshot.jobs()) dirtyJobs.add(job.id);
      for (const id of this.book.ownedIds()) dirtyJobs.add(id);
      this.loss.observe(snapshot, 'all', now);
      this.drain.observe(snapshot, 'all');
      this.ownership.noteMembershipChanged();
    } else {
      this.loss.observe(snapshot, dirtyMachines, now);
      this.drain.observe(snapshot, dirtyMachines);
    }
    for (const id of dirtyJobs) if (this.ownership.reconcile(id, snapshot, now)) this.toAssess.add(id);

    for (const id of this.rollouts.due(now)) this.toAssess.add(id);
    // Taking new jobs and judging owned ones touch different jobs: their writes go out together.
    const [taken, assessed] = await Promise.allSettled([this.ownership.acquire(snapshot, now), this.assessOwned(snapshot, now)]);
    if (taken.status === 'fulfilled') writes += taken.value.writes;
    if (assessed.status === 'fulfilled') writes += assessed.value;
    // A bug's error before a store error, as either alone would have been thrown.
    const failures = [taken, assessed].flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
    const failure = failures.find((error) => !isStoreError(error)) ?? failures[0];
    if (failure !== undefined) throw failure;
    if (taken.status === 'fulfilled' && taken.value.acquired.length > 0) {
      // The jobs just taken are judged in this pass too (most write nothing: a new job only waits to be placed).
      for (const id of taken.value.acquired) this.toAssess.add(id);
      writes += await this.assessOwned(snapshot, now);
    }
    writes += await this.markLostTasks(snapshot, now);
    writes += await this.stopDrainedTasks(snapshot, now);
    writes += await this.runCronJobs(snapshot, now);
    writes += await (this.janitor ??= new Janitor({ cell: this.cell, name: this.name, settings: this.settings, recorder: this.recorder, logger: this.logger })).step(snapshot, now);
    if (this.retryMaintenanceAtMs !== undefined && now >= this.retryMaintenanceAtMs) this.retryMaintenanceAtMs = undefined;
    if (this.settings.statsIntervalMs > 0 && now >= this.nextStatsAtMs) await this.publishStats();
    return writes;
  }

  /**
   * Judges the owned jobs that changed: finished, killed, invalid, fully placed, or waiting.
   * Jobs are judged independently of each other, so up to {@link ASSESS_CONCURRENCY} at a time:
   * their status writes are in flight together, and a pass costs a round trip of latency per
   * group of jobs, not per job (under a backlog of one-task jobs that latency, not CPU, is what
   * bounds the jobs a scheduler finishes per second). A job whose judging met a store error is
   * judged again at the next pass; the error (a bug's before any store error) is thrown once
   * its group has settled.
   */
  private async assessOwned(snapshot: CellSnapshot, now: number): Promise<number> {
    let writes = 0;
    const ids = [...this.toAssess];
    this.toAssess.clear();
    for (let start = 0; start < ids.length; start += ASSESS_CONCURRENCY) {
      const group = ids.slice(start, start + ASSESS_CONCURRENCY);
      const outcomes = await Promise.allSettled(group.map((id) => this.assessOne(id, snapshot, now)));
      let failure: { error: unknown } | undefined;
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === 'fulfilled') {
          writes += outcome.value;
          continue;
        }
        if (!isStoreError(outcome.reason)) {
          if (failure === undefined || isStoreError(failure.error)) failure = { error: outcome.reason };
          continue;
        }
        this.toAssess.add(group[i] as JobId);
        failure ??= { error: outcome.reason };
      }
      if (failure !== undefined) {
        // The rest were not judged: the next pass does.
        for (const id of ids.slice(start + ASSESS_CONCURRENCY)) this.toAssess.add(id);
        throw failure.error;
      }
    }
    return writes;
  }

  /** {@link assessOwned} for one job: its writes. */
  private async assessOne(id: JobId, snapshot: CellSnapshot, now: number): Promise<number> {
    const entry = this.book.get(id);
    if (entry === undefined) return 0;
    let writes = await this.assess(entry, snapshot, now);
    // Still ours and running: stop what its current version no longer wants (scale down, rolling update).
    const job = snapshot.job(id);
    if (job !== undefined && this.book.get(id) === entry) writes += await this.rollouts.step(entry, job, snapshot, now);
    else this.rollouts.forget(id);
    return writes;
  }

  private async assess(entry: OwnedJob, snapshot: CellSnapshot, now: number): Promise<number> {
    const job = snapshot.job(entry.id);
    if (job === undefined) {
      // Deleted from under us: nothing to schedule or report.
      await this.actions.release(entry);
      return 1;
    }
    entry.priority = job.spec.priority;
    const problems = jobSpecProblems(job.spec);
    if (problems.length > 0) {
      this.recorder.counts.jobsInvalid++;
      this.recorder.counts.jobsFailed++;
      const reason = `invalid job record: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`;
      this.logger.warn({ jobId: job.id, reason }, 'job record is invalid; failing the job');
      return this.actions.finish(entry, { state: 'failed', reason, ruledOut: [] });
    }
    if (job.spec.schedule !== undefined && job.desired === 'running') {
      // A cron job's template is never placed: its runs are (cron.ts).
      entry.needsPlacement = false;
      this.cron.noteTemplate(job.id);
      return 0;
    }
    if (job.desired === 'killed') {
      this.recorder.counts.jobsKilled++;
      const writes = await this.actions.killTasks(job, snapshot, now, 'job-killed');
      return writes + (await this.actions.finish(entry, { state: 'killed', reason: 'killed by request', ruledOut: [] }));
    }
    const progress = this.restartLog.throttle(job, snapshot, assessJob(job, snapshot, now, this.settings), now);
    if (progress.outcome.kind === 'failed') {
      this.recorder.counts.jobsFailed++;
      const writes = await this.actions.killTasks(job, snapshot, now, 'job-failed');
      return writes + (await this.actions.finish(entry, { state: 'failed', reason: progress.outcome.reason, ruledOut: [] }));
    }
    if (progress.outcome.kind === 'succeeded') {
      this.recorder.counts.jobsSucceeded++;
      return this.actions.finish(entry, { state: 'succeeded', reason: '', ruledOut: [] });
    }
    const wasQueued = entry.needsPlacement && !entry.abandoned;
    entry.needsPlacement = !progress.fullyPlaced;
    if (wasQueued && !entry.needsPlacement) this.ownership.noteRoomFreed();
    if (entry.needsPlacement) {
      entry.readyAtMs = progress.toPlace.length > 0 ? entry.retryAtMs : Math.max(entry.retryAtMs, progress.nextRestartAtMs ?? now);
      // Restarts held by the crash-loop cap wait; the status says why (once per change).
      if (progress.throttled !== undefined) {
        return this.actions.writeStatus(entry, { state: progress.live.length > 0 ? 'running' : 'pending', reason: restartRateReason(progress.throttled), ruledOut: [] });
      }
      return 0;
    }
    if (entry.fullyPlacedAtMs === 0) {
      entry.fullyPlacedAtMs = now;
      this.recorder.counts.jobsPlaced++;
      this.recorder.waitFullyPlaced.add(now - job.submittedAtMs);
      this.histograms.timeToPlace.observe((now - job.submittedAtMs) / 1000);
    }
    const writes = await this.actions.writeStatus(entry, { state: 'running', reason: '', ruledOut: [] });
    // Fully placed: the attempt budget starts over for later restarts.
    entry.attempts = 0;
    entry.attemptsWithoutProgress = 0;
    entry.abandoned = false;
    return writes;
  }

  private async markLostTasks(snapshot: CellSnapshot, now: number): Promise<number> {
    const updates = this.loss.due(snapshot, now);
    if (updates.length === 0) return 0;
    try {
      this.leases.current();
      const outcomes = await this.cell.updateTasks(updates);
      const marked = outcomes.filter((o) => o === 'updated').length;
      this.recorder.counts.tasksMarkedLost += marked;
      this.logger.info({ tasks: marked, machines: new Set(updates.map((u) => u.task.machineId)).size }, 'tasks of lost machines marked lost');
    } catch (error) {
      this.loss.unsend(updates);
      throw error;
    }
    return 1;
  }

  /** Makes the runs due of the cron jobs this instance owns (see cron.ts). */
  private async runCronJobs(snapshot: CellSnapshot, now: number): Promise<number> {
    const step = await this.cron.step(snapshot, now, (id) => this.book.get(id) !== undefined);
    this.recorder.counts.cronRunsCreated += step.created;
    this.recorder.counts.cronTimesSkipped += step.skipped;
    return step.writes;
  }

  /** Stops what is due on draining machines, for the jobs this instance owns (see drain.ts). */
  private async stopDrainedTasks(snapshot: CellSnapshot, now: number): Promise<number> {
    if (this.drain.drainingCount === 0) return 0;
    const updates = this.drain.due(snapshot, now, (id) => this.book.get(id) !== undefined);
    if (updates.length === 0) return 0;
    try {
      this.leases.current();
      const outcomes = await this.cell.updateTasks(updates);
      const stopped = outcomes.filter((o) => o === 'updated').length;
      this.recorder.counts.tasksDrained += stopped;
      this.logger.info({ tasks: stopped, machines: new Set(updates.map((u) => u.task.machineId)).size }, 'tasks of draining machines stopped');
    } catch (error) {
      this.drain.unsend(updates);
      throw error;
    }
    return 1;
  }

  // ---- attempts -----------------------------------------------------------------------------

  private offered(snapshot: CellSnapshot): OfferedMachines {
    return this.offeredCache.get(snapshot);
  }

  /**
   * One attempt for up to `maxJobsPerCommit` owned jobs (`entries`, in attempt order): place what
   * each needs placing on one PrivateCell of one fresh snapshot (each job's policy sees the
   * claims of the jobs placed before it), think (their think times summed), commit every job's
   * claims in one commit (one incremental transaction per job: `Committer.commitMany`), wait
   * once for the mirror to show it. Each job's outcome, counters and status are its own, as if
   * attempted alone. Only incremental jobs share an attempt: an all-or-nothing first job is
   * attempted alone, one later in the order waits for a step of its own; the jobs after the
   * first are taken while their tasks to place stay within `maxClaimsPerCommit`. Returns one
   * report per job attempted; empty when none turned out to have anything to place (each is
   * judged again at the next maintenance).
   */
  private async attempt(entries: readonly OwnedJob[]): Promise<AttemptReport[]> {
    const generation = this.leases.generation;
    const snapshot = this.mirror.snapshot();
    const start = this.clock.now();
    const batch: Prepared[] = [];
    let claimsBudget = this.settings.maxClaimsPerCommit;
    for (const entry of entries) {
      const job = snapshot.job(entry.id);
      const progress = job === undefined ? undefined : this.restartLog.throttle(job, snapshot, assessJob(job, snapshot, start, this.settings), start);
      if (job === undefined || progress === undefined || progress.toPlace.length === 0 || progress.outcome.kind !== 'active' || job.desired !== 'running') {
        entry.readyAtMs = progress?.nextRestartAtMs ?? Infinity;
        this.toAssess.add(entry.id);
        continue;
      }
      const mode: TransactionMode = job.spec.commitMode === 'default' ? this.defaultTransactionMode : job.spec.commitMode;
      if (batch.length > 0 && (mode !== 'incremental' || progress.toPlace.length > claimsBudget)) continue;
      batch.push({ entry, job, progress, mode, tasks: progress.toPlace.length, thinkMs: 0, deltas: [], proposal: undefined });
      claimsBudget -= progress.toPlace.length;
      // A gang, or a first job that fills the budget, goes alone.
      if (mode !== 'incremental' || claimsBudget <= 0) break;
    }
    if (batch.length === 0) return [];

    const reports: AttemptReport[] = [];
    // One cell for the batch: a later job's policy sees the earlier jobs' claims.
    const cell = new PrivateCell(snapshot, this.name, this.claimIds);
    for (const p of [...batch]) {
      const { entry, job } = p;
      entry.attempts++;
      this.recorder.counts.attempts++;
      if (entry.firstAttemptAtMs === 0) {
        entry.firstAttemptAtMs = start;
        this.recorder.waitFirstAttempt.add(start - job.submittedAtMs);
        this.histograms.timeToFirstAttempt.observe((start - job.submittedAtMs) / 1000);
      }
      const before = cell.deltas.length;
      try {
        p.proposal = proposePlacement({ job, tasks: p.progress.toPlace, snapshot, offered: this.offered(snapshot), policy: this.policy, random: this.random, scheduler: this.name, claimIds: this.claimIds, cell });
      } catch (error) {
        // A policy that throws on some job must not take the scheduler down: give the job up, say why.
        this.logger.error({ err: error, jobId: job.id }, 'placement policy failed on a job');
        const reason = `placement failed: ${error instanceof Error ? error.message : String(error)}`;
        batch.splice(batch.indexOf(p), 1);
        await this.actions.abandon(entry, reason, []);
        reports.push(this.report(entry, p.tasks, 0, 0, 0, 0, 0, 'no-fit', true));
        // Whatever it claimed before throwing stays in the cell (a little room held back for the
        // jobs after it) but is in no transaction: each job commits only its own slice.
        continue;
      }
      p.deltas = cell.deltas.slice(before);
      const think = this.settings.thinkTimeByKind[job.spec.kind] ?? { jobMs: this.settings.thinkTimeJobMs, taskMs: this.settings.thinkTimeTaskMs };
      p.thinkMs = think.jobMs + think.taskMs * p.tasks;
    }
    const thinkMs = batch.reduce((sum, p) => sum + p.thinkMs, 0);
    if (thinkMs > 0) {
      const thinking = new AbortController();
      this.thinkController = thinking;
      try {
        await this.clock.sleep(thinkMs, thinking.signal);
      } finally {
        this.thinkController = undefined;
      }
    }
    // Stopped, or the lease was lost while thinking: the placements are dropped, nothing committed.
    if (this.stopping || this.leases.generation !== generation) {
      for (const p of batch) {
        this.recorder.counts.interruptedAttempts++;
        reports.push(this.report(p.entry, p.tasks, p.deltas.length, 0, 0, p.thinkMs, this.clock.now() - start, 'interrupted', false));
      }
      return reports;
    }

    // Jobs without a claim to commit (nothing fit, or a gang not whole) are judged apart.
    const noFit = batch.filter((p) => p.deltas.length === 0 || (p.mode === 'all-or-nothing' && p.deltas.length < p.tasks));
    const commit = batch.filter((p) => !noFit.includes(p));
    // The attempt's busy time is shared among its jobs in proportion to their tasks to place, so
    // busyness and the useful / wasted / no-fit split stay what they measure.
    const tasks = batch.reduce((sum, p) => sum + p.tasks, 0);
    const share = (p: Prepared, busyMs: number): number => (batch.length === 1 ? busyMs : (busyMs * p.tasks) / tasks);
    if (commit.length > 0) reports.push(...(await this.commitBatch(commit, snapshot, start, generation, share)));
    const noFitBusyMs = this.clock.now() - start;
    // Each job's status write is its own: they go out together.
    const judged = await Promise.all(
      noFit.map(async (p) => {
        const busyMs = share(p, noFitBusyMs);
        this.recorder.counts.noFitAttempts++;
        this.recorder.counts.busyNoFitMs += busyMs;
        const offered = p.proposal?.offered.machines.length ?? 0;
        const abandoned = await this.actions.noFit(p.entry, p.job, snapshot, p.tasks, p.deltas.length, p.mode === 'all-or-nothing', p.proposal?.ruledOut ?? [], offered);
        return this.report(p.entry, p.tasks, p.deltas.length, 0, 0, p.thinkMs, noFitBusyMs, 'no-fit', abandoned);
      }),
    );
    reports.push(...judged);
    return reports;
  }

  /**
   * Commits the claims of `batch` (each job's own slice of one PrivateCell) in one commit and
   * waits for the mirror to show it; then each job's bookkeeping, as after an attempt of it alone.
   * `share` gives a job its part of the attempt's busy time.
   */
  private async commitBatch(batch: readonly Prepared[], snapshot: CellSnapshot, start: number, generation: number, share: (p: Prepared, busyMs: number) => number): Promise<AttemptReport[]> {
    const transactions: Transaction[] = batch.map((p) => ({ deltas: p.deltas, conflictMode: this.settings.conflictMode, transactionMode: p.mode, base: snapshot }));
    let results: readonly CommitResult[];
    let busyMs: number;
    try {
      // The last moment a lost lease can stop the commit (it throws NoLeaseError).
      this.leases.current();
      const commitStart = this.clock.now();
      results = transactions.length === 1 ? [await this.committer.commit(transactions[0] as Transaction)] : await this.committer.commitMany(transactions);
      busyMs = this.clock.now() - start;
      this.recorder.counts.commits++;
      const latencyMs = this.clock.now() - commitStart;
      batch.forEach((p, i) => {
        // Per job, as the transactions are counted: each job's transaction took the shared commit's time.
        this.recorder.commitLatency.add(latencyMs);
        this.histograms.commitLatency.observe(latencyMs / 1000);
        const result = results[i] as CommitResult;
        const restarted = result.committed.filter((d) => p.progress.restarting.has(parseTaskId(d.claim.taskId)?.index ?? -1)).length;
        this.restartLog.note(p.job.id, restarted, this.clock.now());
        this.recorder.recordCommit(result.committed.length, result.conflicted.length, result.spuriousRetries, share(p, busyMs));
      });
      const revision = results.reduce((max, r) => Math.max(max, r.revision), 0);
      await this.mirror.waitForRevision(revision).catch((error: unknown) => {
        throw error instanceof MirrorStoppedError ? error : new MirrorLagError(revision, { cause: error });
      });
    } catch (error) {
      if (!(error instanceof TransactionTooLargeError) || batch.length !== 1) {
        for (const p of batch) p.entry.retryAtMs = p.entry.readyAtMs = this.clock.now() + this.settings.errorBackoffMs;
        throw error;
      }
      // Only an all-or-nothing transaction is refused as too large, and a gang is committed alone.
      const p = batch[0] as Prepared;
      await this.actions.abandon(p.entry, error.message, []);
      return [this.report(p.entry, p.tasks, p.deltas.length, 0, 0, p.thinkMs, this.clock.now() - start, 'no-fit', true)];
    }
    // Each job's bookkeeping (and status write, if any) is its own: they go out together.
    return Promise.all(
      batch.map(async (p, i): Promise<AttemptReport> => {
        const { entry, tasks } = p;
        const claimed = p.deltas.length;
        const result = results[i] as CommitResult;
        const committed = result.committed.length;
        const conflicted = result.conflicted.length;
        const kind = conflicted > 0 ? 'conflicted' : committed === tasks ? 'placed' : 'partial';
        if (this.leases.generation !== generation) {
          // The lease was lost while the commit was in flight: what it committed stands (counted
          // above); the job is no longer ours to write about. The rebuild judges it afresh.
          return this.report(entry, tasks, claimed, committed, conflicted, p.thinkMs, busyMs, kind, false);
        }
        this.toAssess.add(entry.id);
        let abandoned = false;
        const ruledOut = p.proposal?.ruledOut ?? [];
        if (committed > 0) {
          // Progress: conflicted tasks are re-placed at once against a fresh snapshot.
          entry.attemptsWithoutProgress = 0;
          entry.retryAtMs = entry.readyAtMs = this.clock.now();
          if (claimed < tasks) {
            await this.actions.writeStatus(entry, { state: 'unschedulable', reason: noFitReason(tasks, claimed, false, ruledOut, p.proposal?.offered.machines.length ?? 0), ruledOut });
          }
          if (entry.attempts >= this.settings.maxAttempts) {
            abandoned = await this.actions.abandon(entry, `still ${tasks - committed} tasks to place`, ruledOut);
          }
        } else {
          abandoned = await this.actions.noProgress(entry, `every claim conflicted (${conflicted} at the last attempt)`, []);
        }
        return this.report(entry, tasks, claimed, committed, conflicted, p.thinkMs, busyMs, kind, abandoned);
      }),
    );
  }

  private report(
    entry: OwnedJob,
    tasks: number,
    claimed: number,
    committed: number,
    conflicted: number,
    thinkMs: number,
    busyMs: number,
    outcome: AttemptReport['outcome'],
    abandoned: boolean,
  ): AttemptReport {
    return { jobId: entry.id, attempt: entry.attempts, tasks, claimed, committed, conflicted, thinkMs, busyMs, outcome, abandoned };
  }


}
