/**
 * The API's way to the cell: reads from a {@link CellMirror} (list + watch), writes through
 * {@link Cell}, every step bounded by the call's {@link Deadline}.
 *
 * Every read first learns etcd's current revision and waits until the mirror has reached it. So
 * a client that wrote through one API server (a submit, a kill) and reads through another sees
 * its own write: reads are as fresh as a quorum read of etcd, at the cost of one small round trip.
 *
 * While etcd is unreachable (or the mirror is not listed yet), every step fails within the
 * deadline with UNAVAILABLE; nothing waits longer, nothing needs a restart when etcd is back.
 * Whether the store answers is logged once per change (`cell store unreachable` /
 * `cell store reachable again`), not once per call.
 */
import { jobId as toJobId, KvError, type Cell, type CellMirror, type CellSnapshot, type JobId } from '@omega/cell-state';
import { checkId } from '@omega/cell-state';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { Deadline, StoreTimeoutError } from './deadline.js';
import { invalidArgument, unavailable } from './errors.js';
import type { MirrorLink } from './mirror-link.js';

/**
 * How long a read waits for the mirror to reach etcd's revision by itself before it writes the
 * sync marker: long enough for the watch to deliver a write that just happened.
 */
const SYNC_AFTER_MS = 100;

/** Default budget of one call's store steps. */
export const DEFAULT_STORE_TIMEOUT_MS = 5_000;

export interface CellReaderOptions {
  /** Budget of one call's store steps (etcd round trips, the mirror catching up); default 5 s. */
  readonly storeTimeoutMs?: number;
  /** Tells whether the mirror has been listed; without one the mirror is taken as listed. */
  readonly link?: MirrorLink;
  readonly logger?: Logger;
}

export class CellReader {
  readonly storeTimeoutMs: number;
  private readonly link: MirrorLink | undefined;
  private readonly logger: Logger;
  private storeDown = false;
  private probing: Promise<void> | undefined;
  private syncing: Promise<number> | undefined;

  constructor(
    readonly cell: Cell,
    readonly mirror: CellMirror,
    options: CellReaderOptions = {},
  ) {
    this.storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    this.link = options.link;
    this.logger = options.logger ?? pino({ level: 'silent' });
  }

  /** A new budget for one call. */
  deadline(): Deadline {
    return new Deadline(this.storeTimeoutMs);
  }

  /** A snapshot at least as new as etcd's revision when the call started. */
  async fresh(deadline: Deadline = this.deadline()): Promise<CellSnapshot> {
    await this.listed(deadline);
    // A range of one key that need not exist: the reply's header carries the current revision.
    const { revision } = await this.store(deadline, 'reading the current revision', () => this.cell.kv.range({ key: this.cell.keys.root }));
    if (this.mirror.revision >= revision) return this.mirror.snapshot();
    try {
      await this.mirror.waitForRevision(revision, Math.max(1, Math.min(SYNC_AFTER_MS, deadline.remainingMs)));
      return this.mirror.snapshot();
    } catch {
      // The newer revisions may all be writes outside the cell prefix (tokens, another cell in
      // the same etcd), which the mirror's watch never delivers: it would wait for the next write
      // to the cell. A write of the sync marker inside the prefix gives the watch an event past them.
      const marker = await this.syncMarker(deadline);
      return this.atLeast(Math.max(revision, marker), deadline);
    }
  }

  /** A snapshot at `revision` or later (e.g. the revision a write returned). */
  async atLeast(revision: number, deadline: Deadline = this.deadline()): Promise<CellSnapshot> {
    await this.listed(deadline);
    try {
      await this.mirror.waitForRevision(revision, Math.max(1, deadline.remainingMs));
    } catch (error) {
      throw unavailable(`the API server's view of the cell is behind etcd (at revision ${this.mirror.revision}, needs ${revision}); retry`, error);
    }
    return this.mirror.snapshot();
  }

  /** Writes the cell's sync marker (concurrent callers share one write); its revision. */
  private syncMarker(deadline: Deadline): Promise<number> {
    this.syncing ??= this.store(deadline, 'writing the sync marker', () => this.cell.kv.put(this.cell.keys.syncMarker, new Uint8Array())).finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  /**
   * Runs one store step (a write through {@link Cell}, a read) within `deadline`. Store failures
   * propagate as they are (the API's error translation makes them UNAVAILABLE); an expired
   * deadline is a {@link StoreTimeoutError}. Records whether the store answers, for the log.
   */
  async store<T>(deadline: Deadline, what: string, step: () => Promise<T>): Promise<T> {
    try {
      const result = await deadline.run(what, step());
      this.reachable(true);
      return result;
    } catch (error) {
      if (error instanceof StoreTimeoutError || (error instanceof KvError && error.retryable)) this.reachable(false, error);
      else this.reachable(true);
      throw error;
    }
  }

  /**
   * Resolves when the store answers and the mirror is current with it; rejects (UNAVAILABLE)
   * otherwise, within the store timeout. Concurrent callers share one check (open watches use it
   * to notice an outage while nothing changes).
   */
  probe(): Promise<void> {
    this.probing ??= this.fresh()
      .then(() => undefined)
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }

  private async listed(deadline: Deadline): Promise<void> {
    if (this.link === undefined || this.link.ready) return;
    if (!(await this.link.whenReady(deadline.remainingMs))) {
      throw unavailable(`the API server has not read the cell from etcd yet (etcd unreachable or slow; ${this.link.failures} attempts so far); retry`);
    }
  }

  private reachable(up: boolean, error?: unknown): void {
    if (up === !this.storeDown) return;
    this.storeDown = !up;
    if (up) this.logger.info('cell store reachable again');
    else this.logger.warn({ err: error }, 'cell store unreachable; answering UNAVAILABLE until it is back');
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
