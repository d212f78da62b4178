import { describe, expect, it } from 'vitest';
import type { KeyValue } from './kv.js';
import { RecallCache } from './recall-cache.js';

function kv(key: string, bytes: number, modRevision = 1): KeyValue {
  return { key, value: new Uint8Array(bytes), createRevision: 1, modRevision, version: 1, lease: '0' };
}

describe('a recall cache', () => {
  it('keeps the newest version of each key and hands it out once', () => {
    const cache = new RecallCache({ maxEntries: 4, maxBytes: 100 });
    cache.remember(kv('a', 10, 1));
    cache.remember(kv('a', 20, 2));
    expect(cache.size).toBe(1);
    expect(cache.heldBytes).toBe(20);
    expect(cache.take('a')?.modRevision).toBe(2);
    expect(cache.take('a')).toBeUndefined();
    expect([cache.hits, cache.misses, cache.heldBytes]).toEqual([1, 1, 0]);
  });

  it('forgets a deleted key', () => {
    const cache = new RecallCache({ maxEntries: 4, maxBytes: 100 });
    cache.remember(kv('a', 10));
    cache.forget('a');
    expect(cache.take('a')).toBeUndefined();
    expect(cache.heldBytes).toBe(0);
  });

  it('never holds more than its entries or bytes, evicting the oldest first', () => {
    const cache = new RecallCache({ maxEntries: 3, maxBytes: 50 });
    for (const key of ['a', 'b', 'c', 'd']) cache.remember(kv(key, 10));
    expect(cache.size).toBe(3);
    expect(cache.take('a')).toBeUndefined();
    cache.remember(kv('big', 40));
    expect(cache.heldBytes).toBeLessThanOrEqual(50);
    expect(cache.take('big')).toBeDefined();
    expect(cache.take('b')).toBeUndefined();
    cache.remember(kv('huge', 51));
    expect(cache.take('huge')).toBeUndefined();
    for (let i = 0; i < 10_000; i++) cache.remember(kv(`k${i}`, 7));
    expect(cache.size).toBeLessThanOrEqual(3);
    expect(cache.heldBytes).toBeLessThanOrEqual(50);
  });

  it('refuses limits that are not whole numbers >= 0, naming the field', () => {
    expect(() => new RecallCache({ maxEntries: -1, maxBytes: 10 })).toThrow(/recall\.maxEntries/);
    expect(() => new RecallCache({ maxEntries: 1, maxBytes: 1.5 })).toThrow(/recall\.maxBytes/);
  });
});
