/**
 * A store that loses replies: the fault etcd3's own retries turn into a duplicate write.
 *
 * ```
 *  caller ──► txn/put/delete ──► inner store applies it ──► reply lost
 *                                       │
 *                                       └─► sent again (as etcd3 does after UNAVAILABLE /
 *                                           DEADLINE_EXCEEDED) ──► the caller sees only this reply
 * ```
 *
 * Every write the `replay` predicate selects is applied twice in a row and the caller gets the
 * second reply, exactly what a client sees when its first attempt was applied by the server but
 * the answer never arrived. With `lose: 'throw'` the caller gets a {@link KvUnavailableError}
 * instead of the second reply (the write was applied once; whether it was is unknown to the
 * caller), which is what our own code sees when etcd3 gives up. Reads pass through untouched.
 *
 * A write that is idempotent shows one effect either way; one that is not shows two.
 */
import { KvUnavailableError, type KvStore, type TxnRequest, type TxnResult } from '../kv.js';

/** One write as the predicate sees it. */
export type ReplayedWrite =
  | { readonly type: 'txn'; readonly request: TxnRequest }
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array; readonly lease?: string }
  | { readonly type: 'delete'; readonly key: string; readonly prefix?: boolean };

export interface ReplayOptions {
  /** Which writes lose their reply. Default: every write. */
  readonly replay?: (write: ReplayedWrite) => boolean;
  /** Replay only this many writes, then pass everything through (default: no limit). */
  readonly limit?: number;
  /** `resend` (default): apply again and return the second reply; `throw`: apply once, then fail as unavailable. */
  readonly lose?: 'resend' | 'throw';
}

export interface ReplayCounters {
  /** Writes whose reply was lost. */
  replayed: number;
}

/** The keys a transaction writes, nested transactions included (both branches). */
export function keysWritten(request: TxnRequest): string[] {
  const keys: string[] = [];
  const visit = (txn: TxnRequest): void => {
    for (const op of [...txn.success, ...txn.failure]) {
      if (op.type === 'put' || op.type === 'delete') keys.push(op.key);
      else if (op.type === 'txn') visit(op.txn);
    }
  };
  visit(request);
  return keys;
}

/** Wraps `inner`; see the file header. */
export function replayingKv(inner: KvStore, options: ReplayOptions = {}): { kv: KvStore; counters: ReplayCounters } {
  const counters: ReplayCounters = { replayed: 0 };
  const selected = (write: ReplayedWrite): boolean => counters.replayed < (options.limit ?? Infinity) && (options.replay?.(write) ?? true);
  const lost = (): never => {
    throw new KvUnavailableError('etcd unavailable: reply lost (replaying test store)');
  };

  const txn = async (request: TxnRequest): Promise<TxnResult> => {
    if (!selected({ type: 'txn', request })) return inner.txn(request);
    counters.replayed++;
    await inner.txn(request);
    return options.lose === 'throw' ? lost() : inner.txn(request);
  };
  const put = async (key: string, value: Uint8Array, putOptions?: { lease?: string }): Promise<number> => {
    if (!selected({ type: 'put', key, value, ...(putOptions?.lease === undefined ? {} : { lease: putOptions.lease }) })) return inner.put(key, value, putOptions);
    counters.replayed++;
    await inner.put(key, value, putOptions);
    return options.lose === 'throw' ? lost() : inner.put(key, value, putOptions);
  };
  const del = async (key: string, deleteOptions?: { prefix?: boolean }): Promise<number> => {
    if (!selected({ type: 'delete', key, ...(deleteOptions?.prefix === undefined ? {} : { prefix: deleteOptions.prefix }) })) return inner.delete(key, deleteOptions);
    counters.replayed++;
    await inner.delete(key, deleteOptions);
    return options.lose === 'throw' ? lost() : inner.delete(key, deleteOptions);
  };

  const overrides: Record<string, unknown> = { txn, put, delete: del };
  const kv = new Proxy(inner, {
    get(target, property, receiver) {
      if (typeof property === 'string' && property in overrides) return overrides[property];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { kv, counters };
}
