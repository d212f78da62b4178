/**
 * Reads of the cell for the API: a {@link CellMirror} (list + watch) holds the state, and every
 * read first learns etcd's current revision and waits until the mirror has reached it. So a
 * client that wrote through one API server (a submit, a kill) and reads through another sees its
 * own write: reads are as fresh as a quorum read of etcd, at the cost of one small round trip.
 */
import { jobId as toJobId, type Cell, type CellMirror, type CellSnapshot, type JobId } from '@omega/cell-state';
import { checkId } from '@omega/cell-state';
import { invalidArgument, unavailable } from './errors.js';

export interface CellReaderOptions {
  /** How long a read waits for the mirror to catch up with etcd; default 10 s. */
  readonly catchUpTimeoutMs?: number;
}

export class CellReader {
  private readonly catchUpTimeoutMs: number;

  constructor(
    readonly cell: Cell,
    readonly mirror: CellMirror,
    options: CellReaderOptions = {},
  ) {
    this.catchUpTimeoutMs = options.catchUpTimeoutMs ?? 10_000;
  }

  /** A snapshot at least as new as etcd's revision when the call started. */
  async fresh(): Promise<CellSnapshot> {
    // A range of one key that need not exist: the reply's header carries the current revision.
    const { revision } = await this.cell.kv.range({ key: this.cell.keys.root });
    await this.atLeast(revision);
    return this.mirror.snapshot();
  }

  /** A snapshot at `revision` or later (e.g. the revision a write returned). */
  async atLeast(revision: number): Promise<CellSnapshot> {
    try {
      await this.mirror.waitForRevision(revision, this.catchUpTimeoutMs);
    } catch (error) {
      throw unavailable(`the API server's view of the cell is behind etcd (at revision ${this.mirror.revision}, needs ${revision}); retry`, error);
    }
    return this.mirror.snapshot();
  }
}

/** A job id from a request, checked like every key segment; INVALID_ARGUMENT naming `field` otherwise. */
export function requestJobId(field: string, value: string): JobId {
  try {
    checkId(field, value);
  } catch (error) {
    throw invalidArgument(field, (error as Error).message.slice(field.length + 2));
  }
  return toJobId(value);
}
