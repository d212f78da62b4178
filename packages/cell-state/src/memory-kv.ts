/**
 * An in-memory {@link KvStore} with etcd 3.4's semantics, for unit tests and the simulator.
 *
 * What it reproduces from etcd (the KV contract suite checks each point against both stores):
 * - one global revision; an empty store is at revision 1 and its first write makes it 2; a
 *   transaction bumps it once however many keys it writes, and not at all when it writes nothing
 *   (read-only, or a delete that matched no key);
 * - per-key `createRevision` / `modRevision` / `version`, missing keys comparing as 0, and a
 *   `value` compare on a missing key being false;
 * - request checks made before anything runs, as etcd's gRPC layer makes them: the op budget of
 *   `--max-txn-ops` (shared down nested levels exactly as etcd shares it), the request size, empty
 *   keys, and the rule that a key is written at most once along the branches that can run together;
 * - all compares of a request, nested ones included, see the store as it was before the request
 *   (etcd evaluates the whole compare path first); reads inside a transaction see its earlier writes;
 * - MVCC reads at a past revision, compaction, paging, leases whose keys are deleted in one
 *   revision (sorted by key, as etcd's lessor does) when revoked or expired;
 * - watches from a past revision, delivered asynchronously (one microtask after the write), in
 *   order, whole revisions per batch, and `onCompacted` when the start revision is below the
 *   compact revision.
 *
 * Deliberate differences: keys are ordered as JavaScript strings (UTF-16 code units), which equals
 * etcd's byte order for the ASCII keys Omega writes; after `compact(C)` a watch from exactly `C`
 * still sees deletions made at `C` (etcd drops those tombstones); no progress notifications.
 *
 * Cost model (the simulator drives 10,000 machines through it): every operation touches only the
 * keys it names or ranges over; history is kept per key and in a revision log until compaction,
 * and `historyLimit` compacts automatically so memory stays bounded.
 */
import {
  KvCompactedError,
  KvInvalidRequestError,
  KvLeaseNotFoundError,
  KvUnavailableError,
  prefixEnd,
  type Compare,
  type CompareOp,
  type KeyValue,
  type KvCounters,
  type KvLease,
  type KvLimits,
  type KvStore,
  type Op,
  type OpResult,
  type RangeRequest,
  type RangeResult,
  type TxnRequest,
  type TxnResult,
  type WatchBatch,
  type WatchEvent,
  type WatchHandle,
  type WatchListener,
} from './kv.js';

/** The simulator's limits: far above etcd's so that only a test that asks for limits meets them. */
export const MEMORY_KV_DEFAULT_LIMITS: KvLimits = { maxTxnOps: 100_000, maxRequestBytes: 64 * 1024 * 1024 };

/** Revisions of history {@link MemoryKv} keeps by default before compacting by itself. */
export const MEMORY_KV_DEFAULT_HISTORY_LIMIT = 100_000;

export interface MemoryKvOptions {
  /** Limits to enforce; defaults to {@link MEMORY_KV_DEFAULT_LIMITS}. */
  readonly limits?: KvLimits;
  /** Milliseconds clock for lease expiry (a simulator passes its virtual clock). Default `Date`. */
  readonly clock?: { now(): number };
  /**
   * At least this many most recent revisions stay readable and watchable; older history is
   * compacted automatically, in chunks of a quarter of the limit so compaction stays amortized.
   */
  readonly historyLimit?: number;
}

const EMPTY = new Uint8Array(0);
/** Reads "at the latest revision" inside a transaction, including the transaction's own writes. */
const LATEST = Number.MAX_SAFE_INTEGER;

/** A key range: one key, or `[start, end)` with `end === null` meaning unbounded. */
type Span = { readonly kind: 'key'; readonly key: string } | { readonly kind: 'range'; readonly start: string; readonly end: string | null };

interface LeaseRecord {
  readonly id: string;
  readonly ttlSeconds: number;
  /** `Infinity` for keep-alive leases. */
  readonly deadline: number;
  readonly keys: Set<string>;
  readonly lostListeners: ((error: Error) => void)[];
  /** Set once the lease expired; revoked leases are simply removed. */
  lostError: Error | undefined;
}

