/**
 * RecallCache: the newest versions of records a filtered mirror refused, kept undecoded in a
 * small bounded cache, so that when the filter starts admitting one of them
 * ({@link CellMirror.refilter}) the mirror holds it without a read from the store.
 *
 * ```
 *   watch put, filter refuses ──► remember(kv)   (replaces the key's older version)
 *   watch delete of that key ───► forget(key)
 *   re-list ────────────────────► clear()        (deletes may have been missed)
 *   refilter admits the key ────► take(key) ─► held as if the watch had just delivered it
 * ```
 *
 * Why it is exact: the mirror applies watch events in revision order and offers every refused
 * put and every delete of a recalled kind here, so an entry is always the key's newest version
 * as of the mirror's revision; a key not found (never seen, or evicted) is read from the store
 * as before. Bounded by entries and by value bytes, oldest first out: a process's memory never
 * grows with the cell, only the hit rate falls when more records arrive between a refusal and
 * an admission than the cache holds.
 */
import type { KeyValue } from './kv.js';

export interface RecallLimits {
  /** Records held at most. */
  readonly maxEntries: number;
  /** Value bytes held at most (keys and bookkeeping come on top: ~200 bytes per entry). */
  readonly maxBytes: number;
}

export class RecallCache {
  /** Insertion order is age order: a re-remembered key moves to the end. */
  private readonly entries = new Map<string, KeyValue>();
  private bytes = 0;
  /** Admissions answered from the cache, and those that had to read (for tests and metrics). */
  hits = 0;
  misses = 0;

  constructor(private readonly limits: RecallLimits) {
    if (!Number.isInteger(limits.maxEntries) || limits.maxEntries < 0) throw new RangeError(`recall.maxEntries must be a whole number >= 0, got ${limits.maxEntries}`);
    if (!Number.isInteger(limits.maxBytes) || limits.maxBytes < 0) throw new RangeError(`recall.maxBytes must be a whole number >= 0, got ${limits.maxBytes}`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Value bytes held now. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Remembers `kv` as its key's newest version (a record larger than `maxBytes` is only forgotten). */
  remember(kv: KeyValue): void {
    this.forget(kv.key);
    if (kv.value.length > this.limits.maxBytes || this.limits.maxEntries === 0) return;
    this.entries.set(kv.key, kv);
    this.bytes += kv.value.length;
    while (this.entries.size > this.limits.maxEntries || this.bytes > this.limits.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.forget(oldest.value);
    }
  }

  /** The key was deleted (or is held elsewhere now): nothing of it is remembered. */
  forget(key: string): void {
    const held = this.entries.get(key);
    if (held === undefined) return;
    this.entries.delete(key);
    this.bytes -= held.value.length;
  }

  /** The remembered version of `key`, removed from the cache; undefined when not remembered. */
  take(key: string): KeyValue | undefined {
    const held = this.entries.get(key);
    if (held === undefined) {
      this.misses++;
      return undefined;
    }
    this.forget(key);
    this.hits++;
    return held;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
