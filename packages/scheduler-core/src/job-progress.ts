/**
 * Where a job stands, read from one snapshot: which of its tasks need placing now, which wait
 * for a restart backoff, and whether the job is over. Pure functions of (job, snapshot, time),
 * so the loop and tests judge a job the same way.
 *
 * Restart rules (a task's record is terminal; what happens to its index):
 *
 * | ended as                         | never      | on-failure | always |
 * |----------------------------------|------------|------------|--------|
 * | succeeded                        | done       | done       | restart |
 * | failed, or killed for another reason | job fails | restart | restart |
 * | lost (`machine-lost`), preempted or drained (`machine-drained`) | batch: `never` given: job fails, `default`: replace; service: replace | replace | replace |
 * | replaced by a rolling update (`updated`), scaled down (`scaled-down`) and back within `instances` | placed again at once | at once | at once |
 *
 * - The `default` policy is `never` for batch jobs and `always` for service jobs.
 * - Lost, preempted and drained tasks were not at fault: they are placed again (a new attempt),
 *   whatever `maxRestarts` says and without counting as the job failing, unless the job's policy
 *   says `never` explicitly (a batch job's `default`, also `never` for its own failures, does
 *   replace them). A service always replaces them.
 * - `updated` and `scaled-down` tasks were stopped by their scheduler: placed again at once (no
 *   backoff), and the new attempt does not count as a restart (the PrivateCell keeps `restarts`).
 * - A task that ended at a version older than the job's task spec (`Job.taskVersion`) restarts
 *   without waiting for its backoff and is not held by the crash-loop cap: both were earned by
 *   the older spec.
 * - `maxRestarts > 0` bounds every other replacement: a task whose record says `restarts >=
 *   maxRestarts` is not restarted (the commit increments `restarts` on every replacement).
 * - A restart waits `initialBackoffMs x 2^restarts`, at most `maxBackoffMs` (0 in the job means
 *   the scheduler's defaults), never less than {@link MIN_RESTART_BACKOFF_MS} (1 s) whatever the
 *   job or the settings say, counted from the task's `finishedAtMs` (from its `placedAtMs` when
 *   that is 0; no wait when both are), and never before the record's own `notBeforeMs`.
 * - Crash loops are also capped per job: {@link throttleRestarts} holds back restarts beyond
 *   {@link restartRateCap} in the last {@link RESTART_RATE_WINDOW_MS} (they wait, the job does not
 *   fail). Replacements of lost and preempted tasks are neither counted nor held.
 * - A job ends `succeeded` when every task succeeded and none restarts; `failed` as soon as a
 *   batch task ended for good without succeeding, or, for services, when every task ended for
 *   good and one of them did not succeed. A job whose desired state is `killed` is handled by
 *   the loop, not here.
 */
import {
  DRAINED_REASON,
  SCALED_DOWN_REASON,
  UPDATED_REASON,
  isTerminal,
  runsCurrentTask,
  taskId,
  type CellSnapshot,
  type Job,
  type JobKind,
  type RestartPolicy,
  type RestartPolicyKind,
  type Task,
} from '@omega/cell-state';
import type { TaskToPlace } from './policy.js';

/**
 * The shortest restart backoff, whatever a job's policy or the scheduler's settings say: a task
 * that exits at once is restarted at most once a second (stored jobs that ask for less are
 * throttled, not refused).
 */
export const MIN_RESTART_BACKOFF_MS = 1_000;

/** The window of {@link throttleRestarts}: restarts are counted over the last minute. */
export const RESTART_RATE_WINDOW_MS = 60_000;

/** The scheduler's restart backoff defaults (used where the job's policy says 0). */
export interface RestartDefaults {
  readonly restartBackoffInitialMs: number;
  readonly restartBackoffMaxMs: number;
}

/** What to do about one ended task. */
export type RestartDecision =
  | { readonly restart: true; readonly notBeforeMs: number }
  | { readonly restart: false; readonly why: string };

/** The restart kind a job effectively uses (`default` resolved by job kind). */
export function effectiveRestartKind(kind: JobKind, policy: RestartPolicy): Exclude<RestartPolicyKind, 'default'> {
  if (policy.kind !== 'default') return policy.kind;
  return kind === 'service' ? 'always' : 'never';
}

/**
 * Lost with its machine, preempted by a higher priority, moved off a draining machine, replaced
 * by a rolling update or scaled down (and back up): not the task's fault.
 */
