/**
 * The job view: what a user sees of a job, derived from three records that different processes
 * write: the job (API: spec, desired state), its status (the owning scheduler's word) and its
 * task records (placement by commits, outcome by agents). Pure functions over a snapshot, so
 * every API server derives the same view from the same revision.
 *
 * State of the job:
 *   killed        kill requested and no task is live any more
 *   running       some task is placed or running (also while a kill is being carried out), or
 *                 the job has task records and is between attempts
 *   succeeded /   every instance reached a final outcome (nothing will be restarted: see
 *   failed        {@link isFinal}), or the scheduler said so and nothing is live
 *   unschedulable the scheduler gave up placing it and nothing is live
 *   pending       nothing placed yet
 *
 * The job has **ended** when its state is succeeded, failed or killed: every task is terminal
 * and nothing will be restarted. An unschedulable job has not ended (machines may come).
 */
import {
  isReplacedTask,
  isTerminal,
  jobVersion,
  taskVersion,
  type CellSnapshot,
  type Job,
  type JobState,
  type JobStatus,
  type RestartPolicyKind,
  type Task,
  type TaskState,
} from '@omega/cell-state';
import { jobSpecToWire } from './job-spec-wire.js';
import { JOB_VIEW_STATE_WIRE, TASK_VIEW_STATE_WIRE, type WireJobView, type WireTaskCounts, type WireTaskView } from './wire.js';

/** The records a job view is made of. `tasks` holds task records in any order. */
export interface JobFacts {
  readonly job: Job;
  readonly status: JobStatus | undefined;
  /** The scheduler instance that owns the job now, if any. */
  readonly owner: string | undefined;
  readonly tasks: readonly Task[];
}

/** One instance of the job: its task record, or none when it was never placed. */
export interface TaskSlot {
  readonly index: number;
  readonly task: Task | undefined;
  /** The state shown: the record's, `pending` without one, `killed` when a killed job never placed it. */
  readonly state: TaskState;
  readonly reason: string;
}

export interface DerivedJob {
  readonly state: JobState;
  readonly reason: string;
  /** Succeeded, failed or killed: nothing of it runs and nothing will be restarted. */
  readonly ended: boolean;
  readonly slots: readonly TaskSlot[];
  readonly counts: WireTaskCounts;
}

/** The restart policy in effect: UNSPECIFIED means never for batch, always for service. */
export function effectiveRestartPolicy(job: Job): Exclude<RestartPolicyKind, 'default'> {
  const kind = job.spec.restartPolicy.kind;
  if (kind !== 'default' && kind !== undefined) return kind;
  return job.spec.kind === 'service' ? 'always' : 'never';
}

/**
 * Whether a terminal task will stay as it is. Lost and preempted tasks are replaced by their
 * scheduler whatever the policy; a success is replaced only under `always`; any other ending
 * (failed, oom-killed, ...) only under `on-failure` or `always`.
 */
export function isFinal(task: Task, policy: Exclude<RestartPolicyKind, 'default'>): boolean {
  if (!isTerminal(task.state)) return false;
  if (task.state === 'lost' || (task.state === 'killed' && task.reason === 'preempted')) return false;
  // Stopped by its scheduler to be placed again (a rolling update, a drain, a scale back up).
  if (isReplacedTask(task)) return false;
  if (task.state === 'succeeded') return policy !== 'always';
  return policy === 'never';
}

function failureText(task: Task): string {
  if (task.reason !== '') return task.reason;
  if (task.exitCode !== undefined) return `exit code ${task.exitCode}`;
  if (task.signal !== '') return `signal ${task.signal}`;
  return task.state;
}

const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'killed']);

/** Derives the job's state, reason and per-instance slots from its records. */
export function deriveJob(facts: JobFacts): DerivedJob {
  const { job, status } = facts;
  const killRequested = job.desired === 'killed';
  const byIndex = new Map<number, Task>();
  for (const task of facts.tasks) if (task.index >= 0 && task.index < job.spec.instances) byIndex.set(task.index, task);

  const slots: TaskSlot[] = [];
  const counts: WireTaskCounts = { pending: 0, placed: 0, running: 0, succeeded: 0, failed: 0, killed: 0, lost: 0 };
  let live = 0;
  for (let index = 0; index < job.spec.instances; index++) {
    const task = byIndex.get(index);
    let slot: TaskSlot;
    if (task !== undefined) slot = { index, task, state: task.state, reason: task.reason };
    else if (killRequested) slot = { index, task, state: 'killed', reason: 'job-killed' };
    else slot = { index, task, state: 'pending', reason: '' };
    if (task !== undefined && !isTerminal(task.state)) live++;
    counts[slot.state]++;
    slots.push(slot);
  }

  const policy = effectiveRestartPolicy(job);
  const statusReason = status?.reason ?? '';
  const result = (state: JobState, reason: string): DerivedJob => ({ state, reason, ended: TERMINAL_JOB_STATES.has(state), slots, counts });

  if (killRequested) {
    return live === 0 ? result('killed', statusReason || 'killed on request') : result('running', `stopping ${live} task(s): kill requested`);
  }
  // A cron job's template has no tasks of its own: its runs are jobs (cronRun names it).
  if (job.spec.schedule !== undefined) return { ...result('scheduled', statusReason || 'waiting for a scheduler to take it'), slots: [], counts: { ...counts, pending: 0 } };
  if (live === 0 && status !== undefined && TERMINAL_JOB_STATES.has(status.state)) return result(status.state, statusReason);
  if (slots.length > 0 && slots.every((s) => s.task !== undefined && isFinal(s.task, policy))) {
    const failed = slots.find((s) => s.task?.state !== 'succeeded');
    return failed?.task === undefined ? result('succeeded', statusReason) : result('failed', statusReason || `task ${failed.index} ${failureText(failed.task)}`);
  }
  if (live > 0) return result('running', statusReason);
  if (status?.state === 'unschedulable') return result('unschedulable', statusReason);
  if (byIndex.size > 0) return result('running', statusReason);
  return result('pending', statusReason);
}

