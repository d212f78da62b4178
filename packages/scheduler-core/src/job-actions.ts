/**
 * JobActions: what an owning instance writes about one of its jobs, with the bookkeeping that
 * goes with it: its status (only when it would say something new), killing its live tasks,
 * letting it go once finished, backing off after an attempt that committed nothing, and
 * abandoning it (the status then says why). Used by the Scheduler only.
 */
import { isTerminal, type Cell, type CellSnapshot, type Job, type JobStatus, type KvLease } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { JobBook, OwnedJob } from './job-book.js';
import { NoLeaseError } from './lease-keeper.js';
import { deploymentKey, noFitReason, statusKey, tooLargeForEveryMachine, tooLargeReason, type FilterCount, type StatusWords } from './job-status.js';
import type { MetricsRecorder } from './metrics.js';
import type { Ownership } from './ownership.js';
import type { Random } from './random.js';
import type { SchedulerSettings } from './settings.js';
import { StatusWrites } from './status-writes.js';

export interface JobActionsContext {
  readonly cell: Cell;
  /**
   * The instance's lease now; throws when it holds none (see LeaseKeeper.current). Every write
   * here calls it first, so an owner writes nothing about its jobs once its lease is lost.
   */
  readonly lease: () => KvLease;
  readonly name: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly settings: SchedulerSettings;
  readonly book: JobBook;
  readonly ownership: Ownership;
  readonly recorder: MetricsRecorder;
  readonly logger: Logger;
}

export class JobActions {
  /** Statuses of many jobs judged at once go out in one transaction (status-writes.ts). */
  private readonly statusWrites: StatusWrites;

  constructor(private readonly ctx: JobActionsContext) {
    this.statusWrites = new StatusWrites(ctx.cell, ctx.clock);
  }

  /** Marks the job's non-terminal tasks killed (CAS-guarded per task). */
  async killTasks(job: Job, snapshot: CellSnapshot, now: number, reason: string): Promise<number> {
    const live = [...snapshot.tasksOf(job.id)].filter((t) => !isTerminal(t.state));
    if (live.length === 0) return 0;
    this.ctx.lease();
    await this.ctx.cell.updateTasks(live.map((task) => ({ task, patch: { state: 'killed', reason, finishedAtMs: now } })));
    return 1;
  }

  /**
   * Writes the final status and lets the job go. A new status and the release are one
   * transaction (one round trip, one revision for every watcher); when it fails the job stays
   * in the book, and the retry writes both again.
   */
  async finish(entry: OwnedJob, words: StatusWords): Promise<number> {
    const key = statusKey(words) + deploymentKey(entry.deployment);
    if (key === entry.lastStatusKey) {
      await this.release(entry);
      return 1;
    }
    await this.statusWrites.put(this.statusRecord(entry, words), this.ctx.lease());
    entry.lastStatusKey = key;
    entry.lastWords = words;
    this.forget(entry);
    return 2;
  }

  /** Forgets the job and deletes its owner record (if this lease still holds it). */
  async release(entry: OwnedJob): Promise<void> {
    this.forget(entry);
    try {
      await this.ctx.cell.releaseOwnership(entry.id, this.ctx.lease());
    } catch (error) {
      // The job is out of the book already; its record would stay until the lease ends.
      if (!(error instanceof NoLeaseError)) this.ctx.ownership.noteReleaseFailed(entry.id);
      throw error;
    }
  }

  /** Writes a status unless it would say what the last one said. Returns writes made (0 or 1). */
  async writeStatus(entry: OwnedJob, words: StatusWords): Promise<number> {
    const key = statusKey(words) + deploymentKey(entry.deployment);
    if (key === entry.lastStatusKey) return 0;
    this.ctx.lease();
    await this.statusWrites.put(this.statusRecord(entry, words));
    entry.lastStatusKey = key;
    entry.lastWords = words;
    return 1;
  }