interface MemoryWatch {
  readonly prefix: string;
  readonly listener: WatchListener;
  state: 'unsynced' | 'synced' | 'over';
  /** First revision not yet delivered. */
  nextRevision: number;
  pending: WatchEvent[];
}

/** The decided branches of a transaction: compares are all evaluated before anything is written. */
interface TxnPlan {
  readonly succeeded: boolean;
  readonly ops: readonly Op[];
  /** The plan of each nested transaction in `ops`, by index. */
  readonly nested: ReadonlyMap<number, TxnPlan>;
}

/**
 * In-memory KV store with etcd's semantics. Single-threaded by construction: every method runs to
 * completion synchronously and returns a settled promise, so concurrent callers interleave only
 * between operations, as separate etcd requests do.
 */
export class MemoryKv implements KvStore {
  readonly limits: KvLimits;
  readonly counters: KvCounters = { roundTrips: 0, bytesWritten: 0, bytesRead: 0 };

  private readonly clock: { now(): number };
  private readonly historyLimit: number;
  private revision = 1;
  private compactRevision = 0;
  /** Versions of each key, oldest first; a tombstone is a `KeyValue` with `version === 0`. */
  private readonly keys = new Map<string, KeyValue[]>();
  /** Every key in `keys`, sorted, for ranges and paging. */
  private readonly sortedKeys = new SortedKeys();
  /**
   * Writes that may leave history to trim (a put over an earlier version, every delete), as
   * key and revision, in revision order from `trimHead`. Compaction to R only needs the keys
   * written in (previous compaction, R]: any other key's history was trimmed as far as it can be
   * when its last write at or below R was compacted, so the cost follows the writes, not the
   * number of keys that ever had history.
   */
  private trimQueue: { readonly key: string; readonly revision: number }[] = [];
  private trimHead = 0;
  /** Events of each revision from `logStart` to `revision` (revision 1 has none). */
  private log: WatchEvent[][] = [[]];
  private logStart = 1;

  private readonly leases = new Map<string, LeaseRecord>();
  private nextLeaseId = 1;
  private nextLeaseDeadline = Infinity;

  private readonly unsynced = new Set<MemoryWatch>();
  /** Synced watches by prefix, and how many watches use each prefix length. */
  private readonly synced = new Map<string, Set<MemoryWatch>>();
  private readonly prefixLengths = new Map<number, number>();
  private readonly toDeliver = new Set<MemoryWatch>();
  private flushScheduled = false;
  private closed = false;

  constructor(options: MemoryKvOptions = {}) {
    this.limits = options.limits ?? MEMORY_KV_DEFAULT_LIMITS;
    this.clock = options.clock ?? Date;
    this.historyLimit = options.historyLimit ?? MEMORY_KV_DEFAULT_HISTORY_LIMIT;
    if (!Number.isSafeInteger(this.historyLimit) || this.historyLimit < 1) {
      throw new RangeError(`MemoryKv historyLimit must be a positive integer, got ${this.historyLimit}`);
    }
  }

  async range(request: RangeRequest): Promise<RangeResult> {
    this.begin();
    const span = spanOf(request.key, request.prefix === true);
    const at = request.revision !== undefined && request.revision > 0 ? request.revision : this.revision;
    if (at < this.compactRevision) throw new KvCompactedError(this.compactRevision);
    if (at > this.revision) throw new KvInvalidRequestError(`mvcc: required revision ${at} is a future revision`);
    const { kvs, more } = this.read(span, at, request.limit ?? 0, request.fromKey);
    return { kvs, more, revision: at };
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    this.begin();
    return this.runTxn(request);
  }

  async put(key: string, value: Uint8Array, options: { lease?: string } = {}): Promise<number> {
    this.begin();
    const op: Op = options.lease === undefined ? { type: 'put', key, value } : { type: 'put', key, value, lease: options.lease };
    return this.runTxn({ compare: [], success: [op], failure: [] }).revision;
  }

