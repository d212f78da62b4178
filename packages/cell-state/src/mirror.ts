/**
 * CellMirror: a full replica of one cell's state in this process, fed by the store.
 *
 * ```
 *   list /omega/<cell>/, then its kinds' prefixes at once (paged, at one revision R) ──► CellStateMaps ──► snapshot()
 *   watch from R+1 ─────────── batches ──────────────┘        │
 *          ▲  compacted: re-list (logged)                       └─► onChange listeners, waiters
 * ```
 *
 * Guarantees: the state is always that of one whole revision (a watch batch is applied whole
 * before the revision advances); events are applied idempotently per key revision, so duplicate
 * or replayed events (etcd 3.4 delivers some around reconnects) change nothing; when the
 * revision the watch needs was compacted, the mirror re-lists and says so in a log line.
 * A mirror with a {@link MirrorFilter} holds only what its filter admits (a node agent's part
 * of the cell); without one, the filter costs one `undefined` check per event.
 */
import type { Logger } from 'pino';
import pino from 'pino';
import { CellStateMaps, type CellSnapshot, type MirrorFilter } from './cell-snapshot.js';
import type { CellKeys, KeyKind } from './keys.js';
import type { Job, JobId, Task, TaskId } from './types.js';
import { KvCompactedError, prefixEnd, type KeyValue, type KvStore, type WatchBatch, type WatchHandle } from './kv.js';

/**
 * The prefixes a mirror lists past its first page: every kind {@link CellStateMaps} holds.
 * Request records and job history are never held.
 */
const LISTED_PREFIXES = ['tasks', 'machines', 'alive', 'jobs', 'status', 'owners', 'schedulers', 'namespaces'] as const;

/** What changed in one applied batch. */
export interface MirrorChange {
  readonly revision: number;
  /** The whole state was (re)listed: anything may have changed, `changes` is empty. */
  readonly full: boolean;
  readonly changes: readonly { readonly kind: KeyKind; readonly id: string; readonly type: 'put' | 'delete' }[];
}

export interface MirrorOptions {
  /** Keys per page of the initial list (default 2,000; keeps replies far under gRPC's limit). */
  readonly pageSize?: number;
  readonly logger?: Logger;
  /**
   * Hold only part of the cell (see {@link MirrorFilter}); default everything. Everything is
   * still listed and watched, but what the filter refuses is dropped as it arrives. When the
   * filter's answer for a key changes, call {@link CellMirror.refilter}. (`counters.duplicates`
   * then also counts the events the filter dropped.)
   */
  readonly filter?: MirrorFilter;
}

export interface MirrorCounters {
  lists: number;
  relistsAfterCompaction: number;
  batches: number;
  events: number;
  /** Events ignored because that key's revision was already applied. */
  duplicates: number;
  disconnects: number;
  /** Records {@link CellMirror.refilter} held from the recall cache, without a read. */
  recalled: number;
}

export class MirrorStoppedError extends Error {
  constructor() {
    super('the mirror was stopped');
    this.name = 'MirrorStoppedError';
  }
}

