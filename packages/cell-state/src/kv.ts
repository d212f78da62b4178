/**
 * The key-value contract under the cell state: the part of etcd's API that Omega uses, with
 * etcd's semantics (one global revision, per-key create/mod revisions and versions, compare-and-
 * swap transactions that may nest, watches from a past revision, leases, compaction).
 *
 * Two implementations obey it: {@link EtcdKv} (the real cell) and {@link MemoryKv} (unit tests
 * and the simulator). Everything above this file (commit, mirror, registration) is written once
 * against this interface, so the same commit semantics hold on both. The KV contract suite in
 * `testing/` runs against both.
 *
 * Revisions are JavaScript numbers: etcd sends them as decimal strings, which are parsed once at
 * the etcd boundary (checked to be safe integers) and never compared as strings.
 */

/** A key with its value and etcd metadata. Keys are UTF-8 strings. */
export interface KeyValue {
  readonly key: string;
  readonly value: Uint8Array;
  /** Revision of the key's creation. */
  readonly createRevision: number;
  /** Revision of the key's last modification: Omega's sequence number for machine keys. */
  readonly modRevision: number;
  /** Number of modifications since creation (1 after the first put). */
  readonly version: number;
  /** Lease id the key is bound to, `'0'` when none. */
  readonly lease: string;
}

/** What a compare looks at, as in etcd's `Compare.CompareTarget`. */
export type CompareTarget = 'mod' | 'create' | 'version' | 'value' | 'lease';
export type CompareOp = '==' | '!=' | '<' | '>';

/**
 * One guard of a transaction. A missing key compares as create = mod = version = 0 and lease
 * `'0'` (as in etcd), and a `value` compare against a missing key is false. A `lease` compare
 * (etcd 3.3+) is `==` or `!=` of the key's lease id: "this key is still bound to my lease" in
 * one guard, without reading the key first.
 */
export type Compare =
  | { readonly key: string; readonly target: 'mod' | 'create' | 'version'; readonly op: CompareOp; readonly value: number }
  | { readonly key: string; readonly target: 'value'; readonly op: CompareOp; readonly value: Uint8Array }
  | { readonly key: string; readonly target: 'lease'; readonly op: '==' | '!='; readonly value: string };

/** A read inside a transaction or on its own. `prefix` ranges over every key starting with `key`. */
export interface RangeOp {
  readonly type: 'range';
  readonly key: string;
  readonly prefix?: boolean;
}

export interface PutOp {
  readonly type: 'put';
  readonly key: string;
  readonly value: Uint8Array;
  /** Lease id to bind the key to (`'0'` or absent: none). */
  readonly lease?: string;
}

export interface DeleteOp {
  readonly type: 'delete';
  readonly key: string;
  readonly prefix?: boolean;
}

export interface TxnOp {
  readonly type: 'txn';
  readonly txn: TxnRequest;
}

export type Op = RangeOp | PutOp | DeleteOp | TxnOp;

/**
 * A transaction: if every compare holds, run `success`, else `failure`. Ops may be nested
 * transactions (etcd 3.3+). As in etcd, no key may be written twice in one transaction,
 * counting nested ones along a branch; implementations reject such a request with
 * {@link KvInvalidRequestError} and write nothing.
 */
export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly Op[];
  readonly failure: readonly Op[];
}

export type OpResult =
  | { readonly type: 'range'; readonly kvs: readonly KeyValue[] }
  | { readonly type: 'put' }
  | { readonly type: 'delete'; readonly deleted: number }
  | { readonly type: 'txn'; readonly succeeded: boolean; readonly results: readonly OpResult[] };

export interface TxnResult {
  readonly succeeded: boolean;
  /** The store's revision after the transaction (unchanged when it wrote nothing). */
  readonly revision: number;
  /** One result per op of the branch that ran. */
  readonly results: readonly OpResult[];
}

export interface RangeRequest {
  /** The key, or the prefix when `prefix` is set. */
  readonly key: string;
  readonly prefix?: boolean;
  /** For paging: start at this key (inclusive) instead of `key`, staying within the prefix. */
  readonly fromKey?: string;
  /** At most this many keys (0 or absent: no limit). Keys come sorted by key, ascending. */
  readonly limit?: number;
  /** Read at this past revision (0 or absent: the latest). */
  readonly revision?: number;
}

export interface RangeResult {
  readonly kvs: readonly KeyValue[];
  /** More keys exist in the range beyond `limit`. */
  readonly more: boolean;
  /** The revision the read saw (the store's revision when reading the latest). */
  readonly revision: number;
}

/** A change seen by a watch. For `delete`, `kv.value` is empty and `kv.modRevision` is the deletion's revision. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
}

/**
 * Events delivered together: all the events of one or more whole revisions, in revision order
 * (a transaction's events are never split across batches). `revision` is the store revision the
 * batch brings the watcher up to (a batch with no events is a progress notification).
 */
export interface WatchBatch {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
}