  async delete(key: string, options: { prefix?: boolean } = {}): Promise<number> {
    this.begin();
    const op: Op = { type: 'delete', key, prefix: options.prefix === true };
    const result = this.runTxn({ compare: [], success: [op], failure: [] }).results[0];
    return result?.type === 'delete' ? result.deleted : 0;
  }

  watch(prefix: string, fromRevision: number, listener: WatchListener): WatchHandle {
    // Not a request of its own (EtcdKv multiplexes watches on one stream): no round trip.
    this.begin(false);
    const watch: MemoryWatch = { prefix, listener, state: 'unsynced', nextRevision: fromRevision, pending: [] };
    if (fromRevision <= 0 || fromRevision > this.revision) {
      // etcd: no start revision means "after now"; a future one waits for events to reach it.
      watch.nextRevision = fromRevision <= 0 ? this.revision + 1 : fromRevision;
      this.addSynced(watch);
    } else {
      this.unsynced.add(watch);
      this.scheduleFlush();
    }
    return {
      cancel: async () => {
        this.endWatch(watch);
      },
    };
  }

  async grantLease(ttlSeconds: number, options: { autoKeepAlive?: boolean } = {}): Promise<KvLease> {
    this.begin();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new KvInvalidRequestError(`lease TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`);
    }
    const id = String(this.nextLeaseId++);
    const deadline = options.autoKeepAlive === true ? Infinity : this.clock.now() + ttlSeconds * 1000;
    const record: LeaseRecord = { id, ttlSeconds, deadline, keys: new Set(), lostListeners: [], lostError: undefined };
    this.leases.set(id, record);
    this.nextLeaseDeadline = Math.min(this.nextLeaseDeadline, deadline);
    return {
      id,
      ttlSeconds,
      revoke: async () => {
        this.begin();
        // Like etcd3's Lease.revoke: revoking a lease that is already gone is not an error.
        if (this.leases.get(id) === record) this.revokeLease(record);
      },
      onLost: (listener) => {
        if (record.lostError !== undefined) {
          const error = record.lostError;
          queueMicrotask(() => listener(error));
        } else {
          record.lostListeners.push(listener);
        }
      },
    };
  }

  async compact(revision: number): Promise<void> {
    this.begin();
    if (revision <= this.compactRevision) throw new KvCompactedError(this.compactRevision);
    if (revision > this.revision) throw new KvInvalidRequestError(`mvcc: required revision ${revision} is a future revision`);
    this.compactTo(revision);
  }

  async currentRevision(): Promise<number> {
    this.begin();
    return this.revision;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const watch of [...this.unsynced]) this.endWatch(watch);
    for (const set of this.synced.values()) for (const watch of set) watch.state = 'over';
    this.synced.clear();
    this.prefixLengths.clear();
    this.toDeliver.clear();
    this.leases.clear();
  }

  /**
   * Test hook: expires a lease now, as if its TTL ran out: its keys are deleted in one revision
   * (with delete events) and its `onLost` listeners run. Throws {@link KvLeaseNotFoundError} for
   * a lease that was revoked or already expired.
   */
  expireLease(id: string): void {
    const record = this.leases.get(id);
    if (record === undefined) throw new KvLeaseNotFoundError(id);
    this.expire(record);
  }

  // ---- request processing -------------------------------------------------------------------

  /** Every public operation starts here: a round trip, and leases due by the clock expire. */
  private begin(request = true): void {
    if (this.closed) throw new KvUnavailableError('memory KV store is closed');
    if (request) this.counters.roundTrips++;
    if (this.clock.now() >= this.nextLeaseDeadline) this.expireDueLeases();
  }

  private runTxn(request: TxnRequest): TxnResult {
    checkTxnRequest(request, this.limits.maxTxnOps);
    checkIntervals(request.success);
    checkIntervals(request.failure);
    const size = txnBytes(request);
    if (size > this.limits.maxRequestBytes) {
      throw new KvInvalidRequestError(`request is too large (${size} > ${this.limits.maxRequestBytes} bytes)`);
    }
    const plan = this.plan(request);
    this.checkLeases(plan);
    const rev = this.revision + 1;
    const events: WatchEvent[] = [];
    const results = this.execute(plan, rev, events);
    this.commit(rev, events);
    return { succeeded: plan.succeeded, revision: this.revision, results };
  }

  /** etcd's compareToPath: the whole tree of compares is decided against the pre-request state. */
  private plan(request: TxnRequest): TxnPlan {
    const succeeded = request.compare.every((c) => this.holds(c));
    const ops = succeeded ? request.success : request.failure;
    const nested = new Map<number, TxnPlan>();
    ops.forEach((op, i) => {
      if (op.type === 'txn') nested.set(i, this.plan(op.txn));
    });
    return { succeeded, ops, nested };
  }

  /** etcd checks lease existence only for the puts that will run, and fails the whole request. */
  private checkLeases(plan: TxnPlan): void {
    plan.ops.forEach((op, i) => {
      if (op.type === 'put' && op.lease !== undefined && op.lease !== '0' && !this.leases.has(op.lease)) {
        throw new KvLeaseNotFoundError(op.lease);
      }
      const nested = plan.nested.get(i);
      if (nested !== undefined) this.checkLeases(nested);
    });
  }

  private execute(plan: TxnPlan, rev: number, events: WatchEvent[]): OpResult[] {
    return plan.ops.map((op, i): OpResult => {
      switch (op.type) {
        case 'range': {
          const { kvs } = this.read(spanOf(op.key, op.prefix === true), LATEST, 0, undefined);
          return { type: 'range', kvs };
        }
        case 'put':
          this.writePut(op.key, op.value, op.lease ?? '0', rev, events);
          return { type: 'put' };
        case 'delete':
          return { type: 'delete', deleted: this.writeDelete(spanOf(op.key, op.prefix === true), rev, events) };
        case 'txn': {
          const nested = plan.nested.get(i);
          if (nested === undefined) throw new Error('MemoryKv: nested transaction without a plan');
          return { type: 'txn', succeeded: nested.succeeded, results: this.execute(nested, rev, events) };
        }
        default:
          return assertNever(op);
      }
    });
  }

  private holds(compare: Compare): boolean {
    const kv = this.versionAt(compare.key, LATEST);
    let order: number;
    if (compare.target === 'value') {
      if (kv === undefined) return false; // etcd: a missing key has no value to compare
      order = compareBytes(kv.value, compare.value);
    } else if (compare.target === 'lease') {
      // Lease ids have no order: only == and != are allowed (the type says so, as etcd does).
      const same = (kv?.lease ?? '0') === compare.value;
      return compare.op === '==' ? same : !same;
    } else {
      const actual = kv === undefined ? 0 : compare.target === 'mod' ? kv.modRevision : compare.target === 'create' ? kv.createRevision : kv.version;
      order = Math.sign(actual - compare.value);
    }
    const op: CompareOp = compare.op;
    switch (op) {
      case '==':
        return order === 0;
      case '!=':
        return order !== 0;
      case '<':
        return order < 0;
      case '>':
        return order > 0;
      default:
        return assertNever(op);
    }
  }

  // ---- reads --------------------------------------------------------------------------------

  private read(span: Span, at: number, limit: number, fromKey: string | undefined): { kvs: KeyValue[]; more: boolean } {
    const kvs: KeyValue[] = [];
    let more = false;
    if (span.kind === 'key') {
      const kv = fromKey !== undefined && fromKey > span.key ? undefined : this.versionAt(span.key, at);
      if (kv !== undefined) kvs.push(kv);
    } else {
      const start = fromKey !== undefined && fromKey > span.start ? fromKey : span.start;
      const end = span.end;
      this.sortedKeys.scan(start, (key) => {
        if (end !== null && key >= end) return false;
        const kv = this.versionAt(key, at);
        if (kv === undefined) return true;
        if (limit > 0 && kvs.length === limit) {
          more = true;
          return false;
        }
        kvs.push(kv);
        return true;
      });
    }
    for (const kv of kvs) this.counters.bytesRead += byteLength(kv.key) + kv.value.length;
    return { kvs, more };
  }

  /** The live version of `key` at revision `at`, or undefined if it did not exist then. */
  private versionAt(key: string, at: number): KeyValue | undefined {
    const history = this.keys.get(key);
    if (history === undefined) return undefined;
    for (let i = history.length - 1; i >= 0; i--) {
      const kv = history[i] as KeyValue;
      if (kv.modRevision <= at) return kv.version > 0 ? kv : undefined;
    }
    return undefined;
  }

  // ---- writes -------------------------------------------------------------------------------

  private writePut(key: string, value: Uint8Array, lease: string, rev: number, events: WatchEvent[]): void {
    let history = this.keys.get(key);
    if (history === undefined) {
      history = [];
      this.keys.set(key, history);
      this.sortedKeys.insert(key);
    }
    const previous = history.at(-1);
    const live = previous !== undefined && previous.version > 0 ? previous : undefined;
    // Copy: the caller may reuse its buffer, and readers get this object by reference.
    const kv: KeyValue = {
      key,
      value: value.slice(),
      createRevision: live?.createRevision ?? rev,
      modRevision: rev,
      version: (live?.version ?? 0) + 1,
      lease,
    };
    if (live !== undefined && live.lease !== '0' && live.lease !== lease) this.leases.get(live.lease)?.keys.delete(key);
    if (lease !== '0') this.leases.get(lease)?.keys.add(key);
    history.push(kv);
    if (history.length > 1) this.trimQueue.push({ key, revision: rev });
    events.push({ type: 'put', kv });
    this.counters.bytesWritten += byteLength(key) + value.length;
  }

  private writeDelete(span: Span, rev: number, events: WatchEvent[]): number {
    const doomed: string[] = [];
    if (span.kind === 'key') {
      if (this.versionAt(span.key, LATEST) !== undefined) doomed.push(span.key);
    } else {
      const end = span.end;
      this.sortedKeys.scan(span.start, (key) => {
        if (end !== null && key >= end) return false;
        if (this.versionAt(key, LATEST) !== undefined) doomed.push(key);
        return true;
      });
    }
    for (const key of doomed) {
      const history = this.keys.get(key) as KeyValue[];
      const live = history.at(-1) as KeyValue;
      if (live.lease !== '0') this.leases.get(live.lease)?.keys.delete(key);
      // etcd's tombstone: only the key and the deletion's revision.
      const tombstone: KeyValue = { key, value: EMPTY, createRevision: 0, modRevision: rev, version: 0, lease: '0' };
      // A key put earlier in this same transaction (etcd lets a later nested txn delete it) keeps
      // one version per revision: the tombstone replaces the put, as etcd's higher sub-revision wins.
      if (live.modRevision === rev) history[history.length - 1] = tombstone;
      else history.push(tombstone);
      this.trimQueue.push({ key, revision: rev });
      events.push({ type: 'delete', kv: tombstone });
    }
    return doomed.length;
  }

  /** Ends a request: a revision exists only if something changed. */
  private commit(rev: number, events: WatchEvent[]): void {
    if (events.length === 0) return;
    this.revision = rev;
    this.log.push(events);
    this.notify(rev, events);
    const chunk = Math.max(1, Math.floor(this.historyLimit / 4));
    if (this.revision - Math.max(this.compactRevision, 1) >= this.historyLimit + chunk) {
      this.compactTo(this.revision - this.historyLimit);
    }
  }

  /**
   * etcd's compaction: at `revision`, each key keeps its latest version at or below it (dropped
   * too when that is a tombstone) and everything newer.
   */
  private compactTo(revision: number): void {
    const removed = new Set<string>();
    const queue = this.trimQueue;
    let head = this.trimHead;
    for (; head < queue.length; head++) {
      const write = queue[head] as { readonly key: string; readonly revision: number };
      if (write.revision > revision) break;
      const history = this.keys.get(write.key);
      // Removed by an earlier entry of this compaction (a key written several times).
      if (history === undefined) continue;
      let i = history.length - 1;
      while (i >= 0 && (history[i] as KeyValue).modRevision > revision) i--;
      if (i < 0) continue;
      const drop = (history[i] as KeyValue).version === 0 ? i + 1 : i;
      if (drop > 0) history.splice(0, drop);
      if (history.length === 0) {
        this.keys.delete(write.key);
        removed.add(write.key);
      }
    }
    if (head > 1024 && head * 2 > queue.length) {
      this.trimQueue = queue.slice(head);
      head = 0;
    }
    this.trimHead = head;
    if (removed.size > 0) this.sortedKeys.removeAll(removed);
    const dropRevisions = revision - this.logStart;
    if (dropRevisions > 0) {
      this.log.splice(0, dropRevisions);
      this.logStart = revision;
    }
    this.compactRevision = revision;
    // Catching-up watches below the new compact revision learn it at their next flush.
    if (this.unsynced.size > 0) this.scheduleFlush();
  }

  // ---- leases -------------------------------------------------------------------------------

  private expireDueLeases(): void {
    const now = this.clock.now();
    let next = Infinity;
    for (const record of [...this.leases.values()]) {
      if (record.deadline <= now) this.expire(record);
      else next = Math.min(next, record.deadline);
    }
    this.nextLeaseDeadline = next;
  }

  private expire(record: LeaseRecord): void {
    this.revokeLease(record);
    const error = new KvLeaseNotFoundError(record.id);
    record.lostError = error;
    for (const listener of record.lostListeners.splice(0)) queueMicrotask(() => listener(error));
  }

  /** etcd's lessor: all the lease's keys go in one revision, in key order. */
  private revokeLease(record: LeaseRecord): void {
    this.leases.delete(record.id);
    const keys = [...record.keys].sort();
    if (keys.length === 0) return;
    const rev = this.revision + 1;
    const events: WatchEvent[] = [];
    for (const key of keys) this.writeDelete({ kind: 'key', key }, rev, events);
    this.commit(rev, events);
  }

  // ---- watches ------------------------------------------------------------------------------

  private addSynced(watch: MemoryWatch): void {
    watch.state = 'synced';
    let set = this.synced.get(watch.prefix);
    if (set === undefined) {
      set = new Set();
      this.synced.set(watch.prefix, set);
    }
    set.add(watch);
    const length = watch.prefix.length;
    this.prefixLengths.set(length, (this.prefixLengths.get(length) ?? 0) + 1);
  }

  private endWatch(watch: MemoryWatch): void {
    if (watch.state === 'synced') {
      const set = this.synced.get(watch.prefix);
      set?.delete(watch);
      if (set?.size === 0) this.synced.delete(watch.prefix);
      const length = watch.prefix.length;
      const count = (this.prefixLengths.get(length) ?? 1) - 1;
      if (count === 0) this.prefixLengths.delete(length);
      else this.prefixLengths.set(length, count);
    }
    this.unsynced.delete(watch);
    this.toDeliver.delete(watch);
    watch.state = 'over';
    watch.pending = [];
  }

  /** Hands a revision's events to the synced watches whose prefix matches, by prefix lookup. */
  private notify(rev: number, events: readonly WatchEvent[]): void {
    if (this.prefixLengths.size === 0) return;
    for (const event of events) {
      const key = event.kv.key;
      for (const length of this.prefixLengths.keys()) {
        if (key.length < length) continue;
        const set = this.synced.get(length === key.length ? key : key.slice(0, length));
        if (set === undefined) continue;
        for (const watch of set) {
          if (rev < watch.nextRevision) continue;
          watch.pending.push(event);
          this.toDeliver.add(watch);
        }
      }
    }
    if (this.toDeliver.size > 0) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  /**
   * Brings catching-up watches level from the revision log, then delivers every watch's pending
   * events as one batch. Runs in a microtask, so a listener is never called re-entrantly and
   * writes made by listeners are delivered by the next flush.
   */
  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    for (const watch of [...this.unsynced]) {
      if (watch.state !== 'unsynced') continue;
      this.unsynced.delete(watch);
      if (watch.nextRevision < this.compactRevision) {
        watch.state = 'over';
        const compactRevision = this.compactRevision;
        callListener(() => watch.listener.onCompacted(compactRevision));
        continue;
      }
      const end = prefixEnd(watch.prefix);
      for (let rev = Math.max(watch.nextRevision, this.logStart); rev <= this.revision; rev++) {
        for (const event of this.log[rev - this.logStart] as WatchEvent[]) {
          if (inPrefix(event.kv.key, watch.prefix, end)) watch.pending.push(event);
        }
      }
      this.addSynced(watch);
      if (watch.pending.length > 0) this.toDeliver.add(watch);
    }
    const ready = [...this.toDeliver];
    this.toDeliver.clear();
    for (const watch of ready) {
      if (watch.state !== 'synced' || watch.pending.length === 0) continue;
      const events = watch.pending;
      watch.pending = [];
      const batch: WatchBatch = { revision: (events.at(-1) as WatchEvent).kv.modRevision, events };
      watch.nextRevision = batch.revision + 1;
      callListener(() => watch.listener.onBatch(batch));
    }
  }
}

