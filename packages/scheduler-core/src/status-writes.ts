/**
 * StatusWrites: the job statuses (and releases) an owning instance writes, gathered across jobs.
 * The scheduler judges its owned jobs many at a time, and each judgement may end in a status
 * write (`running` once a job is placed, the final status with the release of its owner
 * record): one request and one revision per job, which every watcher of the cell decodes
 * apart. The writes asked for within one turn of the event loop go out together instead, in
 * one {@link Cell.putJobStatuses} transaction (a few, for many jobs).
 *
 * ```
 *   put(status, release?) ─► pending ─► clock.sleep(0) ─► putJobStatuses(all pending, one per job)
 *                                                        ─► each put's promise settles with it
 * ```
 *
 * The wait goes through the scheduler's clock (a timer of 0 ms: a real one live, a virtual one
 * in the simulator), not setImmediate: under simulation a turn of the macrotask queue may come
 * after the virtual clock has moved on, so the writes would land at a time that depends on what
 * else the simulation runs; a virtual timer due now wakes at this very instant, in its order.
 *
 * One request is in flight at a time; what is asked meanwhile goes in the next (group commit).
 * A job asked for twice before a flush (a status, then its final one) is written in order: the
 * second waits for the next request, since one transaction may not put a key twice. A failed
 * request rejects every put it carried, each caller handling its own as before.
 */
import type { Cell, JobStatus, KvLease } from '@omega/cell-state';
import type { Clock } from './clock.js';

interface PendingStatus {
  readonly status: Omit<JobStatus, 'revision'>;
  readonly release: KvLease | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class StatusWrites {
  private pending: PendingStatus[] = [];
  private scheduled = false;
  /** One request in flight at a time: a job's second status never overtakes its first. */
  private flushing = false;

  constructor(
    private readonly cell: Cell,
    private readonly clock: Clock,
  ) {}

  /** Writes the job's status (and releases its owner record under `release`); resolves once written. */
  put(status: Omit<JobStatus, 'revision'>, release?: KvLease): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ status, release, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    void this.clock.sleep(0).then(() => {
      this.scheduled = false;
      return this.flush();
    });
  }

  private async flush(): Promise<void> {
    const seen = new Set<string>();
    const now: PendingStatus[] = [];
    const later: PendingStatus[] = [];
    for (const item of this.pending) {
      if (seen.has(item.status.jobId)) later.push(item);
      else {
        seen.add(item.status.jobId);
        now.push(item);
      }
    }
    this.pending = later;
    this.flushing = true;
    try {
      await this.cell.putJobStatuses(now.map((item) => (item.release === undefined ? { status: item.status } : { status: item.status, release: item.release })));
      for (const item of now) item.resolve();
    } catch (error) {
      for (const item of now) item.reject(error);
    }
    this.flushing = false;
    if (this.pending.length > 0) this.schedule();
  }
}