export interface WatchListener {
  onBatch(batch: WatchBatch): void;
  /**
   * The watch cannot continue because the revision it needs was compacted away. The watch is
   * over; the caller re-lists and watches again.
   */
  onCompacted(compactRevision: number): void;
  /** The connection dropped; the implementation resumes by itself from the next undelivered revision. */
  onDisconnected?(error: Error): void;
  onReconnected?(): void;
}

export interface WatchHandle {
  /** Stops delivery; no batch arrives after the returned promise resolves. */
  cancel(): Promise<void>;
}

/**
 * A lease as etcd grants it. With `autoKeepAlive` the implementation refreshes it until revoked
 * or until the store is closed; `onLost` runs once if the lease expired or could not be kept.
 */
export interface KvLease {
  readonly id: string;
  readonly ttlSeconds: number;
  revoke(): Promise<void>;
  onLost(listener: (error: Error) => void): void;
  /**
   * With `autoKeepAlive`: `listener` runs after each keep-alive etcd acknowledged, with how long
   * ago (ms) that keep-alive was sent: etcd refreshed the lease no earlier than that, which is
   * what a holder that must stop acting without its lease counts from. Optional: a store whose
   * leases do not expire by themselves (MemoryKv) has nothing to report.
   */
  onRenewed?(listener: (sentAgoMs: number) => void): void;
}

/** Server limits the commit path must respect. */
export interface KvLimits {
  /** Most ops (or compares) in one transaction level: etcd's `--max-txn-ops`. */
  readonly maxTxnOps: number;
  /** Largest request in bytes: etcd's `--max-request-bytes`. */
  readonly maxRequestBytes: number;
}

/** etcd's defaults: 128 ops, 1.5 MiB. */
export const ETCD_DEFAULT_LIMITS: KvLimits = { maxTxnOps: 128, maxRequestBytes: 1.5 * 1024 * 1024 };

/** Counters of what a store did, for benchmarks and metrics. */
export interface KvCounters {
  /** Requests sent (range, txn, put, delete, lease calls). */
  roundTrips: number;
  /** Bytes of keys and values written by puts. */
  bytesWritten: number;
  /** Bytes of keys and values read by ranges. */
  bytesRead: number;
}

export interface KvStore {
  readonly limits: KvLimits;
  readonly counters: KvCounters;
  range(request: RangeRequest): Promise<RangeResult>;
  txn(request: TxnRequest): Promise<TxnResult>;
  /** Plain put (no guard); resolves to the revision it created. */
  put(key: string, value: Uint8Array, options?: { lease?: string }): Promise<number>;
  /** Deletes a key or prefix; resolves to the number deleted. */
  delete(key: string, options?: { prefix?: boolean }): Promise<number>;
  /**
   * Watches every key under `prefix` from `fromRevision` (inclusive). Delivery is asynchronous
   * and in order; a listener's `onBatch` is never called re-entrantly.
   */
  watch(prefix: string, fromRevision: number, listener: WatchListener): WatchHandle;
  grantLease(ttlSeconds: number, options?: { autoKeepAlive?: boolean }): Promise<KvLease>;
  /** Discards history before `revision` (etcd's compaction). */
  compact(revision: number): Promise<void>;
  /** The latest revision (one round trip on etcd). */
  currentRevision(): Promise<number>;
  /** Releases connections and timers. Leases with keep-alive stop being refreshed. */
  close(): Promise<void>;
}

/** Base of the errors a KV store raises; `retryable` says whether trying again may succeed. */
export class KvError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The store refused the request as malformed or over its limits; nothing was written. */
export class KvInvalidRequestError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, false, options);
  }
}

/** A read asked for a revision that was compacted away. */
export class KvCompactedError extends KvError {
  constructor(
    readonly compactRevision: number,
    options?: { cause?: unknown },
  ) {
    super(`revision compacted (compact revision ${compactRevision})`, false, options);
  }
}

/** The store could not be reached or did not answer in time. Whether a write applied is unknown. */
export class KvUnavailableError extends KvError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, true, options);
  }
}

/** The lease does not exist (expired or revoked). */
export class KvLeaseNotFoundError extends KvError {
  constructor(leaseId: string, options?: { cause?: unknown }) {
    super(`lease ${leaseId} not found`, false, options);
  }
}

/**
 * The store refused the request because the caller's identity may not do it (etcd's role-based
 * access: "permission denied"). Nothing was written. Not retryable: the same request will be
 * refused again until an administrator changes the roles, so it must not be retried as an outage.
 */
export class KvPermissionDeniedError extends KvError {
  constructor(
    /** The keys the refused request touched, as `key` or `prefix*` (at most a few). */
    readonly keys: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`permission denied by the store's access control (keys ${keys.join(', ') || 'unknown'}): this identity's etcd role does not allow it`, false, options);
  }
}

/** The key range that `prefix` covers: `[prefix, prefixEnd(prefix))`. */
export function prefixEnd(prefix: string): string {
  // Keys are compared as UTF-8 bytes; every key Omega writes is ASCII, so incrementing the last
  // character matches etcd's byte-wise range end.
  if (prefix.length === 0) return '\0';
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
