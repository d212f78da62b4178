/**
 * The JobBook: one scheduler instance's private bookkeeping of jobs. Two parts:
 * - **owned** jobs (this instance holds `owners/<job>` under its lease): attempt counters,
 *   backoff, when the job may next be tried, what its status last said;
 * - **candidates**: unowned jobs this instance may take, with when it first saw them unowned
 *   (for the ownership grace).
 *
 * Nothing here touches the store; the Scheduler decides and writes.
 *
 * Order of attempts: jobs that are new or whose last attempt committed something come first;
 * jobs backing off after an attempt that committed nothing come after them. Within each group:
 * higher `priority` first, then earlier `submittedAtMs`, then job id (so every run orders the
 * same way). Why two groups: with strict priority, a few high-priority jobs that do not fit,
 * each retried every second with a think time, keep an instance busy forever and starve every
 * lower-priority job of even a first attempt (the integration test met exactly that); a job that
 * cannot make progress yields to those that might.
 */
import type { Deployment, Job, JobId, JobStatus } from '@omega/cell-state';
import { storedStatusKey, type StatusWords } from './job-status.js';

/** An owned job's bookkeeping. Mutable, private to one Scheduler. */
export interface OwnedJob {
  readonly id: JobId;
  priority: number;
  submittedAtMs: number;
  /** The mirror has shown our owner record (until then, an absent record is just lag). */
  confirmed: boolean;
  /** Some task needs placing now or after a restart backoff. */
  needsPlacement: boolean;
  /** Not to be attempted before this clock time (retry or restart backoff). */
  readyAtMs: number;
  /** Not before this because of the retry backoff (kept apart from restart times). */
  retryAtMs: number;
  attempts: number;
  attemptsWithoutProgress: number;
  /** Given up: never attempted again by this instance (status says why). */
  abandoned: boolean;
  firstAttemptAtMs: number;
  fullyPlacedAtMs: number;
  /** `statusKey` of the last status written (or found) for the job. */
  lastStatusKey: string;
  /** What the last status written (or found) said, so a rolling update's progress can be written with it. */
  lastWords: StatusWords;
  /** The job's rolling update as this owner (or its predecessor's status) last saw it; written with every status. */
  deployment: Deployment | undefined;
}

/** An unowned job this instance may take. */
export interface Candidate {
  readonly id: JobId;
  readonly priority: number;
  readonly submittedAtMs: number;
  readonly firstSeenMs: number;
  /** The job's kind is neither batch nor service: any scheduler kind may take it (to fail it). */
  readonly anyKind: boolean;
}

/** Priority order: higher priority, then older, then smaller id. */
export function byPriorityThenAge(a: { priority: number; submittedAtMs: number; id: string }, b: { priority: number; submittedAtMs: number; id: string }): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.submittedAtMs !== b.submittedAtMs) return a.submittedAtMs - b.submittedAtMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Attempt order: not stalled before stalled (no progress at the last attempt), then priority and age. */
function byAttemptOrder(a: OwnedJob, b: OwnedJob): number {
  const stalledA = a.attemptsWithoutProgress > 0 ? 1 : 0;
  const stalledB = b.attemptsWithoutProgress > 0 ? 1 : 0;
  return stalledA - stalledB || byPriorityThenAge(a, b);
}

export class JobBook {
  private readonly owned = new Map<JobId, OwnedJob>();
  private readonly candidateMap = new Map<JobId, Candidate>();

  get ownedCount(): number {
    return this.owned.size;
  }

  /** Owned jobs waiting for placement and not abandoned: what `maxQueuedJobs` bounds. */
  get queuedCount(): number {
    let n = 0;
    for (const job of this.owned.values()) if (job.needsPlacement && !job.abandoned) n++;
    return n;
  }

  get(id: JobId): OwnedJob | undefined {
    return this.owned.get(id);
  }

  ownedIds(): JobId[] {
    return [...this.owned.keys()];
  }

