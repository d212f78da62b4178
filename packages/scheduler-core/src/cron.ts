/**
 * Cron jobs: the owner of a job with a `schedule` never places it; at each time its schedule
 * names, it makes a run, a batch job of its own (`<template>-r<unix seconds>`, cell-state's
 * cron-schedule.ts), then notes the time in the template's status.
 *
 * ```
 *   owned template ──► times since status.cron.lastScheduledAtMs (or since it was submitted)
 *                  ──► older than the starting deadline: skipped, counted
 *                  ──► each due time: concurrency
 *                        allow   create the run
 *                        forbid  a run of it has not ended: skipped, counted
 *                        replace the runs that have not ended are killed, then create
 *                  ──► status: cron {lastScheduledAtMs, runs, skipped, nextAtMs}, reason "next run at ..."
 *   the loop wakes at the earliest next time of its templates
 * ```
 *
 * Exactly one run per scheduled time, whoever owns the template and however it fails: the run is
 * created by Cell.submitJob with an id and a request id made from the scheduled time, so a
 * second create of the same time (the owner was killed after creating the run but before its
 * status noted it, or a lost reply) finds the first and creates nothing. Runs are admitted like
 * any submit (the namespace's quota): a refused one is skipped and counted, with the reason.
 */
import {
  RequestIdReusedError,
  cronRunId,
  cronRunRequestId,
  cronRunSpec,
  describeExcess,
  dueTimes,
  isTerminal,
  type Cell,
  type CellSnapshot,
  type CronState,
  type Job,
  type JobId,
  type JobStatus,
} from '@omega/cell-state';
import type { Logger } from 'pino';

export interface CronContext {
  readonly cell: Cell;
  readonly name: string;
  readonly logger: Logger;
  /** Throws when the instance's lease is gone (no write may start then). */
  readonly lease: () => void;
  /** A snapshot at `revision` or later (for the quota check of a run's admission). */
  readonly snapshotAtLeast: (revision: number) => Promise<CellSnapshot>;
}

/** What one step did: writes made, runs created, times skipped. */
export interface CronStep {
  readonly writes: number;
  readonly created: number;
  readonly skipped: number;
}

/** Whether a run has ended: its owner said so, or it was killed and nothing of it is live. */
function runEnded(snapshot: CellSnapshot, run: Job): boolean {
  const state = snapshot.status(run.id)?.state;
  if (state === 'succeeded' || state === 'failed' || state === 'killed') return true;
  if (run.desired !== 'killed') return false;
  for (const task of snapshot.tasksOf(run.id)) if (!isTerminal(task.state)) return false;
  return true;
}

/** The runs of `template` that have not ended. O(jobs): looked at only when a time is due. */
function liveRuns(snapshot: CellSnapshot, template: JobId): Job[] {
  const out: Job[] = [];
  for (const job of snapshot.jobs()) if (job.cronRun?.templateId === template && !runEnded(snapshot, job)) out.push(job);
  return out;
}

export class CronRunner {
  /** Templates this instance owns, and the next time each is due (Infinity: none ahead). */
  private readonly due = new Map<JobId, number>();

  constructor(private readonly ctx: CronContext) {}

  /** Notes an owned template (from the loop's assessment); it is looked at now. */
  noteTemplate(id: JobId): void {
    this.due.set(id, 0);
  }

  /** Forgets a template (released, killed, deleted). */
  forget(id: JobId): void {
    this.due.delete(id);
  }

  /** The earliest time a template of ours is due, if any. */
  nextWake(): number | undefined {
    let next: number | undefined;
    for (const at of this.due.values()) if (Number.isFinite(at)) next = Math.min(next ?? Infinity, at);
    return next;
  }

  /** Handles every template due at `nowMs`; `owns` says whether a job is still ours. */
  async step(snapshot: CellSnapshot, nowMs: number, owns: (id: JobId) => boolean): Promise<CronStep> {
    let writes = 0;
    let created = 0;
    let skipped = 0;
    for (const [id, at] of [...this.due]) {
      if (at > nowMs) continue;
      const job = snapshot.job(id);
      if (job === undefined || job.spec.schedule === undefined || job.desired !== 'running' || !owns(id)) {
        this.due.delete(id);
        continue;
      }
      const outcome = await this.stepOne(snapshot, job, snapshot.status(id), nowMs);
      writes += outcome.writes;
      created += outcome.created;
      skipped += outcome.skipped;
    }
    return { writes, created, skipped };
  }