/** The facts of one job in a snapshot; undefined when the snapshot does not hold the job. */
export function jobFacts(snapshot: CellSnapshot, id: Job['id']): JobFacts | undefined {
  const job = snapshot.job(id);
  if (job === undefined) return undefined;
  return { job, status: snapshot.status(id), owner: snapshot.owner(id)?.scheduler, tasks: [...snapshot.tasksOf(id)] };
}

function taskViewToWire(slot: TaskSlot): WireTaskView {
  const t = slot.task;
  return {
    index: slot.index,
    state: TASK_VIEW_STATE_WIRE[slot.state],
    machine: t?.machineId ?? '',
    has_exit_code: t?.exitCode !== undefined,
    exit_code: t?.exitCode ?? 0,
    signal: t?.signal ?? '',
    reason: slot.reason,
    attempt: t?.attempt ?? 0,
    restarts: t?.restarts ?? 0,
    placed_at_ms: t?.placedAtMs ?? 0,
    started_at_ms: t?.startedAtMs ?? 0,
    finished_at_ms: t?.finishedAtMs ?? 0,
    cpu_seconds: t?.cpuSeconds ?? 0,
    peak_memory_bytes: t?.peakMemoryBytes ?? 0,
    version: t === undefined ? 0 : taskVersion(t),
    health: t?.health ?? '',
    health_since_ms: t?.healthSinceMs ?? 0,
    message: t?.message ?? '',
  };
}

/** The wire JobView of a derived job. `includeTasks: false` leaves `tasks` empty (counts stay). */
export function jobViewToWire(facts: JobFacts, derived: DerivedJob, options: { includeTasks?: boolean } = {}): WireJobView {
  const { job, status } = facts;
  const scheduler = facts.owner ?? (status?.scheduler || undefined) ?? derived.slots.find((s) => s.task !== undefined)?.task?.scheduler ?? '';
  return {
    id: job.id,
    spec: jobSpecToWire(job.spec),
    state: JOB_VIEW_STATE_WIRE[derived.state],
    reason: derived.reason,
    ruled_out: (status?.ruledOut ?? []).map((r) => ({ filter: r.filter, machines: r.machines })),
    kill_requested: job.desired === 'killed',
    submitted_at_ms: job.submittedAtMs,
    scheduler,
    tasks: options.includeTasks === false ? [] : derived.slots.map(taskViewToWire),
    task_counts: { ...derived.counts },
    version: jobVersion(job),
    deployment:
      status?.deployment === undefined
        ? null
        : {
            version: status.deployment.version,
            state: status.deployment.state,
            healthy: status.deployment.healthy,
            updated: status.deployment.updated,
            total: status.deployment.total,
            reason: status.deployment.reason,
            started_at_ms: status.deployment.startedAtMs,
          },
    cron:
      job.spec.schedule === undefined
        ? null
        : {
            next_run_at_ms: status?.cron?.nextAtMs ?? 0,
            last_scheduled_at_ms: status?.cron?.lastScheduledAtMs ?? 0,
            runs: status?.cron?.runs ?? 0,
            skipped: status?.cron?.skipped ?? 0,
            last_skip_reason: status?.cron?.lastSkipReason ?? '',
          },
    cron_run: job.cronRun === undefined ? null : { template_id: job.cronRun.templateId, scheduled_at_ms: job.cronRun.scheduledAtMs },
  };
}

/** The job's view in a snapshot, with whether it has ended; undefined when the snapshot lacks it. */
export function jobView(snapshot: CellSnapshot, id: Job['id'], options: { includeTasks?: boolean } = {}): { view: WireJobView; ended: boolean } | undefined {
  const facts = jobFacts(snapshot, id);
  if (facts === undefined) return undefined;
  const derived = deriveJob(facts);
  return { view: jobViewToWire(facts, derived, options), ended: derived.ended };
}

/** Whether a mirror change concerns this job: its record, status, owner or one of its tasks. */
export function changeConcernsJob(change: { readonly kind: string; readonly id: string }, id: Job['id']): boolean {
  switch (change.kind) {
    case 'job':
    case 'status':
    case 'owner':
      return change.id === id;
    case 'task':
      return change.id.startsWith(`${id}/`);
    default:
      return false;
  }
}