  /** Takes the job out of the book (its owner record is the caller's to delete). */
  private forget(entry: OwnedJob): void {
    if (entry.needsPlacement && !entry.abandoned) this.ctx.ownership.noteRoomFreed();
    this.ctx.book.disown(entry.id);
  }

  /** The status record `words` make for the job now. */
  private statusRecord(entry: OwnedJob, words: StatusWords): Omit<JobStatus, 'revision'> {
    return {
      jobId: entry.id,
      state: words.state,
      reason: words.reason,
      ruledOut: words.ruledOut,
      attempts: entry.attempts,
      scheduler: this.ctx.name,
      updatedAtMs: this.ctx.clock.now(),
      firstAttemptAtMs: entry.firstAttemptAtMs,
      fullyPlacedAtMs: entry.fullyPlacedAtMs,
      // A rolling update's progress goes with every status its owner writes.
      ...(entry.deployment === undefined ? {} : { deployment: entry.deployment }),
    };
  }

  /** Nothing could be committed because nothing (or not the whole gang) fit. Returns whether the job was abandoned. */
  async noFit(
    entry: OwnedJob,
    job: Job,
    snapshot: CellSnapshot,
    toPlace: number,
    claimed: number,
    gang: boolean,
    ruledOut: FilterCount[],
    offered: number,
  ): Promise<boolean> {
    const tooLarge = claimed === 0 ? tooLargeForEveryMachine(snapshot, job.spec.task.resources) : undefined;
    if (tooLarge !== undefined) {
      // No retry can help: no machine of the cell is large enough for one task, even empty.
      return this.abandon(entry, tooLargeReason(tooLarge), tooLarge, true);
    }
    const reason = noFitReason(toPlace, claimed, gang, ruledOut, offered);
    const abandoned = await this.noProgress(entry, reason, ruledOut);
    if (!abandoned) await this.writeStatus(entry, { state: 'unschedulable', reason, ruledOut });
    return abandoned;
  }

  /** An attempt committed nothing: back off (doubling, jittered) or give up. Returns whether abandoned. */
  async noProgress(entry: OwnedJob, reason: string, ruledOut: FilterCount[]): Promise<boolean> {
    entry.attemptsWithoutProgress++;
    if (entry.attemptsWithoutProgress >= this.ctx.settings.maxAttemptsWithoutProgress || entry.attempts >= this.ctx.settings.maxAttempts) {
      return this.abandon(entry, reason, ruledOut);
    }
    const { retryBackoffInitialMs: initial, retryBackoffMaxMs: max } = this.ctx.settings;
    const delay = Math.min(max, initial * 2 ** (entry.attemptsWithoutProgress - 1));
    // Jitter so instances that conflicted with each other do not retry in lockstep.
    entry.retryAtMs = entry.readyAtMs = this.ctx.clock.now() + delay * (0.5 + 0.5 * this.ctx.random.next());
    return false;
  }

  /** Gives up on a job: its status says why. With `abandonedRetryMs`, it is tried again later. */
  async abandon(entry: OwnedJob, reason: string, ruledOut: readonly FilterCount[], hopeless = false): Promise<true> {
    this.ctx.recorder.counts.jobsAbandoned++;
    const why = hopeless ? reason : `abandoned after ${entry.attempts} attempts (${entry.attemptsWithoutProgress} without progress): ${reason}`;
    this.ctx.logger.info({ jobId: entry.id, attempts: entry.attempts, reason: why }, 'job abandoned');
    await this.writeStatus(entry, { state: 'unschedulable', reason: why, ruledOut });
    if (this.ctx.settings.abandonedRetryMs > 0) {
      entry.attempts = 0;
      entry.attemptsWithoutProgress = 0;
      entry.retryAtMs = entry.readyAtMs = this.ctx.clock.now() + this.ctx.settings.abandonedRetryMs;
    } else {
      entry.abandoned = true;
      this.ctx.ownership.noteRoomFreed();
    }
    return true;
  }
}
