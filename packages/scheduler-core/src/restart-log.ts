/**
 * RestartLog: when this scheduler instance committed the restarts of its jobs over the last
 * minute, so the restart rate cap (`throttleRestarts` in job-progress.ts) can hold a crash loop
 * back. Private to one Scheduler; nothing here touches the store.
 *
 * ```
 *   attempt ─► assessJob ─► log.throttle(job, snapshot, progress) ─► place what is left
 *                                                   commit ─► log.note(job, committed restarts)
 * ```
 *
 * Why memory and not the store: a task record shows only its latest placement, so a task that
 * restarted ten times in a minute shows one. What the store does show seeds a job's log the first
 * time the job restarts under this instance (a job taken over from a crashed instance starts
 * with one restart per task placed again in the last minute, a lower bound); after that this
 * instance's own commits are counted exactly. Memory: one timestamp per restart of the last
 * minute, per job that restarted in the last two minutes (older entries are swept).
 */
import type { CellSnapshot, Job, JobId } from '@omega/cell-state';
import { RESTART_RATE_WINDOW_MS, restartRateCap, throttleRestarts, type JobProgress } from './job-progress.js';

export class RestartLog {
  private readonly byJob = new Map<JobId, number[]>();
  private nextSweepAtMs = 0;

  /** @param maxRestartsPerJobPerMinute the scheduler setting (see {@link restartRateCap}). */
  constructor(private readonly maxRestartsPerJobPerMinute: number) {}

  /**
   * `progress` (just judged by `assessJob` at `nowMs`) with the restarts over the job's cap taken
   * out of `toPlace` and `throttled` set (see `throttleRestarts`); `progress` itself when none is
   * held or none is due.
   */
  throttle(job: Job, snapshot: CellSnapshot, progress: JobProgress, nowMs: number): JobProgress {
    if (progress.restarting.size === 0) return progress;
    const cap = restartRateCap(job.spec.instances, this.maxRestartsPerJobPerMinute);
    return throttleRestarts(progress, this.recent(job, snapshot, nowMs), cap, nowMs);
  }

  /** Records `count` restarts of `jobId` committed at `nowMs`. */
  note(jobId: JobId, count: number, nowMs: number): void {
    if (count <= 0) return;
    const times = this.byJob.get(jobId) ?? [];
    for (let i = 0; i < count; i++) times.push(nowMs);
    this.byJob.set(jobId, times);
    this.sweep(nowMs);
  }

  /** Jobs with a log (for tests of the memory bound). */
  get size(): number {
    return this.byJob.size;
  }

  private recent(job: Job, snapshot: CellSnapshot, nowMs: number): number[] {
    const windowStart = nowMs - RESTART_RATE_WINDOW_MS;
    let times = this.byJob.get(job.id);
    if (times === undefined) {
      times = [];
      for (const task of snapshot.tasksOf(job.id)) if (task.restarts > 0 && task.placedAtMs > windowStart) times.push(task.placedAtMs);
      this.byJob.set(job.id, times);
    }
    const kept = times.filter((t) => t > windowStart);
    this.byJob.set(job.id, kept);
    this.sweep(nowMs);
    return kept;
  }

  /** Once a window: forgets jobs with no restart in the last window (finished, disowned, calm). */
  private sweep(nowMs: number): void {
    if (nowMs < this.nextSweepAtMs) return;
    this.nextSweepAtMs = nowMs + RESTART_RATE_WINDOW_MS;
    const windowStart = nowMs - RESTART_RATE_WINDOW_MS;
    for (const [id, times] of this.byJob) if (!times.some((t) => t > windowStart)) this.byJob.delete(id);
  }
}
