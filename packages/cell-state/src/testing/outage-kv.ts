/**
 * A store that can go away, for tests of what a process does during an etcd outage.
 *
 * - `stop()`: requests hang until `resume()` and then run, as with a SIGSTOPped etcd (the
 *   connection stays up, nothing answers);
 * - `refuse()`: requests fail at once with KvUnavailableError, as with etcd down (connection
 *   refused) or etcd3's open circuit breaker;
 * - `resume()`: back to normal; hung requests proceed.
 *
 * Watches and leases already open pass through untouched (their outage behaviour belongs to the
 * real store; integration tests cover it); only requests are affected.
 */
import { KvUnavailableError, type KvStore } from '../kv.js';

export interface OutageKv {
  readonly kv: KvStore;
  stop(): void;
  refuse(): void;
  resume(): void;
  /** Requests refused so far (while refusing). */
  readonly refused: number;
}

const REQUESTS = new Set(['range', 'txn', 'put', 'delete', 'grantLease', 'compact', 'currentRevision']);

/** Wraps `inner`, up at first. */
export function outageKv(inner: KvStore): OutageKv {
  let mode: 'up' | 'stopped' | 'refusing' = 'up';
  let resumed: Promise<void> = Promise.resolve();
  let release: () => void = () => undefined;
  let refused = 0;
  const kv = new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const fn = (value as (...args: unknown[]) => unknown).bind(target);
      if (typeof property !== 'string' || !REQUESTS.has(property)) return fn;
      return async (...args: unknown[]) => {
        if (mode === 'refusing') {
          refused++;
          throw new KvUnavailableError('etcd unavailable: connection refused (test outage)');
        }
        if (mode === 'stopped') await resumed;
        return fn(...args);
      };
    },
  });
  return {
    kv,
    stop: () => {
      if (mode === 'stopped') return;
      mode = 'stopped';
      resumed = new Promise((resolve) => (release = resolve));
    },
    refuse: () => {
      release();
      mode = 'refusing';
    },
    resume: () => {
      mode = 'up';
      release();
    },
    get refused() {
      return refused;
    },
  };
}