function notAtFault(task: Task): boolean {
  return task.state === 'lost' || (task.state === 'killed' && (task.reason === 'preempted' || task.reason === DRAINED_REASON || isSchedulerStop(task)));
}

/** Stopped by its scheduler to be placed again (`updated`) or stopped when its index left the job (`scaled-down`): placed again at once when due. */
function isSchedulerStop(task: Task): boolean {
  return task.state === 'killed' && (task.reason === UPDATED_REASON || task.reason === SCALED_DOWN_REASON);
}

/** How a task ended, for reasons shown to users: `failed (exit 3)`, `lost (machine-lost)`. */
export function describeEnding(task: Task): string {
  const details = [task.exitCode !== undefined && task.state === 'failed' ? `exit ${task.exitCode}` : '', task.signal, task.reason].filter((s) => s !== '');
  return details.length === 0 ? task.state : `${task.state} (${details.join(', ')})`;
}

/**
 * Decides whether a terminal task restarts and from when (see the table in this file's header).
 * Call only with a terminal task.
 */
export function restartDecision(kind: JobKind, policy: RestartPolicy, task: Task, defaults: RestartDefaults): RestartDecision {
  const effective = effectiveRestartKind(kind, policy);
  let restart: boolean;
  let boundedByMax = true;
  if (task.state === 'succeeded') restart = effective === 'always';
  else if (isSchedulerStop(task)) {
    // The scheduler's own doing (a rolling update, a scale back up): a new attempt at once, whatever the policy.
    return { restart: true, notBeforeMs: 0 };
  } else if (notAtFault(task)) {
    // Not the task's doing: only a policy that says `never` itself (not batch's default) keeps it from being placed again.
    restart = kind === 'service' || policy.kind !== 'never';
    boundedByMax = false;
  } else restart = effective !== 'never';
  if (!restart) return { restart: false, why: `task ${task.index} ${describeEnding(task)}, restart policy ${effective}` };
  if (boundedByMax && policy.maxRestarts > 0 && task.restarts >= policy.maxRestarts) {
    return { restart: false, why: `task ${task.index} ${describeEnding(task)} after ${task.restarts} restarts (maxRestarts ${policy.maxRestarts})` };
  }
  const initial = Math.max(MIN_RESTART_BACKOFF_MS, policy.initialBackoffMs > 0 ? policy.initialBackoffMs : defaults.restartBackoffInitialMs);
  const max = Math.max(initial, policy.maxBackoffMs > 0 ? policy.maxBackoffMs : defaults.restartBackoffMaxMs);
  // 2^restarts overflows to Infinity for huge counts; min() keeps it at max.
  const delay = Math.min(max, initial * 2 ** Math.max(0, task.restarts));
  // A terminal record without finishedAtMs (an agent that did not say) still waits from its placement.
  const since = task.finishedAtMs > 0 ? task.finishedAtMs : task.placedAtMs;
  const from = since > 0 ? since + delay : 0;
  return { restart: true, notBeforeMs: Math.max(from, task.notBeforeMs) };
}

export type JobOutcome =
  | { readonly kind: 'active' }
  | { readonly kind: 'succeeded' }
  | { readonly kind: 'failed'; readonly reason: string };

/** A job's tasks as one snapshot shows them. */
export interface JobProgress {
  /** Indices to place now, in index order: no record, or ended and due for restart. */
  readonly toPlace: readonly TaskToPlace[];
  /**
   * The indices of `toPlace` that restart a task which ended by its own doing (failed, killed
   * other than by preemption, or succeeded under `always`): what the restart rate cap counts.
   */
  readonly restarting: ReadonlySet<number>;
  /** Set by {@link throttleRestarts} when it held restarts back. */
  readonly throttled?: RestartThrottle;
  /** Earliest time a task waiting for its restart backoff becomes due; undefined when none waits. */
  readonly nextRestartAtMs: number | undefined;
  /** Tasks whose record is not terminal (placed, running): their claims count. */
  readonly live: readonly Task[];
  /** Nothing to place now or later: every index is live or ended for good. */
  readonly fullyPlaced: boolean;
  readonly outcome: JobOutcome;
}

/**
 * Judges `job` against `snapshot` at time `nowMs`. O(instances). Tasks with an index outside
 * `0..instances-1` are ignored.
 */
