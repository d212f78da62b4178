/**
 * Ownership: which jobs one scheduler instance works on. Keeps the JobBook in step with the
 * `owners/<job>` records its mirror shows, and takes unowned jobs:
 * - at once when rendezvous hashing over the live instances of the job's kind assigns them to it;
 * - any other after it has seen the job unowned for `ownershipGraceMs` (the assignee may be
 *   busy, or dead with its lease not yet expired);
 * - highest priority first, and only while fewer than `maxQueuedJobs` of its jobs wait for
 *   placement, so a busy instance leaves work to the others.
 *
 * Taking a job is `cell.acquireOwnerships` (every job a pass takes, in one request), a
 * create-if-absent per job bound to the instance's lease: two
 * instances never both own a job, whatever their views. Losing one is noticed here: when the
 * mirror shows the job's owner record gone or held by another lease, the book forgets the job.
 *
 * The lease is read through `ctx.lease()` at each use, never kept: after a lost lease is granted
 * again, records under the old one are someone else's (they vanish with it), and a pass that was
 * under way when the lease was lost stops at its next write (the accessor throws).
 *
 * A store error never strands a job: an acquisition that failed keeps the job a candidate (it may
 * not change again to be noticed), and if the create applied after all (reply lost) the mirror
 * shows our record and the job is adopted; a release that failed is retried at the next pass.
 */
import type { Cell, CellSnapshot, Job, JobId, KvLease } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { Candidate, JobBook } from './job-book.js';
import { isFinished } from './job-status.js';
import type { MetricsRecorder } from './metrics.js';
import { liveMembers, rendezvousOwner } from './rendezvous.js';
import type { SchedulerSettings } from './settings.js';

export interface OwnershipContext {
  readonly cell: Cell;
  /** The instance's lease now; throws when it holds none (see LeaseKeeper.current). */
  readonly lease: () => KvLease;
  readonly name: string;
  /** The policy's kind: written on owner records; names this instance's kind in membership. */
  readonly kind: 'batch' | 'service';
  /** Kinds of the jobs this instance takes (jobs of no valid kind are candidates too). */
  readonly jobKinds: readonly string[];
  readonly settings: Pick<SchedulerSettings, 'ownershipGraceMs' | 'maxQueuedJobs'>;
  readonly book: JobBook;
  readonly recorder: MetricsRecorder;
  readonly logger: Logger;
}

export class Ownership {
  /** The live instance set may have changed: recompute who is assigned what. */
  private membershipChanged = true;
  /** Something that may let a pass take a job changed (a candidate appeared, queue room freed). */
  private dirty = 0;
  /** When the earliest grace of a candidate hashed to another instance runs out. */
  private nextGraceAtMs: number | undefined;
  /** Acquisitions that failed with an error: whether they applied is known when the mirror shows the owner. */
  private readonly uncertain = new Set<JobId>();
  /** Records under our lease that a failed release left behind: released again at the next pass. */
  private readonly stray = new Set<JobId>();

  constructor(private readonly ctx: OwnershipContext) {}

  /** Forgets what passes learned (the book was cleared after a lost lease): the next pass looks at everything. */
  reset(): void {
    this.membershipChanged = true;
    this.dirty = 0;
    this.nextGraceAtMs = undefined;
    this.uncertain.clear();
    this.stray.clear();
  }

  /** A release of our record failed (store error): it is retried at the next pass. */
  noteReleaseFailed(id: JobId): void {
    this.stray.add(id);
  }

  /** The `schedulers/` records changed (an instance came or went). */
  noteMembershipChanged(): void {
    this.membershipChanged = true;
  }

  /** An owned job stopped waiting for placement: there may be room to take another. */
  noteRoomFreed(): void {
    this.dirty++;
  }

  /** The next time a grace runs out, when there is room to act on it. */
  nextWake(): number | undefined {
    return this.ctx.book.queuedCount < this.ctx.settings.maxQueuedJobs ? this.nextGraceAtMs : undefined;
  }

