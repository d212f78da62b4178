/**
 * Rollouts: what the owner of a job stops so that its running instances become what its current
 * version asks: instances beyond `instances` (scale down, batch and service) and, for services,
 * instances that run an older task spec (a rolling update, Nomad's deployment).
 *
 * ```
 *  scale down   live task with index >= instances ──► killed, reason scaled-down (not a failure)
 *
 *  rolling update (service, an instance placed at a version before job.taskVersion T, and not
 *  at one of the versions a rollback returned to: see runsCurrentTask)
 *    healthy  = old instances running (and not failing their check)
 *             + new instances (placed at >= T) running, and passing their check if the job has
 *               one, for at least minHealthyTime
 *    each step: stop (killed, reason updated) outdated instances, the unavailable ones first,
 *               while  instances - healthy < maxUnavailable   (surge is refused at submit)
 *    the restart rules place a stopped instance again at once, at version T (not a restart)
 *    succeeded: every instance new and healthy ── lastGoodVersion = the job's version
 *    failed:    the healthy count did not grow for healthyDeadline while some instance was not
 *               new and healthy ── nothing more is stopped; with autoRollback (and unless this
 *               deployment is itself an automatic rollback) the job returns to lastGoodVersion
 *               as a new version (Cell.updateJob, like `omega rollback`): state rolled-back
 * ```
 *
 * The deployment (version T, state, counts, why it failed) is written by the owner with the
 * job's status. Stops sent are remembered until the mirror shows them, so a step never counts an
 * instance it already stopped as still healthy. Pure planning ({@link planRollout}) is apart from
 * the writes ({@link Rollouts}), so tests drive it step by step with a fake clock.
 */
import {
  SCALED_DOWN_REASON,
  UPDATED_REASON,
  isTerminal,
  jobTaskVersion,
  jobVersion,
  resolveUpdateStrategy,
  runsCurrentTask,
  taskId,
  type Cell,
  type CellSnapshot,
  type ClaimId,
  type Deployment,
  type Job,
  type JobId,
  type KvLease,
  type Task,
} from '@omega/cell-state';
import type { Logger } from 'pino';
import type { OwnedJob } from './job-book.js';
import type { JobActions } from './job-actions.js';
import { deploymentKey } from './job-status.js';
import type { MetricsRecorder } from './metrics.js';

/** Who stores an automatic rollback (its history entry says so). */
export const ROLLBACK_BY = 'scheduler';
/** How an automatic rollback's change starts (`auto-rollback to version 3: ...`). */
export const AUTO_ROLLBACK = 'auto-rollback';

export interface RolloutPlan {
  /** Live tasks to stop now, and why (`scaled-down` or `updated`). */
  readonly stop: readonly { readonly task: Task; readonly reason: string }[];
  /** The deployment after this step; undefined: the job never had one. */
  readonly deployment: Deployment | undefined;
  /** Return the job to this version (an automatic rollback of a failed deployment). */
  readonly rollbackTo?: number;
  /** Judge again at this time even if nothing changes (an instance healthy long enough, the deadline). */
  readonly wakeAtMs?: number;
}

/** Whether the job's current version is an automatic rollback (one of those never rolls back again). */
export function isAutoRollback(job: Job): boolean {
  return job.versionBy === ROLLBACK_BY && (job.versionChange ?? '').startsWith(AUTO_ROLLBACK);
}

/** Since when a new-version instance has been healthy, or undefined while it is not. */
function healthySince(task: Task, hasCheck: boolean): number | undefined {
  if (task.state !== 'running') return undefined;
  if (hasCheck) return task.health === 'passing' ? task.healthSinceMs ?? task.startedAtMs : undefined;
  return task.startedAtMs > 0 ? task.startedAtMs : task.placedAtMs;
}

/**
 * One step of a job's rollout (see the file header), judged on `snapshot` at `nowMs`.
 * `previous`: the deployment as last written; `sent`: claims whose stop was sent but is not yet
 * in the snapshot (counted as stopped). Pure.
 */
