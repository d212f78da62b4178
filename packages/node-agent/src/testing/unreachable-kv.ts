/**
 * A store that can be taken down: while `down` is true every request (reads, writes, lease
 * grants) fails with `KvUnavailableError`, as etcd3 fails them while etcd is unreachable.
 * Watches and leases already open pass through to the inner store untouched (their outage
 * behaviour belongs to the real store; integration tests cover it).
 */
import { KvUnavailableError, type KvStore } from '@omega/cell-state';

export interface UnreachableKv {
  readonly kv: KvStore;
  /** While true, new requests fail. */
  down: boolean;
  /** Requests refused while down. */
  readonly refused: number;
}

/** Wraps `inner`; starts `down` when asked. */
export function unreachableKv(inner: KvStore, options: { down?: boolean } = {}): UnreachableKv {
  const state = { down: options.down === true, refused: 0 };
  const gate = <T>(call: () => Promise<T>): Promise<T> => {
    if (!state.down) return call();
    state.refused++;
    return Promise.reject(new KvUnavailableError('etcd unavailable (test store is down)'));
  };
  const kv: KvStore = {
    get limits() {
      return inner.limits;
    },
    get counters() {
      return inner.counters;
    },
    range: (request) => gate(() => inner.range(request)),
    txn: (request) => gate(() => inner.txn(request)),
    put: (key, value, putOptions) => gate(() => inner.put(key, value, putOptions)),
    delete: (key, deleteOptions) => gate(() => inner.delete(key, deleteOptions)),
    watch: (prefix, fromRevision, listener) => inner.watch(prefix, fromRevision, listener),
    grantLease: (ttlSeconds, leaseOptions) => gate(() => inner.grantLease(ttlSeconds, leaseOptions)),
    compact: (revision) => gate(() => inner.compact(revision)),
    currentRevision: () => gate(() => inner.currentRevision()),
    close: () => inner.close(),
  };
  return {
    kv,
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    get refused() {
      return state.refused;
    },
  };
}
