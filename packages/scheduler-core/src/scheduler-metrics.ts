/**
 * A scheduler instance's figures on the metrics seam (`/metrics` of a scheduler process). The
 * counters are read from the instance's own SchedulerMetrics at scrape time, the same figures
 * its published `schedulers/<name>` record carries (what `omega stats` and the benchmarks
 * read), so the two never disagree; the latency histograms are recorded by the loop itself.
 *
 * | metric | type | what |
 * |---|---|---|
 * | `omega_scheduler_transactions_total{result="ok"\|"failed"}` | counter | commits; failed = any claim conflicted |
 * | `omega_scheduler_claims_total{result="committed"\|"conflicted"}` | counter | claims sent to commit |
 * | `omega_scheduler_spurious_retries_total` | counter | resource-fit re-checks inside commits that still fit |
 * | `omega_scheduler_attempts_total{outcome="all"\|"no_fit"\|"interrupted"}` | counter | placement attempts |
 * | `omega_scheduler_jobs_total{event=...}` | counter | jobs acquired, placed, abandoned, succeeded, failed, killed, deleted |
 * | `omega_scheduler_tasks_total{event="marked_lost"\|"drained"}` | counter | tasks this instance stopped for their machine |
 * | `omega_scheduler_cron_runs_total`, `omega_scheduler_cron_skipped_total` | counter | cron runs made, scheduled times skipped |
 * | `omega_scheduler_busy_seconds_total{kind="useful"\|"wasted"\|"no_fit"}` | counter | busy time (Omega's busyness = (useful + wasted) / elapsed) |
 * | `omega_scheduler_busyness` | gauge | (useful + wasted) / elapsed since start |
 * | `omega_scheduler_conflict_fraction` | gauge | failed / successful transactions |
 * | `omega_scheduler_jobs_owned`, `omega_scheduler_queue_depth` | gauge | jobs owned; owned jobs waiting for placement |
 * | `omega_scheduler_leases_lost_total`, `omega_scheduler_store_errors_total` | counter | lease losses, store errors |
 * | `omega_scheduler_commit_latency_seconds` | histogram | each commit, request to reply |
 * | `omega_scheduler_time_to_place_seconds` | histogram | submit to fully placed, per job |
 * | `omega_scheduler_time_to_first_attempt_seconds` | histogram | submit to the first attempt, per job |
 * | `omega_mirror_*` | see cell-state's mirror metrics | the instance's replica of the cell |
 */
import { LATENCY_BUCKETS_SECONDS, WAIT_BUCKETS_SECONDS, type Histogram, type Metrics } from '@omega/metrics/seam';
import type { SchedulerMetrics } from './metrics.js';

/** The histograms the loop records into. */
export interface SchedulerHistograms {
  readonly commitLatency: Histogram;
  readonly timeToPlace: Histogram;
  readonly timeToFirstAttempt: Histogram;
}

export function schedulerHistograms(metrics: Metrics): SchedulerHistograms {
  return {
    commitLatency: metrics.histogram({ name: 'omega_scheduler_commit_latency_seconds', help: 'Each commit of claims, request to reply (resource-fit retries inside it included).', buckets: LATENCY_BUCKETS_SECONDS }),
    timeToPlace: metrics.histogram({ name: 'omega_scheduler_time_to_place_seconds', help: 'Per job: from its submission until all its tasks were placed.', buckets: WAIT_BUCKETS_SECONDS }),
    timeToFirstAttempt: metrics.histogram({ name: 'omega_scheduler_time_to_first_attempt_seconds', help: 'Per job: from its submission until its first placement attempt.', buckets: WAIT_BUCKETS_SECONDS }),
  };
}