  /**
   * Updates the book for a job the mirror changed. Returns true when the job is ours and should
   * be judged again; otherwise notes it as a candidate or forgets it.
   */
  reconcile(id: JobId, snapshot: CellSnapshot, now: number): boolean {
    const { book, name } = this.ctx;
    const job = snapshot.job(id);
    const owner = snapshot.owner(id);
    const mine = owner !== undefined && owner.lease === this.ctx.lease().id && owner.scheduler === name;
    const entry = book.get(id);
    if (entry !== undefined) {
      if (mine) entry.confirmed = true;
      // Until the mirror has shown our record once, its absence is only lag; after, it means our
      // lease ended. A record under another lease means someone took the job over.
      if ((owner !== undefined && !mine) || (owner === undefined && entry.confirmed)) {
        book.disown(id);
        this.ctx.logger.warn({ jobId: id }, 'ownership of job lost');
        return false;
      }
      return true;
    }
    if (this.uncertain.has(id) && owner !== undefined) {
      // An acquisition that failed with an error: the create may have applied anyway (its reply
      // was lost). The mirror now says whether it did; if so, the job is ours.
      this.uncertain.delete(id);
      if (mine) {
        book.dropCandidate(id);
        if (job !== undefined && !isFinished(snapshot.status(id)?.state)) {
          this.ctx.recorder.counts.jobsAcquired++;
          book.own(job, snapshot.status(id), now);
          return true;
        }
        this.stray.add(id);
        return false;
      }
    }
    const kind = job?.spec.kind as string | undefined;
    const anyKind = kind !== 'batch' && kind !== 'service';
    if (job === undefined || owner !== undefined || isFinished(snapshot.status(id)?.state) || (!anyKind && !this.ctx.jobKinds.includes(kind as string))) {
      book.dropCandidate(id);
      return false;
    }
    // Kept if already known: the grace runs from when this instance first saw the job unowned.
    if (book.addCandidate(job, anyKind, now)) this.dirty++;
    return false;
  }

  /**
   * Takes the candidates it should now (see the file header). Returns the jobs taken and how many
   * store writes were made. Runs a pass only when something relevant changed or a grace ran out.
   */
  async acquire(snapshot: CellSnapshot, now: number): Promise<{ acquired: JobId[]; writes: number }> {
    const { book, cell, name, kind, settings } = this.ctx;
    const acquired: JobId[] = [];
    let released = 0;
    for (const id of [...this.stray]) {
      // Guarded by the record's lease and revision: never deletes a record someone took since.
      if (book.get(id) !== undefined) {
        this.stray.delete(id);
        continue;
      }
      await cell.releaseOwnership(id, this.ctx.lease());
      this.stray.delete(id);
      released++;
    }
    if (book.candidateCount === 0) {
      this.nextGraceAtMs = undefined;
      return { acquired, writes: released };
    }
    const graceDue = this.nextGraceAtMs !== undefined && now >= this.nextGraceAtMs;
    if (!this.membershipChanged && !graceDue && this.dirty === 0) return { acquired, writes: released };
    this.membershipChanged = false;
    this.dirty = 0;
    let room = settings.maxQueuedJobs - book.queuedCount;
    let writes = released;
    let nextGrace: number | undefined;
    // Per job kind: live instances of that kind, plus this one (which takes the kind too).
    const membersByKind = new Map<string | undefined, string[]>();
    const membersFor = (k: string | undefined): string[] => {
      let members = membersByKind.get(k);
      if (members === undefined) membersByKind.set(k, (members = liveMembers(snapshot, name, k)));
      return members;
    };
    const chosen: { candidate: Candidate; job: Job }[] = [];
    for (const candidate of book.candidates()) {
      if (chosen.length >= room) break;
      const job = snapshot.job(candidate.id);
      if (job === undefined || snapshot.owner(candidate.id) !== undefined) {
        book.dropCandidate(candidate.id);
        continue;
      }
      const members = membersFor(candidate.anyKind ? undefined : job.spec.kind);
      const graceEnds = candidate.firstSeenMs + settings.ownershipGraceMs;
      if (rendezvousOwner(candidate.id, members) !== name && now < graceEnds) {
        nextGrace = Math.min(nextGrace ?? Infinity, graceEnds);
        continue;
      }
      chosen.push({ candidate, job });
    }
    this.nextGraceAtMs = nextGrace;
    if (chosen.length === 0) return { acquired, writes };
    for (const { candidate } of chosen) book.dropCandidate(candidate.id);
    // All of this pass's creates in one request (a backlog of submits is taken in one round trip).
    let taken: boolean[];
    try {
      taken = await cell.acquireOwnerships(
        chosen.map(({ candidate }) => candidate.id),
        name,
        kind,
        this.ctx.lease(),
      );
    } catch (error) {
      // Keep them candidates (their first-seen times too): the jobs may not change again, and a
      // store error must not leave them unowned for good. If a create did apply, the mirror
      // shows our record and reconcile adopts the job.
      for (const { candidate } of chosen) {
        book.restoreCandidate(candidate);
        this.uncertain.add(candidate.id);
      }
      this.dirty++;
      throw error;
    }
    writes += chosen.length;
    for (const [i, { candidate, job }] of chosen.entries()) {
      if (taken[i] !== true) continue;
      this.ctx.recorder.counts.jobsAcquired++;
      book.own(job, snapshot.status(candidate.id), now);
      acquired.push(candidate.id);
      room--;
    }
    // Some were taken by others: the room they left goes to the next candidates.
    if (room > 0 && acquired.length < chosen.length && book.candidateCount > 0) this.dirty++;
    return { acquired, writes };
  }
}