// ---- request checks, as etcd's gRPC layer makes them (etcdserver/api/v3rpc/key.go) ----------

/**
 * etcd's checkTxnRequest: a level may hold at most `budget` compares, success ops and failure ops
 * (each list counted separately), and each nested level gets what the enclosing level left of
 * the budget. Empty keys are refused.
 */
function checkTxnRequest(request: TxnRequest, budget: number): void {
  const used = Math.max(request.compare.length, request.success.length, request.failure.length);
  if (used > budget) throw new KvInvalidRequestError('too many operations in txn request');
  for (const compare of request.compare) requireKey(compare.key);
  for (const ops of [request.success, request.failure]) {
    for (const op of ops) {
      if (op.type === 'txn') checkTxnRequest(op.txn, budget - used);
      else if (op.type === 'put' || op.prefix !== true) requireKey(op.key);
    }
  }
}

function requireKey(key: string): void {
  if (key.length === 0) throw new KvInvalidRequestError('key is not provided');
}

/** What the ops of one branch write: put keys, and deleted keys and ranges. */
interface Writes {
  readonly puts: Set<string>;
  readonly deletedKeys: Set<string>;
  readonly deletedRanges: { start: string; end: string | null }[];
}

/**
 * etcd's checkIntervals, rule for rule: a key may not be put twice, nor put and deleted, by ops
 * that can run together. The success and failure branches of one nested txn exclude each other,
 * so both may put the same key.
 */
