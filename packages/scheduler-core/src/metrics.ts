/**
 * What one scheduler instance counts, with BENCH.md's definitions:
 * - a **transaction** is one commit; it **failed** if any of its claims conflicted, even when the
 *   rest committed; **conflict fraction** = failed / successful transactions; task-level conflict
 *   fraction = conflicted claims / attempted claims;
 * - **busyness** = (useful + wasted) / elapsed, where an attempt's busy time runs from taking the
 *   snapshot to the commit's reply (think time included); it is **wasted** when the commit had a
 *   conflict, **useful** otherwise; attempts where nothing fit count in neither (`busyNoFitMs`);
 * - **wait times**: job submission to the start of its first attempt, and to fully placed.
 *
 * Counts only grow; `snapshot()` hands out a copy. Wait-time percentiles come from a log-bucket
 * histogram (1% relative error, bounded memory, cheap to read every second for days of
 * simulated time); means are exact.
 */
import type { SchedulerStats } from '@omega/cell-state';

/** Mean and percentiles of a latency distribution, in ms. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Buckets grow by 1% each: bucket i holds values in (GROWTH^(i-1), GROWTH^i] ms. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);

/** A distribution of non-negative millisecond values. */
export class LatencyHistogram {
  private readonly buckets = new Map<number, number>();
  private count = 0;
  private sum = 0;
  private max = 0;

  add(ms: number): void {
    const v = Math.max(0, ms);
    const bucket = v <= 1 ? 0 : Math.ceil(Math.log(v) / LOG_GROWTH);
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    this.count++;
    this.sum += v;
    this.max = Math.max(this.max, v);
  }

  /** The value below which `q` (0..1) of the samples lie, to 1%. 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (const bucket of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(bucket) ?? 0;
      if (seen >= rank) return Math.min(this.max, bucket === 0 ? 1 : GROWTH ** bucket);
    }
    return this.max;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      meanMs: this.count === 0 ? 0 : this.sum / this.count,
      p50Ms: this.quantile(0.5),
      p90Ms: this.quantile(0.9),
      p99Ms: this.quantile(0.99),
      maxMs: this.max,
    };
  }
}

/** Everything an instance counted, for tests, the simulator and the published stats. */
export interface SchedulerMetrics {
  /** Placement attempts (each thinks once; most commit once). */
  readonly attempts: number;
  /** Attempts where nothing could be committed because nothing (or, for a gang, not all) fit. */
  readonly noFitAttempts: number;
  /** Attempts cut short by `stop()` or a lost lease during their think time (nothing committed, nothing counted as busy). */
  readonly interruptedAttempts: number;
  readonly transactionsOk: number;
  readonly transactionsFailed: number;
  /**
   * Commit calls: one per transaction, except that several jobs committed together
   * (`maxJobsPerCommit` > 1) share one; transactions (per job) / commits is the jobs per commit.
   */
  readonly commits: number;
  /** Claims sent to commit; always `claimsCommitted + claimsConflicted`. */
  readonly claimsAttempted: number;
  readonly claimsCommitted: number;
  readonly claimsConflicted: number;
  /** resource-fit re-checks inside commits that still fit (not conflicts). */
  readonly spuriousRetries: number;
  /** failed / successful transactions (0 with no transactions; failed when none succeeded). */
  readonly conflictFraction: number;
  /** conflicted / attempted claims. */
  readonly taskConflictFraction: number;
  readonly busyUsefulMs: number;
  readonly busyWastedMs: number;
  readonly busyNoFitMs: number;
  readonly elapsedMs: number;
  /** (useful + wasted) / elapsed. */
  readonly busyness: number;
  readonly jobsAcquired: number;
  /** Jobs this instance brought to fully placed for the first time. */
  readonly jobsPlaced: number;
  readonly jobsAbandoned: number;
  readonly jobsSucceeded: number;
  readonly jobsFailed: number;
  readonly jobsKilled: number;
  /** Jobs failed because their stored record is invalid. */
  readonly jobsInvalid: number;
  readonly tasksMarkedLost: number;
  /** Tasks this instance stopped on draining machines (drain.ts). */
  readonly tasksDrained: number;
  /** Tasks this instance stopped for a job's version (rollout.ts): replaced by a rolling update, beyond a scaled-down count. */
  readonly tasksUpdated: number;
  readonly tasksScaledDown: number;
  /** Failed rolling updates this instance rolled back (automatic rollbacks stored). */
  readonly jobsRolledBack: number;
  /** Runs of cron jobs this instance created, and scheduled times it skipped (cron.ts). */
  readonly cronRunsCreated: number;
  readonly cronTimesSkipped: number;
  readonly storeErrors: number;
  /** Finished jobs this instance's janitor deleted after their retention. */
  readonly jobsDeleted: number;
  /** Expired request records this instance's janitor deleted. */
  readonly requestsDeleted: number;
  /** Leases lost while running (the store unreachable past the TTL); each is followed by a re-grant. */
  readonly leasesLost: number;
  /** Leases granted after a loss (or at the first step when none was given), each followed by a rebuild of the book. */
  readonly leasesGranted: number;
  /** Jobs owned now, and how many of them wait for placement. */
  readonly ownedJobs: number;
  readonly queuedJobs: number;
  readonly waitFirstAttempt: LatencySummary;
  readonly waitFullyPlaced: LatencySummary;
  /** Store time of each commit: request to reply, resource-fit retries inside it included (benchmarks). */
  readonly commitLatency: LatencySummary;
}

type Counter = Exclude<
  keyof SchedulerMetrics,
  'conflictFraction' | 'taskConflictFraction' | 'busyness' | 'elapsedMs' | 'ownedJobs' | 'queuedJobs' | 'waitFirstAttempt' | 'waitFullyPlaced' | 'commitLatency'
>;

/** The mutable counters behind {@link SchedulerMetrics}. */
export class MetricsRecorder {
  readonly counts: Record<Counter, number> = {
    attempts: 0,
    noFitAttempts: 0,
    interruptedAttempts: 0,
    transactionsOk: 0,
    transactionsFailed: 0,
    commits: 0,
    claimsAttempted: 0,
    claimsCommitted: 0,
    claimsConflicted: 0,
    spuriousRetries: 0,
    busyUsefulMs: 0,
    busyWastedMs: 0,
    busyNoFitMs: 0,
    jobsAcquired: 0,
    jobsPlaced: 0,
    jobsAbandoned: 0,
    jobsSucceeded: 0,
    jobsFailed: 0,
    jobsKilled: 0,
    jobsInvalid: 0,
    tasksMarkedLost: 0,
    tasksDrained: 0,
    tasksUpdated: 0,
    tasksScaledDown: 0,
    jobsRolledBack: 0,
    cronRunsCreated: 0,
    cronTimesSkipped: 0,
    storeErrors: 0,
    jobsDeleted: 0,
    requestsDeleted: 0,
    leasesLost: 0,
    leasesGranted: 0,
  };
  readonly waitFirstAttempt = new LatencyHistogram();
  readonly waitFullyPlaced = new LatencyHistogram();
  readonly commitLatency = new LatencyHistogram();

