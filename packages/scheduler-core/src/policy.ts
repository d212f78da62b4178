/**
 * The one interface a scheduling policy implements. The loop (scheduler-core) decides which
 * jobs and tasks need placing, takes the snapshot, builds the PrivateCell, commits, retries and
 * counts; the policy only chooses machines.
 */
import type { CellSnapshot, Job, Machine, PrivateCell, TaskId, TransactionMode } from '@omega/cell-state';
import type { Random } from './random.js';

/** A task the loop wants placed now. */
export interface TaskToPlace {
  readonly taskId: TaskId;
  readonly index: number;
}

export interface PlaceInput {
  readonly job: Job;
  /** Tasks to place, in index order. */
  readonly tasks: readonly TaskToPlace[];
  /** Claims go here (and only here): `cell.claim(machineId, request)`. */
  readonly cell: PrivateCell;
  /** The snapshot the PrivateCell is over. */
  readonly snapshot: CellSnapshot;
  /** Machines that are alive and schedulable in the snapshot, in a stable order. */
  readonly machines: readonly Machine[];
  readonly random: Random;
}

export interface PlaceOutcome {
  /** How many of the tasks got a claim on the PrivateCell. */
  readonly placed: number;
  /**
   * For the tasks that could not be placed: how many machines each filter ruled out (e.g.
   * `cpu` 37, `attribute zone in [a]` 12, `max-per-machine 1` 3). Shown to users as the reason.
   */
  readonly ruledOut: ReadonlyMap<string, number>;
}

export interface PlacementPolicy {
  readonly kind: 'batch' | 'service';
  /** Used for jobs whose commit mode is `default`. */
  readonly defaultTransactionMode: TransactionMode;
  /** Chooses machines for `input.tasks`, claiming on `input.cell`. Synchronous: it thinks on a snapshot. */
  place(input: PlaceInput): PlaceOutcome;
}