  /** Starts the book of a job just acquired; carries over what a previous owner's status said. */
  own(job: Job, status: JobStatus | undefined, nowMs: number): OwnedJob {
    this.candidateMap.delete(job.id);
    const entry: OwnedJob = {
      id: job.id,
      priority: job.spec.priority,
      submittedAtMs: job.submittedAtMs,
      confirmed: false,
      needsPlacement: true,
      readyAtMs: nowMs,
      retryAtMs: nowMs,
      attempts: 0,
      attemptsWithoutProgress: 0,
      abandoned: false,
      firstAttemptAtMs: status?.firstAttemptAtMs ?? 0,
      fullyPlacedAtMs: status?.fullyPlacedAtMs ?? 0,
      lastStatusKey: storedStatusKey(status),
      lastWords: status === undefined ? { state: 'pending', reason: '', ruledOut: [] } : { state: status.state, reason: status.reason, ruledOut: status.ruledOut },
      deployment: status?.deployment,
    };
    this.owned.set(job.id, entry);
    return entry;
  }

  disown(id: JobId): void {
    this.owned.delete(id);
  }

  /** Forgets every owned job (the lease is gone: the store no longer says they are ours). */
  disownAll(): void {
    this.owned.clear();
  }

  /** Forgets everything, owned jobs and candidates: the book is rebuilt from a fresh view of the cell. */
  clear(): void {
    this.owned.clear();
    this.candidateMap.clear();
  }

  /** The owned job to attempt now: ready, needing placement, not abandoned, first in attempt order (see above). */
  next(nowMs: number): OwnedJob | undefined {
    let best: OwnedJob | undefined;
    for (const job of this.owned.values()) {
      if (!job.needsPlacement || job.abandoned || job.readyAtMs > nowMs) continue;
      if (best === undefined || byAttemptOrder(job, best) < 0) best = job;
    }
    return best;
  }

  /**
   * Up to `limit` owned jobs to attempt now, in attempt order (the first is {@link next}'s).
   * What a multi-job attempt chooses from.
   */
  ready(nowMs: number, limit: number): OwnedJob[] {
    if (limit <= 1) {
      const first = this.next(nowMs);
      return first === undefined ? [] : [first];
    }
    const ready: OwnedJob[] = [];
    for (const job of this.owned.values()) if (job.needsPlacement && !job.abandoned && job.readyAtMs <= nowMs) ready.push(job);
    return ready.sort(byAttemptOrder).slice(0, limit);
  }

  /** The earliest future time an owned job becomes ready; undefined when none waits. */
  nextReadyAt(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const job of this.owned.values()) {
      if (job.needsPlacement && !job.abandoned && job.readyAtMs > nowMs) next = Math.min(next ?? Infinity, job.readyAtMs);
    }
    return next;
  }

  // ---- candidates -------------------------------------------------------------------------

  get candidateCount(): number {
    return this.candidateMap.size;
  }

  /** Notes an unowned job; keeps the first time it was seen unowned. Returns whether it is new. */
  addCandidate(job: Job, anyKind: boolean, nowMs: number): boolean {
    if (this.candidateMap.has(job.id)) return false;
    this.candidateMap.set(job.id, { id: job.id, priority: job.spec.priority, submittedAtMs: job.submittedAtMs, firstSeenMs: nowMs, anyKind });
    return true;
  }

  dropCandidate(id: JobId): void {
    this.candidateMap.delete(id);
  }

  /** Puts back a candidate taken out for an acquisition that failed (unless the job is owned or known again). */
  restoreCandidate(candidate: Candidate): void {
    if (!this.owned.has(candidate.id) && !this.candidateMap.has(candidate.id)) this.candidateMap.set(candidate.id, candidate);
  }

  /** Candidates in priority order. */
  candidates(): Candidate[] {
    return [...this.candidateMap.values()].sort(byPriorityThenAge);
  }
}