  constructor(readonly startedAtMs: number) {}

  /** One commit's outcome, with the attempt's busy time. */
  recordCommit(committed: number, conflicted: number, spurious: number, busyMs: number): void {
    const c = this.counts;
    if (conflicted > 0) {
      c.transactionsFailed++;
      c.busyWastedMs += busyMs;
    } else {
      c.transactionsOk++;
      c.busyUsefulMs += busyMs;
    }
    c.claimsAttempted += committed + conflicted;
    c.claimsCommitted += committed;
    c.claimsConflicted += conflicted;
    c.spuriousRetries += spurious;
  }

  snapshot(nowMs: number, ownedJobs: number, queuedJobs: number): SchedulerMetrics {
    const c = this.counts;
    const elapsedMs = Math.max(0, nowMs - this.startedAtMs);
    return {
      ...c,
      conflictFraction: c.transactionsOk > 0 ? c.transactionsFailed / c.transactionsOk : c.transactionsFailed,
      taskConflictFraction: c.claimsAttempted > 0 ? c.claimsConflicted / c.claimsAttempted : 0,
      elapsedMs,
      busyness: elapsedMs > 0 ? (c.busyUsefulMs + c.busyWastedMs) / elapsedMs : 0,
      ownedJobs,
      queuedJobs,
      waitFirstAttempt: this.waitFirstAttempt.summary(),
      waitFullyPlaced: this.waitFullyPlaced.summary(),
      commitLatency: this.commitLatency.summary(),
    };
  }
}

/** The published record (`schedulers/<name>`) for a metrics snapshot (times are doubles in the record). */
export function toSchedulerStats(
  m: SchedulerMetrics,
  who: { readonly name: string; readonly kind: string; readonly conflictMode: string; readonly transactionMode: string },
  nowMs: number,
): SchedulerStats {
  return {
    name: who.name,
    kind: who.kind,
    conflictMode: who.conflictMode,
    transactionMode: who.transactionMode,
    transactionsOk: m.transactionsOk,
    transactionsFailed: m.transactionsFailed,
    claimsCommitted: m.claimsCommitted,
    claimsConflicted: m.claimsConflicted,
    busyUsefulMs: m.busyUsefulMs,
    busyWastedMs: m.busyWastedMs,
    busyNoFitMs: m.busyNoFitMs,
    elapsedMs: m.elapsedMs,
    jobsPlaced: m.jobsPlaced,
    jobsAbandoned: m.jobsAbandoned,
    waitFirstAttemptMeanMs: m.waitFirstAttempt.meanMs,
    waitFirstAttemptP90Ms: m.waitFirstAttempt.p90Ms,
    waitFullyPlacedMeanMs: m.waitFullyPlaced.meanMs,
    waitFullyPlacedP90Ms: m.waitFullyPlaced.p90Ms,
    spuriousRetries: m.spuriousRetries,
    updatedAtMs: Math.round(nowMs),
  };
}
