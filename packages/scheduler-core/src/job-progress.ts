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
 * | lost (`machine-lost`) or preempted | batch: job fails; service: replace | replace | replace |
 *
 * - The `default` policy is `never` for batch jobs and `always` for service jobs.
 * - Lost and preempted tasks were not at fault: a service always replaces them, whatever its
 *   policy and `maxRestarts`. A batch job replaces them unless its policy is `never`.
 * - `maxRestarts > 0` bounds every other replacement: a task whose record says `restarts >=
 *   maxRestarts` is not restarted (the commit increments `restarts` on every replacement).
 * - A restart waits `initialBackoffMs x 2^restarts`, at most `maxBackoffMs` (0 in the job means
 *   the scheduler's defaults), counted from the task's `finishedAtMs` (no wait when that is 0),
 *   and never before the record's own `notBeforeMs`.
 * - A job ends `succeeded` when every task succeeded and none restarts; `failed` as soon as a
 *   batch task ended for good without succeeding, or, for services, when every task ended for
 *   good and one of them did not succeed. A job whose desired state is `killed` is handled by
 *   the loop, not here.
 */
import {
  isTerminal,
  taskId,
  type CellSnapshot,
  type Job,
  type JobKind,
  type RestartPolicy,
  type RestartPolicyKind,
  type Task,
} from '@omega/cell-state';
import type { TaskToPlace } from './policy.js';

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

/** Lost with its machine, or preempted by a higher priority: not the task's fault. */
function notAtFault(task: Task): boolean {
  return task.state === 'lost' || (task.state === 'killed' && task.reason === 'preempted');
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
  else if (notAtFault(task)) {
    restart = kind === 'service' || effective !== 'never';
    boundedByMax = kind !== 'service';
  } else restart = effective !== 'never';
  if (!restart) return { restart: false, why: `task ${task.index} ${describeEnding(task)}, restart policy ${effective}` };
  if (boundedByMax && policy.maxRestarts > 0 && task.restarts >= policy.maxRestarts) {
    return { restart: false, why: `task ${task.index} ${describeEnding(task)} after ${task.restarts} restarts (maxRestarts ${policy.maxRestarts})` };
  }
  const initial = policy.initialBackoffMs > 0 ? policy.initialBackoffMs : defaults.restartBackoffInitialMs;
  const max = Math.max(initial, policy.maxBackoffMs > 0 ? policy.maxBackoffMs : defaults.restartBackoffMaxMs);
  // 2^restarts overflows to Infinity for huge counts; min() keeps it at max.
  const delay = Math.min(max, initial * 2 ** Math.max(0, task.restarts));
  const from = task.finishedAtMs > 0 ? task.finishedAtMs + delay : 0;
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
    const decision = restartDecision(kind, restartPolicy, task, defaults);
    if (decision.restart) {
      if (decision.notBeforeMs <= nowMs) toPlace.push({ taskId: id, index });
      else nextRestartAtMs = Math.min(nextRestartAtMs ?? Infinity, decision.notBeforeMs);
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
  return { toPlace, nextRestartAtMs, live, fullyPlaced, outcome };
}