export function planRollout(job: Job, snapshot: CellSnapshot, nowMs: number, previous: Deployment | undefined, sent: ReadonlySet<ClaimId> = new Set()): RolloutPlan {
  const { instances } = job.spec;
  const stop: { task: Task; reason: string }[] = [];
  const live = (t: Task): boolean => !isTerminal(t.state) && !sent.has(t.claimId);
  for (const task of snapshot.tasksOf(job.id)) if (task.index >= instances && live(task)) stop.push({ task, reason: SCALED_DOWN_REASON });
  const T = jobTaskVersion(job);
  if (job.spec.kind !== 'service' || (T <= 1 && previous === undefined)) return { stop, deployment: previous };
  if (previous !== undefined && previous.version === T && previous.state !== 'running') return { stop, deployment: previous };

  const strategy = resolveUpdateStrategy(job.spec);
  const hasCheck = job.spec.task.healthCheck !== undefined;
  const started: Deployment =
    previous !== undefined && previous.version === T
      ? previous
      : {
          version: T,
          state: 'running',
          healthy: 0,
          updated: 0,
          total: instances,
          reason: '',
          startedAtMs: nowMs,
          progressAtMs: nowMs,
          // A deployment that finished well (or none at all) vouches for the version before this one.
          lastGoodVersion: previous === undefined || previous.state === 'succeeded' ? Math.max(1, T - 1) : previous.lastGoodVersion,
        };

  let healthyNew = 0;
  let healthyOld = 0;
  let updated = 0;
  let wakeAtMs: number | undefined;
  const notReady: number[] = [];
  /** Instances at the new version not healthy (yet): the ones a failure names. */
  const notReadyNew: number[] = [];
  const outdatedDown: Task[] = [];
  const outdatedUp: Task[] = [];
  for (let index = 0; index < instances; index++) {
    const task = snapshot.task(taskId(job.id, index));
    const stopped = task === undefined || !live(task);
    if (task !== undefined && runsCurrentTask(job, task)) {
      updated++;
      const since = stopped ? undefined : healthySince(task, hasCheck);
      if (since !== undefined && nowMs - since >= strategy.minHealthyTimeMs) healthyNew++;
      else {
        notReady.push(index);
        notReadyNew.push(index);
        if (since !== undefined) wakeAtMs = Math.min(wakeAtMs ?? Infinity, since + strategy.minHealthyTimeMs);
      }
      continue;
    }
    notReady.push(index);
    if (stopped) continue;
    const up = task.state === 'running' && task.health !== 'failing';
    if (up) {
      healthyOld++;
      outdatedUp.push(task);
    } else outdatedDown.push(task);
  }

  const progressAtMs = healthyNew > started.healthy ? nowMs : started.progressAtMs;
  const counts = { healthy: healthyNew, updated, total: instances, progressAtMs };
  if (healthyNew === instances) {
    return { stop, deployment: { ...started, ...counts, state: 'succeeded', reason: '', lastGoodVersion: jobVersion(job) } };
  }
  const deadline = progressAtMs + strategy.healthyDeadlineMs;
  if (nowMs >= deadline) {
    const named = notReadyNew.length > 0 ? notReadyNew : notReady;
    const shown = named.slice(0, 5).join(', ') + (named.length > 5 ? ', ...' : '');
    const why = `instance${named.length === 1 ? '' : 's'} ${shown} not healthy within ${Math.round(strategy.healthyDeadlineMs / 1000)}s`;
    const target = started.lastGoodVersion;
    const rollback = strategy.autoRollback && !isAutoRollback(job) && target >= 1 && target !== jobVersion(job);
    return {
      stop,
      deployment: { ...started, ...counts, state: rollback ? 'rolled-back' : 'failed', reason: rollback ? `${why}; rolled back to version ${target}` : why },
      ...(rollback ? { rollbackTo: target } : {}),
    };
  }
  // Unavailable because of the update or for any other reason: the budget is what is left of maxUnavailable.
  const budget = strategy.maxUnavailable - (instances - healthyNew - healthyOld);
  // Instances already down cost nothing to replace; then healthy ones, within the budget.
  for (const task of outdatedDown) stop.push({ task, reason: UPDATED_REASON });
  for (const task of outdatedUp.slice(0, Math.max(0, budget))) stop.push({ task, reason: UPDATED_REASON });
  return { stop, deployment: { ...started, ...counts, state: 'running' }, wakeAtMs: Math.min(wakeAtMs ?? Infinity, deadline) };
}

export interface RolloutsContext {
  readonly cell: Cell;
  /** The instance's lease now; throws when it holds none (nothing is written then). */
  readonly lease: () => KvLease;
  readonly actions: JobActions;
  readonly recorder: MetricsRecorder;
  readonly logger: Logger;
}

/**
 * The owner's side of rollouts: plans a step for an owned job, sends its stops
 * (`Cell.updateTasks`, guarded by each task's revision and claim), writes the deployment with
 * the job's status, stores an automatic rollback, and says when to judge the job again.
 */
export class Rollouts {
  /** Claims whose stop was sent, per job, until the mirror shows them stopped. */
  private readonly sent = new Map<JobId, Set<ClaimId>>();
  /** When to judge a job again though nothing changed. */
  private readonly wakes = new Map<JobId, number>();
  constructor(private readonly ctx: RolloutsContext) {}

