/**
 * The janitor: deletes finished jobs once their retention has passed, so a cell that has run a
 * million jobs holds no more than its retention asks for. Every live scheduler instance runs one
 * in its maintenance step; they share the work without talking to each other:
 *
 * ```
 *  scan (every scanIntervalMs): finished job (succeeded / failed / killed), nobody owns it,
 *        rendezvous over ALL live instances says it is mine, its final status written
 *        at least `retention` ago (the job's own, else the cell's --job-retention)
 *          └─► queue ──► at most maxDeletionsPerStep per step ──► Cell.deleteJob (guarded)
 *  every scanIntervalMs(requestRetentionMs), on the instance that rendezvous assigns the key
 *        "request-retention":
 *        Cell.deleteExpiredRequests(now, requestRetentionMs)
 * ```
 *
 * When a job finished: the time its terminal status was written (`JobStatus.updatedAtMs`; the
 * owner writes the final status once, then releases the job). A job is deleted within its
 * retention plus one scan interval.
 *
 * Exactly once: `Cell.deleteJob` compares the job's and the status's mod_revisions with what the
 * scan saw, so two instances that both think a job is theirs (views of membership differ for a
 * moment) delete it once, and a job killed or rewritten meanwhile is kept. Bounded work: one
 * scan is O(jobs) and runs at most every `scanIntervalMs`; deletions per step are capped so
 * placement is never starved. Counted in the metrics (`jobsDeleted`, `requestsDeleted`), never
 * logged per job above debug.
 *
 * Off when `jobRetentionMs` is 0 (the library's default: the simulator and unit tests delete
 * nothing unless asked); the scheduler processes turn it on (`--job-retention`, default 24 h).
 */
import type { Cell, CellSnapshot, JobId, MachineId } from '@omega/cell-state';
import { parseTaskId } from '@omega/cell-state';
import type { Logger } from 'pino';
import { isFinished } from './job-status.js';
import type { MetricsRecorder } from './metrics.js';
import { liveMembers, rendezvousOwner } from './rendezvous.js';
import type { SchedulerSettings } from './settings.js';

/** The key whose rendezvous owner sweeps expired request records. */
export const REQUEST_SWEEP_KEY = 'request-retention';

export interface JanitorContext {
  readonly cell: Cell;
  readonly name: string;
  readonly settings: Pick<SchedulerSettings, 'jobRetentionMs' | 'requestRetentionMs' | 'maxDeletionsPerStep'>;
  readonly recorder: MetricsRecorder;
  readonly logger: Logger;
}

/** One finished job as the scan saw it. */
interface DueJob {
  readonly jobId: JobId;
  readonly jobRevision: number;
  readonly statusRevision: number;
}

/**
 * How often the janitor scans for finished jobs (or sweeps request records): a tenth of the
 * retention, between 1 s and 60 s (a record is deleted at most that late; a scan is O(records)).
 */
export function scanIntervalMs(jobRetentionMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(jobRetentionMs / 10)));
}

export class Janitor {
  private queue: DueJob[] = [];
  private nextScanAtMs = 0;
  private nextRequestSweepAtMs = 0;

  constructor(private readonly ctx: JanitorContext) {}

  /**
   * One maintenance step's share: a scan when due, then at most `maxDeletionsPerStep` deletions,
   * and the request sweep when due. Returns the writes made (deletions that happened). Store
   * errors propagate to the loop (which retries later); the queue keeps what was not done.
   */
  async step(snapshot: CellSnapshot, now: number): Promise<number> {
    const { jobRetentionMs, requestRetentionMs } = this.ctx.settings;
    let writes = 0;
    if (jobRetentionMs > 0) {
      if (this.queue.length === 0 && now >= this.nextScanAtMs) this.scan(snapshot, now);
      writes += await this.deleteSome(snapshot);
    }
    if (requestRetentionMs > 0 && now >= this.nextRequestSweepAtMs) {
      // A sweep pages through every request record: as often as a job scan for that retention.
      this.nextRequestSweepAtMs = now + scanIntervalMs(requestRetentionMs);
      if (rendezvousOwner(REQUEST_SWEEP_KEY, liveMembers(snapshot, this.ctx.name, undefined)) === this.ctx.name) {
        const deleted = await this.ctx.cell.deleteExpiredRequests(now, requestRetentionMs);
        this.ctx.recorder.counts.requestsDeleted += deleted;
        if (deleted > 0) this.ctx.logger.debug({ requests: deleted }, 'expired request records deleted');
        writes += deleted > 0 ? 1 : 0;
      }
    }
    return writes;
  }

  /** Finds the finished jobs that are this instance's to delete now. */
  private scan(snapshot: CellSnapshot, now: number): void {
    const { name, settings } = this.ctx;
    this.nextScanAtMs = now + scanIntervalMs(settings.jobRetentionMs);
    let members: string[] | undefined;
    for (const job of snapshot.jobs()) {
      const status = snapshot.status(job.id);
      if (status === undefined || !isFinished(status.state) || snapshot.owner(job.id) !== undefined) continue;
      const retention = job.spec.retentionMs !== undefined && job.spec.retentionMs > 0 ? job.spec.retentionMs : settings.jobRetentionMs;
      if (status.updatedAtMs + retention > now) continue;
      members ??= liveMembers(snapshot, name, undefined);
      if (rendezvousOwner(job.id, members) !== name) continue;
      this.queue.push({ jobId: job.id, jobRevision: job.revision, statusRevision: status.revision });
    }
  }

  private async deleteSome(snapshot: CellSnapshot): Promise<number> {
    if (this.queue.length === 0) return 0;
    const batch = this.queue.slice(0, this.ctx.settings.maxDeletionsPerStep);
    const machines = claimMachines(snapshot, new Set(batch.map((d) => d.jobId)));
    let deleted = 0;
    let skipped = 0;
    for (const due of batch) {
      const result = await this.ctx.cell.deleteJob({ ...due, machines: machines.get(due.jobId) ?? [] });
      // Taken off the queue only once done: after a store error the rest is tried again.
      this.queue.shift();
      if (result.outcome === 'deleted') {
        deleted++;
        this.ctx.recorder.counts.jobsDeleted++;
      } else skipped++;
    }
    this.ctx.logger.debug({ deleted, skipped, queued: this.queue.length }, 'finished jobs deleted');
    return deleted;
  }
}

/** For each of `jobs`, the machines whose records hold a claim of one of its tasks (one pass over the claims). */
function claimMachines(snapshot: CellSnapshot, jobs: ReadonlySet<JobId>): Map<JobId, MachineId[]> {
  const out = new Map<JobId, MachineId[]>();
  for (const machine of snapshot.machines()) {
    for (const claim of machine.claims) {
      const job = parseTaskId(claim.taskId)?.jobId;
      if (job === undefined || !jobs.has(job)) continue;
      const list = out.get(job) ?? [];
      if (list[list.length - 1] !== machine.id) list.push(machine.id);
      out.set(job, list);
    }
  }
  return out;
}