export function assessJob(job: Job, snapshot: CellSnapshot, nowMs: number, defaults: RestartDefaults): JobProgress {
  const { kind, instances, restartPolicy } = job.spec;
  const toPlace: TaskToPlace[] = [];
  const restarting = new Set<number>();
  const live: Task[] = [];
  let nextRestartAtMs: number | undefined;
  let succeeded = 0;
  let endedForGood = 0;
  let firstFailure: string | undefined;
  for (let index = 0; index < instances; index++) {
    const id = taskId(job.id, index);
    const task = snapshot.task(id);
    if (task === undefined) {
      toPlace.push({ taskId: id, index });
      continue;
    }
    if (!isTerminal(task.state)) {
      live.push(task);
      continue;
    }
    let decision = restartDecision(kind, restartPolicy, task, defaults);
    // A newer task spec starts afresh: an older version's crash-loop backoff does not hold it back.
    if (decision.restart && !runsCurrentTask(job, task)) decision = { restart: true, notBeforeMs: 0 };
    if (decision.restart) {
      if (decision.notBeforeMs <= nowMs) {
        toPlace.push({ taskId: id, index });
        // Nor is it held by the crash-loop cap: the loop was the older spec's.
        if (!notAtFault(task) && runsCurrentTask(job, task)) restarting.add(index);
      } else nextRestartAtMs = Math.min(nextRestartAtMs ?? Infinity, decision.notBeforeMs);
      continue;
    }
    endedForGood++;
    if (task.state === 'succeeded') succeeded++;
    else firstFailure ??= decision.why;
  }
  const fullyPlaced = toPlace.length === 0 && nextRestartAtMs === undefined;
  let outcome: JobOutcome = { kind: 'active' };
  if (firstFailure !== undefined && (kind === 'batch' || endedForGood === instances)) outcome = { kind: 'failed', reason: firstFailure };
  else if (instances > 0 && succeeded === instances) outcome = { kind: 'succeeded' };
  return { toPlace, restarting, nextRestartAtMs, live, fullyPlaced, outcome };
}

/** Restarts held back by the rate cap, for the job's status. */
export interface RestartThrottle {
  /** Restarts of the job in the last minute. */
  readonly recent: number;
  /** Restarts due now that wait. */
  readonly held: number;
  /** When the oldest counted restart leaves the window (the next one may go then). */
  readonly untilMs: number;
}

/**
 * The most restarts one job makes per minute: `max(maxRestartsPerJobPerMinute, instances)`, so
 * every task of a large job may still restart about once a minute while a small job's crash
 * loop is held to the setting (default 10).
 */
export function restartRateCap(instances: number, maxRestartsPerJobPerMinute: number): number {
  return Math.max(1, maxRestartsPerJobPerMinute, instances);
}

/** The status reason of a job whose restarts wait for the rate cap. */
export function restartRateReason(throttle: RestartThrottle): string {
  return `restart rate limit: ${throttle.recent} restarts in the last minute`;
}

/**
 * Applies the restart rate cap to a judged job: with `recentRestartsMs` (when the job's restarts
 * of the last {@link RESTART_RATE_WINDOW_MS} were committed, any order) at or over `cap`, the
 * restarts of `progress.restarting` beyond what the cap still allows are taken out of `toPlace`
 * (lowest indices go first) and `nextRestartAtMs` is brought forward to when the next may go.
 * Tasks never placed and replacements of lost or preempted tasks are left alone. Pure.
 */
export function throttleRestarts(progress: JobProgress, recentRestartsMs: readonly number[], cap: number, nowMs: number): JobProgress {
  if (progress.restarting.size === 0) return progress;
  const windowStart = nowMs - RESTART_RATE_WINDOW_MS;
  const recent = recentRestartsMs.filter((t) => t > windowStart).sort((a, b) => a - b);
  const allowed = Math.max(0, cap - recent.length);
  if (progress.restarting.size <= allowed) return progress;
  const toPlace: TaskToPlace[] = [];
  const restarting = new Set<number>();
  let held = 0;
  for (const task of progress.toPlace) {
    if (!progress.restarting.has(task.index)) toPlace.push(task);
    else if (restarting.size < allowed) {
      toPlace.push(task);
      restarting.add(task.index);
    } else held++;
  }
  // The restart that frees a slot: the oldest one still counted once those allowed now are made.
  const freeing = recent[recent.length - cap + allowed] ?? recent[0] ?? nowMs;
  const untilMs = Math.max(nowMs + 1, freeing + RESTART_RATE_WINDOW_MS);
  return {
    ...progress,
    toPlace,
    restarting,
    nextRestartAtMs: Math.min(progress.nextRestartAtMs ?? Infinity, untilMs),
    fullyPlaced: false,
    throttled: { recent: recent.length, held, untilMs },
  };
}
