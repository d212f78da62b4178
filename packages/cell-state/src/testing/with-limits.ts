/**
 * A store that declares smaller server limits than it has: exercises the splitting of large
 * transactions and reads without a specially configured server.
 */
import type { KvLimits, KvStore } from '../kv.js';

/** The same store, every call forwarded to it, with `limits` in place of its own. */
export function withLimits(kv: KvStore, limits: KvLimits): KvStore {
  return new Proxy(kv, {
    get(target, property, receiver) {
      if (property === 'limits') return limits;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