function checkIntervals(ops: readonly Op[]): Writes {
  const writes: Writes = { puts: new Set(), deletedKeys: new Set(), deletedRanges: [] };
  const deleted = (key: string): boolean =>
    writes.deletedKeys.has(key) || writes.deletedRanges.some((r) => key >= r.start && (r.end === null || key < r.end));
  const duplicate = (): never => {
    throw new KvInvalidRequestError('duplicate key given in txn request');
  };
  for (const op of ops) {
    if (op.type !== 'delete') continue;
    const span = spanOf(op.key, op.prefix === true);
    if (span.kind === 'key') writes.deletedKeys.add(span.key);
    else writes.deletedRanges.push({ start: span.start, end: span.end });
  }
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    if (putsOnly(op.txn.success) && readsOnly(op.txn.failure)) {
      // A commit's machine group (puts if the guards hold, reads if not): the rules below for
      // that shape, without a Writes per branch. A key put twice in the branch is caught too.
      for (const put of op.txn.success) {
        if (put.type !== 'put') continue;
        if (writes.puts.has(put.key) || deleted(put.key)) duplicate();
        writes.puts.add(put.key);
      }
      continue;
    }
    const then = checkIntervals(op.txn.success);
    const otherwise = checkIntervals(op.txn.failure);
    for (const key of then.puts) {
      if (writes.puts.has(key) || deleted(key)) duplicate();
      writes.puts.add(key);
    }
    for (const key of otherwise.puts) {
      if (writes.puts.has(key) && !then.puts.has(key)) duplicate();
      if (deleted(key)) duplicate();
      writes.puts.add(key);
    }
    for (const branch of [then, otherwise]) {
      for (const key of branch.deletedKeys) writes.deletedKeys.add(key);
      writes.deletedRanges.push(...branch.deletedRanges);
    }
  }
  for (const op of ops) {
    if (op.type !== 'put') continue;
    if (writes.puts.has(op.key) || deleted(op.key)) duplicate();
    writes.puts.add(op.key);
  }
  return writes;
}