  private async stepOne(snapshot: CellSnapshot, job: Job, status: JobStatus | undefined, nowMs: number): Promise<CronStep> {
    const schedule = job.spec.schedule;
    if (schedule === undefined) return { writes: 0, created: 0, skipped: 0 };
    const previous: CronState = status?.cron ?? { lastScheduledAtMs: 0, runs: 0, skipped: 0, lastSkipReason: '', nextAtMs: 0 };
    const since = previous.lastScheduledAtMs > 0 ? previous.lastScheduledAtMs : job.submittedAtMs;
    const due = dueTimes(schedule, since, nowMs);
    let writes = 0;
    let created = 0;
    let skipped = due.skipped;
    let lastSkipReason = due.skipped > 0 ? `${due.skipped} time(s) missed by more than the starting deadline` : previous.lastSkipReason;
    // The latest time done with: the times skipped for the deadline come before every due one.
    let handled = due.run.length === 0 ? due.lastMs : (due.run[0] as number) - 1;
    for (const at of due.run) {
      const live = liveRuns(snapshot, job.id).filter((run) => run.cronRun?.scheduledAtMs !== at);
      if (schedule.concurrency === 'forbid' && live.length > 0) {
        skipped++;
        lastSkipReason = `${new Date(at).toISOString()}: run ${live[0]?.id ?? ''} has not ended (concurrency forbid)`;
        handled = at;
        continue;
      }
      if (schedule.concurrency === 'replace') {
        for (const run of live) {
          this.ctx.lease();
          await this.ctx.cell.setJobDesired(run.id, 'killed');
          writes++;
          this.ctx.logger.info({ jobId: job.id, run: run.id }, 'cron run replaced by the next one');
        }
      }
      const made = await this.createRun(job, at, nowMs);
      writes++;
      if (made.kind === 'created') created++;
      else if (made.kind === 'refused') {
        skipped++;
        lastSkipReason = `${new Date(at).toISOString()}: ${made.reason}`;
      } else break; // contended: this time is tried again at the next step
      handled = at;
    }
    const nextAtMs = due.nextMs ?? 0;
    const cron: CronState = { lastScheduledAtMs: handled, runs: previous.runs + created, skipped: previous.skipped + skipped, lastSkipReason, nextAtMs };
    const changed = JSON.stringify(cron) !== JSON.stringify(status?.cron);
    if (changed) {
      this.ctx.lease();
      await this.ctx.cell.putJobStatus({
        jobId: job.id,
        state: 'scheduled',
        reason: nextAtMs > 0 ? `next run at ${new Date(nextAtMs).toISOString()}` : 'the schedule names no future time',
        ruledOut: [],
        attempts: 0,
        scheduler: this.ctx.name,
        updatedAtMs: nowMs,
        firstAttemptAtMs: status?.firstAttemptAtMs ?? 0,
        fullyPlacedAtMs: status?.fullyPlacedAtMs ?? 0,
        cron,
      });
      writes++;
    }
    // Contended (a time left undone): look again soon; otherwise at the next time.
    this.due.set(job.id, handled < due.lastMs ? nowMs + 1_000 : nextAtMs > 0 ? nextAtMs : Infinity);
    return { writes, created, skipped };
  }

  /** Creates the run of `job` at `at`: at most once per scheduled time, whoever asks. */
  private async createRun(job: Job, at: number, nowMs: number): Promise<{ kind: 'created' | 'existed' | 'contended' } | { kind: 'refused'; reason: string }> {
    this.ctx.lease();
    try {
      const result = await this.ctx.cell.submitJob(
        { id: cronRunId(job.id, at), spec: cronRunSpec(job.spec), requestId: cronRunRequestId(job.id, at), submittedAtMs: nowMs, cronRun: { templateId: job.id, scheduledAtMs: at } },
        { snapshotAtLeast: this.ctx.snapshotAtLeast },
      );
      switch (result.kind) {
        case 'admitted':
          if (result.created) this.ctx.logger.info({ jobId: job.id, run: result.job.id, scheduledAt: new Date(at).toISOString() }, 'cron run created');
          return { kind: result.created ? 'created' : 'existed' };
        case 'over-quota':
          return { kind: 'refused', reason: describeExcess(result.excess) };
        case 'unknown-namespace':
          return { kind: 'refused', reason: `namespace ${JSON.stringify(result.namespace)} does not exist` };
        case 'contended':
          return { kind: 'contended' };
      }
    } catch (error) {
      // The template's spec changed since this time's run was made: that run exists.
      if (error instanceof RequestIdReusedError) return { kind: 'existed' };
      throw error;
    }
  }
}