export class CellMirror {
  readonly counters: MirrorCounters = { lists: 0, relistsAfterCompaction: 0, batches: 0, events: 0, duplicates: 0, disconnects: 0, recalled: 0 };
  /** Replaced whole by each (re-)list, so a list is applied page by page without a half state showing. */
  private state: CellStateMaps;
  private readonly logger: Logger;
  private readonly pageSize: number;
  private watch: WatchHandle | undefined;
  private readonly listeners = new Set<(change: MirrorChange) => void>();
  private waiters: { revision: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private stopped = false;
  private relisting: Promise<void> | undefined;
  private readonly filter: MirrorFilter | undefined;

  constructor(
    private readonly kv: KvStore,
    private readonly keys: CellKeys,
    options: MirrorOptions = {},
  ) {
    this.state = new CellStateMaps(keys, 0, options.filter);
    this.filter = options.filter;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'mirror', cell: keys.cell });
    this.pageSize = options.pageSize ?? 2000;
  }

  /** Lists the cell and starts watching; resolves once the state is complete at some revision. */
  async start(): Promise<void> {
    await this.listAndWatch();
  }

  /** The revision the mirror is current to (0 before start). */
  get revision(): number {
    return this.state.revision;
  }

  /** The state at the mirror's current revision. Cheap; immutable. */
  snapshot(): CellSnapshot {
    return this.state.snapshot();
  }

  /**
   * A task's record as the mirror holds it now: what `snapshot().task(id)` returns, without
   * freezing a snapshot. For a change listener reading the records it was told of: each frozen
   * snapshot makes the next change to every part of the state copy that part first, so a
   * listener that froze one per batch would double the copying.
   */
  task(id: TaskId): Task | undefined {
    return this.state.task(id);
  }

  /** A job's record as the mirror holds it now (see {@link task}). */
  job(id: JobId): Job | undefined {
    return this.state.job(id);
  }

  /** Records that could not be decoded and were skipped. */
  get undecodable(): number {
    return this.state.undecodable;
  }

  /** Deleted keys the mirror still remembers (bounded: see `TOMBSTONE_REVISIONS`). */
  get tombstoneCount(): number {
    return this.state.tombstoneCount;
  }

  /**
   * Resolves once the mirror is current to at least `revision` (e.g. the revision a commit
   * returned, so the next snapshot includes it). Rejects after `timeoutMs` (default 30 s).
   */
  waitForRevision(revision: number, timeoutMs = 30_000): Promise<void> {
    if (this.state.revision >= revision) return Promise.resolve();
    if (this.stopped) return Promise.reject(new MirrorStoppedError());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`mirror did not reach revision ${revision} within ${timeoutMs} ms (at ${this.state.revision})`));
      }, timeoutMs);
      timer.unref?.();
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /**
   * For a filtered mirror, after the filter's answer for one key changed: a record the filter
   * now refuses is dropped at once; one it now admits and that is not held is taken from the
   * filter's recall cache when it is there (see {@link MirrorFilter.recall}: the version as of
   * {@link revision}), else read from the store and held (so it may be newer than
   * {@link revision}: a record of a later revision, as a watch event for it would have been).
   * Listeners hear of a change with that one key, never from inside this call.
   * Rejects when the read fails (the store is unreachable); the caller retries.
   */
  async refilter(kind: KeyKind, id: string): Promise<void> {
    const filter = this.filter;
    if (filter === undefined || this.stopped) return;
    const key = this.keys.of(kind, id);
    if (!filter.key(kind, id)) {
      if (this.state.forget(kind, id, key)) this.notify({ revision: this.state.revision, full: false, changes: [{ kind, id, type: 'delete' }] });
      return;
    }
    if (this.state.holds(kind, id)) return;
    if (this.state.recall !== undefined) {
      // Callers are often listeners of this mirror: the change is heard after theirs, not inside it.
      await Promise.resolve();
      if (this.stopped || this.state.holds(kind, id)) return;
      // Seen and refused by the watch, and still its newest version: held without a read.
      const recalled = this.state.recall.take(key);
      if (recalled !== undefined) {
        this.counters.recalled++;
        if (this.state.apply('put', recalled)) this.notify({ revision: this.state.revision, full: false, changes: [{ kind, id, type: 'put' }] });
        return;
      }
    }
    const { kvs } = await this.kv.range({ key });
    const kv = kvs[0];
    // Applied like a watch event: ignored if the watch already delivered this or a later version.
    if (this.stopped || kv === undefined || !this.state.apply('put', kv)) return;
    this.notify({ revision: this.state.revision, full: false, changes: [{ kind, id, type: 'put' }] });
  }

  /** Calls `listener` after every applied batch; returns an unsubscribe function. */
  onChange(listener: (change: MirrorChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const watch = this.watch;
    this.watch = undefined;
    await watch?.cancel();
    for (const w of this.waiters) w.reject(new MirrorStoppedError());
    this.waiters = [];
  }

  private async listAndWatch(): Promise<void> {
    for (;;) {
      try {
        await this.list();
        break;
      } catch (error) {
        // The first page's revision was compacted before the last page was read: start over.
        if (!(error instanceof KvCompactedError)) throw error;
      }
    }
    if (this.stopped) return;
    // The new watch's batches apply at once, even before the re-list's promise has settled.
    this.relisting = undefined;
    this.watch = this.kv.watch(this.keys.root, this.state.revision + 1, {
      onBatch: (batch) => this.applyBatch(batch),
      onCompacted: (compactRevision) => this.relist(compactRevision),
      onDisconnected: (error) => {
        this.counters.disconnects++;
        this.logger.warn({ err: error, revision: this.state.revision }, 'watch disconnected; resuming');
      },
      onReconnected: () => this.logger.info({ revision: this.state.revision }, 'watch resumed'),
    });
  }

  /**
   * A paged list of the cell at one revision, replacing the state. The first page, of the whole
   * cell, fixes the revision; a cell that fits in it costs one request. Past it, the prefixes of
   * the kinds the state holds are listed at once from where that page ended (`requests/` and
   * `history/` are not read further), each page applied while the next is read. Pages go into a
   * fresh state that replaces the old one only when complete: the replica's peak is one page,
   * not the whole cell in replies.
   */
  private async list(): Promise<void> {
    this.counters.lists++;
    const next = new CellStateMaps(this.keys, 0, this.filter);
    const first = await this.kv.range({ key: this.keys.root, prefix: true, limit: this.pageSize });
    const revision = first.revision;
    this.applyPage(next, first.kvs);
    const last = first.kvs[first.kvs.length - 1];
    if (first.more && last !== undefined) {
      const after = `${last.key}\0`;
      await Promise.all(
        LISTED_PREFIXES.map((segment) => {
          const prefix = this.keys.prefix(segment);
          // Keys are ASCII: string order is etcd's byte order.
          if (prefixEnd(prefix) <= after) return undefined; // wholly in the first page
          return this.listPrefix(next, prefix, revision, after > prefix ? after : undefined);
        }),
      );
    }
    if (this.stopped) return;
    this.state = next;
    this.state.advance(revision);
    this.notify({ revision, full: true, changes: [] });
  }

  /** Lists one prefix at `revision` (from `fromKey` on) into `into`, the next page read while this one is applied. */
  private async listPrefix(into: CellStateMaps, prefix: string, revision: number, fromKey: string | undefined): Promise<void> {
    let page = await this.kv.range({ key: prefix, prefix: true, limit: this.pageSize, revision, ...(fromKey === undefined ? {} : { fromKey }) });
    for (;;) {
      const last = page.kvs[page.kvs.length - 1];
      const following = page.more && last !== undefined ? this.kv.range({ key: prefix, prefix: true, limit: this.pageSize, revision, fromKey: `${last.key}\0` }) : undefined;
      // Rejections of `following` are awaited below; nothing between here and there awaits.
      this.applyPage(into, page.kvs);
      if (following === undefined) return;
      page = await following;
    }
  }

  private applyPage(into: CellStateMaps, kvs: readonly KeyValue[]): void {
    for (const kv of kvs) {
      // A filtered mirror keeps only what it will hold: its peak while listing is its part of the cell.
      if (this.filter === undefined || into.admits(kv)) into.apply('put', kv);
    }
  }

  private applyBatch(batch: WatchBatch): void {
    if (this.stopped || this.relisting !== undefined) return;
    this.counters.batches++;
    const changes: { kind: KeyKind; id: string; type: 'put' | 'delete' }[] = [];
    for (const event of batch.events) {
      this.counters.events++;
      const parsed = this.keys.parse(event.kv.key);
      // Every event at or below the mirror's revision was applied already (whole revisions are
      // applied before the revision advances): a replay. This check needs no per-key memory, so
      // deleted keys' tombstones can be forgotten (see CellStateMaps.advance).
      if (event.kv.modRevision <= this.state.revision) {
        this.counters.duplicates++;
        continue;
      }
      if (this.state.apply(event.type, event.kv, parsed)) {
        if (parsed === undefined) continue;
        // A filtered mirror drops a record whose new version its filter refuses: for the
        // listener that is a delete.
        const type = this.filter !== undefined && event.type === 'put' && !this.state.holds(parsed.kind, parsed.id) ? 'delete' : event.type;
        changes.push({ kind: parsed.kind, id: parsed.id, type });
      } else {
        this.counters.duplicates++;
      }
    }
    if (batch.revision <= this.state.revision && changes.length === 0) return;
    this.state.advance(Math.max(batch.revision, this.state.revision));
    this.notify({ revision: this.state.revision, full: false, changes });
  }

  private relist(compactRevision: number): void {
    if (this.stopped || this.relisting !== undefined) return;
    this.counters.relistsAfterCompaction++;
    this.logger.warn({ revision: this.state.revision, compactRevision }, 'watch revision compacted; re-listing the cell');
    this.watch = undefined;
    this.relisting = this.listAndWatch()
      .catch((error: unknown) => {
        this.logger.error({ err: error }, 're-list failed; retrying');
        this.relisting = undefined;
        setTimeout(() => this.relist(compactRevision), 1000).unref?.();
      })
      .finally(() => {
        this.relisting = undefined;
      });
  }

  private notify(change: MirrorChange): void {
    if (this.waiters.length > 0) {
      const ready = this.waiters.filter((w) => w.revision <= change.revision);
      if (ready.length > 0) {
        this.waiters = this.waiters.filter((w) => w.revision > change.revision);
        for (const w of ready) w.resolve();
      }
    }
    for (const listener of this.listeners) listener(change);
  }
}