/** Whether a branch only puts and reads (no deletes, no nested transactions). */
function putsOnly(ops: readonly Op[]): boolean {
  for (const op of ops) if (op.type !== 'put' && op.type !== 'range') return false;
  return true;
}

/** Whether a branch only reads. */
function readsOnly(ops: readonly Op[]): boolean {
  for (const op of ops) if (op.type !== 'range') return false;
  return true;
}

/** Approximates the encoded request size by its key and value bytes, both branches, all levels. */
function txnBytes(request: TxnRequest): number {
  let size = 0;
  for (const compare of request.compare) {
    size += byteLength(compare.key) + (compare.target === 'value' ? compare.value.length : 8);
  }
  for (const ops of [request.success, request.failure]) {
    for (const op of ops) {
      if (op.type === 'txn') size += txnBytes(op.txn);
      else size += byteLength(op.key) + (op.type === 'put' ? op.value.length : 0);
    }
  }
  return size;
}

// ---- helpers ------------------------------------------------------------------------------

function spanOf(key: string, prefix: boolean): Span {
  if (!prefix) return { kind: 'key', key };
  // etcd: an empty prefix is sent as key "\0" with range end "\0", i.e. every key.
  return key.length === 0 ? { kind: 'range', start: '', end: null } : { kind: 'range', start: key, end: prefixEnd(key) };
}