  /** Jobs whose wake time has come (they are forgotten here: the caller judges them). */
  due(nowMs: number): JobId[] {
    const out: JobId[] = [];
    for (const [id, at] of this.wakes) {
      if (at > nowMs) continue;
      out.push(id);
      this.wakes.delete(id);
    }
    return out;
  }

  /** The earliest wake time, if any. */
  nextWake(): number | undefined {
    let min: number | undefined;
    for (const at of this.wakes.values()) min = Math.min(min ?? Infinity, at);
    return min;
  }

  /** Forgets a job (released or lost). */
  forget(id: JobId): void {
    this.sent.delete(id);
    this.wakes.delete(id);
  }

  /** Forgets everything (the lease was lost: the book is rebuilt). */
  clear(): void {
    this.sent.clear();
    this.wakes.clear();
  }

  /** One step for an owned, running job. Returns the writes made. */
  async step(entry: OwnedJob, job: Job, snapshot: CellSnapshot, nowMs: number): Promise<number> {
    if (job.desired !== 'running') return 0;
    const sent = this.pruneSent(job, snapshot);
    const plan = planRollout(job, snapshot, nowMs, entry.deployment, sent);
    let writes = 0;
    if (plan.wakeAtMs !== undefined && Number.isFinite(plan.wakeAtMs)) this.wakes.set(job.id, plan.wakeAtMs);
    else this.wakes.delete(job.id);
    if (plan.stop.length > 0) {
      this.ctx.lease();
      const outcomes = await this.ctx.cell.updateTasks(plan.stop.map(({ task, reason }) => ({ task, patch: { state: 'killed' as const, reason, finishedAtMs: nowMs } })));
      const mine = this.sent.get(job.id) ?? new Set<ClaimId>();
      plan.stop.forEach(({ task, reason }, i) => {
        if (outcomes[i] !== 'updated') return;
        mine.add(task.claimId);
        if (reason === UPDATED_REASON) this.ctx.recorder.counts.tasksUpdated++;
        else this.ctx.recorder.counts.tasksScaledDown++;
      });
      this.sent.set(job.id, mine);
      writes++;
      this.ctx.logger.info({ jobId: job.id, tasks: plan.stop.length, reason: plan.stop[0]?.reason, version: jobVersion(job) }, 'tasks stopped for the job version');
    }
    const before = entry.deployment;
    entry.deployment = plan.deployment;
    if (before?.state !== plan.deployment?.state && plan.deployment !== undefined) {
      this.ctx.logger.info({ jobId: job.id, version: plan.deployment.version, state: plan.deployment.state, reason: plan.deployment.reason }, 'rolling update state changed');
    }
    // Only a change of the deployment is written here (with the status as last written).
    if (deploymentKey(before) !== deploymentKey(plan.deployment)) writes += await this.ctx.actions.writeStatus(entry, entry.lastWords);
    if (plan.rollbackTo !== undefined) {
      this.ctx.lease();
      const result = await this.ctx.cell.updateJob({ jobId: job.id, change: { kind: 'rollback', toVersion: plan.rollbackTo, why: AUTO_ROLLBACK }, by: ROLLBACK_BY, expectedVersion: jobVersion(job) });
      this.ctx.logger.warn({ jobId: job.id, to: plan.rollbackTo, outcome: result.kind }, 'rolling update failed; rolling back');
      writes++;
      if (result.kind === 'updated') this.ctx.recorder.counts.jobsRolledBack++;
      else if (entry.deployment !== undefined) {
        // Not rolled back after all (the job changed meanwhile, or the version is no longer kept): say so.
        const why = entry.deployment.reason.replace(/; rolled back to version \d+$/, '');
        entry.deployment = { ...entry.deployment, state: 'failed', reason: `${why}; not rolled back to version ${plan.rollbackTo} (${result.kind})` };
        writes += await this.ctx.actions.writeStatus(entry, entry.lastWords);
      }
    }
    return writes;
  }

  /** The job's sent stops that the snapshot does not show yet (the rest are forgotten). */
  private pruneSent(job: Job, snapshot: CellSnapshot): ReadonlySet<ClaimId> {
    const mine = this.sent.get(job.id);
    if (mine === undefined) return new Set();
    const pending = new Set<ClaimId>();
    for (const task of snapshot.tasksOf(job.id)) if (mine.has(task.claimId) && !isTerminal(task.state)) pending.add(task.claimId);
    if (pending.size === 0) this.sent.delete(job.id);
    else this.sent.set(job.id, pending);
    return pending;
  }
}
