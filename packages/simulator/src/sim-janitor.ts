/**
 * The simulation's janitor: deletes the records of jobs that succeeded once nothing can refer to
 * them any more, so a simulated day (20,000+ jobs, 2 million tasks) fits in memory. A real cell
 * would do this with a retention policy; the paper's simulator simply forgets finished jobs.
 *
 * When a job may go: its status says `succeeded` (its owner released it), and no machine record
 * still carries a claim of one of its tasks. The second condition matters: a claim whose task
 * record is unknown counts as live (cell-state `isClaimLive`), so deleting a task before the
 * next commit to its machine has pruned the dead claim would resurrect it. A commit built on an
 * older machine record cannot bring the claim back either: the record changed since, so that
 * commit fails its sequence-number guard and re-reads the machine.
 *
 * Deleting changes nothing a scheduler decides (no placement reads a finished job), so runs are
 * as deterministic as without it; the metrics never read deleted records.
 */
import { type Cell, type CellMirror, type JobId, type Op } from '@omega/cell-state';
import type { VirtualClock } from './virtual-clock.js';

/** Jobs deleted per request. */
const BATCH = 500;

export class SimJanitor {
  jobsDeleted = 0;
  private stopped = false;

  constructor(
    private readonly cell: Cell,
    private readonly mirror: CellMirror,
    private readonly clock: VirtualClock,
    private readonly periodMs: number,
  ) {}

  /** Sweeps every `periodMs` of virtual time until `untilMs`. */
  start(untilMs: number): void {
    const tick = (): void => {
      if (this.stopped) return;
      void this.sweep();
      if (this.clock.now() + this.periodMs <= untilMs) this.clock.at(this.clock.now() + this.periodMs, tick);
    };
    this.clock.at(this.clock.now() + this.periodMs, tick);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Deletes every job that may go now; resolves with how many. */
  async sweep(): Promise<number> {
    const snapshot = this.mirror.snapshot();
    const done: JobId[] = [];
    for (const job of snapshot.jobs()) {
      if (snapshot.status(job.id)?.state !== 'succeeded') continue;
      let referenced = false;
      for (const task of snapshot.tasksOf(job.id)) {
        if (snapshot.machine(task.machineId)?.claims.some((c) => c.id === task.claimId) === true) {
          referenced = true;
          break;
        }
      }
      if (!referenced) done.push(job.id);
    }
    const keys = this.cell.keys;
    for (let i = 0; i < done.length; i += BATCH) {
      const ops: Op[] = done.slice(i, i + BATCH).flatMap((id): Op[] => [
        { type: 'delete', key: keys.tasksOfJob(id), prefix: true },
        { type: 'delete', key: keys.status(id) },
        { type: 'delete', key: keys.owner(id) },
        { type: 'delete', key: keys.job(id) },
      ]);
      await this.cell.kv.txn({ compare: [], success: ops, failure: [] });
    }
    this.jobsDeleted += done.length;
    return done.length;
  }
}