function inPrefix(key: string, prefix: string, end: string): boolean {
  return prefix.length === 0 || (key >= prefix && key < end);
}

/**
 * A sorted set of keys in blocks of bounded size, so an insert moves at most a block's worth of
 * elements (one big sorted array makes inserting N new keys cost O(N^2)).
 */
class SortedKeys {
  private static readonly MAX_BLOCK = 1024;
  private blocks: string[][] = [];

  /** Adds a key that is not present. */
  insert(key: string): void {
    if (this.blocks.length === 0) {
      this.blocks.push([key]);
      return;
    }
    const b = Math.min(this.blockFor(key), this.blocks.length - 1);
    const block = this.blocks[b] as string[];
    block.splice(lowerBound(block, key), 0, key);
    if (block.length > SortedKeys.MAX_BLOCK) this.blocks.splice(b + 1, 0, block.splice(block.length >>> 1));
  }

  /** Visits keys >= `start` in order while `visit` returns true. */
  scan(start: string, visit: (key: string) => boolean): void {
    const first = this.blockFor(start);
    for (let b = first; b < this.blocks.length; b++) {
      const block = this.blocks[b] as string[];
      for (let i = b === first ? lowerBound(block, start) : 0; i < block.length; i++) {
        if (!visit(block[i] as string)) return;
      }
    }
  }

  /** Removes keys that are present; touches only the blocks that hold them. */
  removeAll(keys: ReadonlySet<string>): void {
    const touched = new Set<number>();
    for (const key of keys) touched.add(this.blockFor(key));
    let emptied = false;
    for (const b of touched) {
      const block = this.blocks[b];
      if (block === undefined) continue;
      const kept = block.filter((key) => !keys.has(key));
      this.blocks[b] = kept;
      if (kept.length === 0) emptied = true;
    }
    if (emptied) this.blocks = this.blocks.filter((block) => block.length > 0);
  }

  /** Index of the first block whose last key is >= `key` (the block count when there is none). */
  private blockFor(key: string): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const block = this.blocks[mid] as string[];
      if ((block[block.length - 1] as string) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** First index whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(a.length - b.length);
}

function byteLength(key: string): number {
  return Buffer.byteLength(key, 'utf8');
}

/** A listener that throws must not break delivery to the others; its error surfaces unhandled. */
function callListener(call: () => void): void {
  try {
    call();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${String(value)}`);
}