/** Registers the counters and gauges of one instance, read from `read()` at each scrape. */
export function exposeSchedulerMetrics(metrics: Metrics, read: () => SchedulerMetrics): void {
  const counter = (name: string, help: string, labelNames: readonly string[], samples: (m: SchedulerMetrics) => { labels?: Record<string, string>; value: number }[]): void =>
    metrics.observed({ name, help, labelNames, type: 'counter' }, () => samples(read()));
  const gauge = (name: string, help: string, value: (m: SchedulerMetrics) => number): void => metrics.observed({ name, help, type: 'gauge' }, () => [{ value: value(read()) }]);
  counter('omega_scheduler_transactions_total', 'Commits of claims; failed when any claim conflicted.', ['result'], (m) => [
    { labels: { result: 'ok' }, value: m.transactionsOk },
    { labels: { result: 'failed' }, value: m.transactionsFailed },
  ]);
  counter('omega_scheduler_claims_total', 'Claims sent to commit, by outcome.', ['result'], (m) => [
    { labels: { result: 'committed' }, value: m.claimsCommitted },
    { labels: { result: 'conflicted' }, value: m.claimsConflicted },
  ]);
  counter('omega_scheduler_spurious_retries_total', 'Resource-fit re-checks inside commits whose claims still fit.', [], (m) => [{ value: m.spuriousRetries }]);
  counter('omega_scheduler_attempts_total', 'Placement attempts: all of them, those where nothing fit, those cut short.', ['outcome'], (m) => [
    { labels: { outcome: 'all' }, value: m.attempts },
    { labels: { outcome: 'no_fit' }, value: m.noFitAttempts },
    { labels: { outcome: 'interrupted' }, value: m.interruptedAttempts },
  ]);
  counter('omega_scheduler_jobs_total', 'Jobs by what this instance did with them.', ['event'], (m) =>
    (
      [
        ['acquired', m.jobsAcquired],
        ['placed', m.jobsPlaced],
        ['abandoned', m.jobsAbandoned],
        ['succeeded', m.jobsSucceeded],
        ['failed', m.jobsFailed],
        ['killed', m.jobsKilled],
        ['invalid', m.jobsInvalid],
        ['deleted', m.jobsDeleted],
        ['rolled_back', m.jobsRolledBack],
      ] as const
    ).map(([event, value]) => ({ labels: { event }, value })),
  );
  counter('omega_scheduler_tasks_total', 'Tasks this instance stopped: marked lost with their machine, moved off a draining one, replaced by a rolling update, scaled down.', ['event'], (m) => [
    { labels: { event: 'marked_lost' }, value: m.tasksMarkedLost },
    { labels: { event: 'drained' }, value: m.tasksDrained },
    { labels: { event: 'updated' }, value: m.tasksUpdated },
    { labels: { event: 'scaled_down' }, value: m.tasksScaledDown },
  ]);
  counter('omega_scheduler_cron_runs_total', 'Runs of cron jobs this instance created.', [], (m) => [{ value: m.cronRunsCreated }]);
  counter('omega_scheduler_cron_skipped_total', 'Scheduled times of cron jobs this instance skipped (past the deadline, forbid, quota).', [], (m) => [{ value: m.cronTimesSkipped }]);
  counter('omega_scheduler_busy_seconds_total', 'Busy time: useful (committed without conflict), wasted (conflicted), no_fit (nothing fit).', ['kind'], (m) => [
    { labels: { kind: 'useful' }, value: m.busyUsefulMs / 1000 },
    { labels: { kind: 'wasted' }, value: m.busyWastedMs / 1000 },
    { labels: { kind: 'no_fit' }, value: m.busyNoFitMs / 1000 },
  ]);
  counter('omega_scheduler_leases_lost_total', 'Leases lost while running (the store unreachable past the TTL).', [], (m) => [{ value: m.leasesLost }]);
  counter('omega_scheduler_store_errors_total', 'Steps that failed on a store error (retried).', [], (m) => [{ value: m.storeErrors }]);
  gauge('omega_scheduler_busyness', "Omega's busyness: (useful + wasted busy time) / elapsed time since the instance started.", (m) => m.busyness);
  gauge('omega_scheduler_conflict_fraction', "Omega's conflict fraction: failed / successful transactions since start.", (m) => m.conflictFraction);
  gauge('omega_scheduler_jobs_owned', 'Jobs this instance owns now.', (m) => m.ownedJobs);
  gauge('omega_scheduler_queue_depth', 'Owned jobs waiting for placement (not abandoned).', (m) => m.queuedJobs);
}
