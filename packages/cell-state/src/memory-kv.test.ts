import { describe, expect, it } from 'vitest';
import { ETCD_DEFAULT_LIMITS, KvCompactedError, KvInvalidRequestError, KvLeaseNotFoundError, type WatchBatch } from './kv.js';
import { MemoryKv } from './memory-kv.js';
import { describeKvContract } from './testing/kv-contract.js';

describeKvContract('MemoryKv', async () => {
  const kv = new MemoryKv();
  return { kv, close: () => kv.close() };
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Lets queued microtasks (watch deliveries, onLost) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('MemoryKv beyond the contract', () => {
  it('starts empty at revision 1, as etcd does, and its first write makes it 2', async () => {
    const kv = new MemoryKv();
    expect(await kv.currentRevision()).toBe(1);
    expect(await kv.put('k', bytes('v'))).toBe(2);
  });

  it('expires a lease without keep-alive once the clock reaches its TTL, deleting its keys and calling onLost', async () => {
    const clock = manualClock();
    const kv = new MemoryKv({ clock });
    const lease = await kv.grantLease(10);
    const lost: Error[] = [];
    lease.onLost((error) => lost.push(error));
    await kv.put('alive/m1', bytes('x'), { lease: lease.id });
    const batches: WatchBatch[] = [];
    kv.watch('alive/', (await kv.currentRevision()) + 1, { onBatch: (b) => batches.push(b), onCompacted: () => undefined });

    clock.advance(9_999);
    expect((await kv.range({ key: 'alive/m1' })).kvs).toHaveLength(1);
    clock.advance(1);
    expect((await kv.range({ key: 'alive/m1' })).kvs).toHaveLength(0);
    await settle();
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(KvLeaseNotFoundError);
    expect(batches.flatMap((b) => b.events.map((e) => `${e.type} ${e.kv.key}`))).toEqual(['delete alive/m1']);
    await expect(kv.put('alive/m1', bytes('x'), { lease: lease.id })).rejects.toBeInstanceOf(KvLeaseNotFoundError);
  });

  it('never expires a keep-alive lease by the clock', async () => {
    const clock = manualClock();
    const kv = new MemoryKv({ clock });
    const lease = await kv.grantLease(1, { autoKeepAlive: true });
    await kv.put('k', bytes('v'), { lease: lease.id });
    clock.advance(3_600_000);
    expect((await kv.range({ key: 'k' })).kvs).toHaveLength(1);
  });

  it('expires a lease at once through expireLease, and calls onLost even when registered late', async () => {
    const kv = new MemoryKv();
    const lease = await kv.grantLease(60, { autoKeepAlive: true });
    await kv.put('a', bytes('1'), { lease: lease.id });
    await kv.put('b', bytes('2'), { lease: lease.id });
    const before = await kv.currentRevision();
    kv.expireLease(lease.id);
    expect(await kv.currentRevision()).toBe(before + 1);
    expect((await kv.range({ key: '', prefix: true })).kvs).toEqual([]);
    const lost: Error[] = [];
    lease.onLost((error) => lost.push(error));
    await settle();
    expect(lost).toHaveLength(1);
    expect(() => kv.expireLease(lease.id)).toThrow(KvLeaseNotFoundError);
  });

  it('moves a key to its new lease when it is put again with another lease', async () => {
    const kv = new MemoryKv();
    const first = await kv.grantLease(60);
    const second = await kv.grantLease(60);
    await kv.put('k', bytes('1'), { lease: first.id });
    await kv.put('k', bytes('2'), { lease: second.id });
    await first.revoke();
    expect((await kv.range({ key: 'k' })).kvs[0]?.lease).toBe(second.id);
    await second.revoke();
    expect((await kv.range({ key: 'k' })).kvs).toEqual([]);
  });

  it('compacts history older than historyLimit by itself, keeping at least the last historyLimit revisions', async () => {
    const kv = new MemoryKv({ historyLimit: 10 });
    for (let i = 0; i < 40; i++) await kv.put(`k${i % 3}`, bytes(String(i)));
    const now = await kv.currentRevision();
    await expect(kv.range({ key: 'k0', revision: 2 })).rejects.toBeInstanceOf(KvCompactedError);
    const old = await kv.range({ key: '', prefix: true, revision: now - 10 });
    expect(old.kvs).toHaveLength(3);
    const compactions: number[] = [];
    kv.watch('', 2, { onBatch: () => undefined, onCompacted: (r) => compactions.push(r) });
    await settle();
    expect(compactions).toHaveLength(1);
    expect(compactions[0]).toBeGreaterThan(2);
    expect(compactions[0]).toBeLessThanOrEqual(now - 10);
  });

  it('forgets deleted keys at compaction, so ranges at the compact revision no longer see them', async () => {
    const kv = new MemoryKv();
    await kv.put('gone', bytes('x'));
    await kv.delete('gone');
    const rev = await kv.put('kept', bytes('y'));
    await kv.compact(rev);
    expect((await kv.range({ key: '', prefix: true, revision: rev })).kvs.map((x) => x.key)).toEqual(['kept']);
    await expect(kv.compact(rev)).rejects.toBeInstanceOf(KvCompactedError);
  });

  it('honours etcd limits when it is given them', async () => {
    const kv = new MemoryKv({ limits: ETCD_DEFAULT_LIMITS });
    const puts = Array.from({ length: 129 }, (_, i) => ({ type: 'put', key: `k${i}`, value: bytes('v') }) as const);
    await expect(kv.txn({ compare: [], success: puts, failure: [] })).rejects.toThrow(KvInvalidRequestError);
    await expect(kv.txn({ compare: [], success: puts.slice(1), failure: [] })).resolves.toMatchObject({ succeeded: true });
    await expect(kv.put('big', new Uint8Array(ETCD_DEFAULT_LIMITS.maxRequestBytes))).rejects.toBeInstanceOf(KvInvalidRequestError);
  });

  it('keeps stored values independent of the caller reusing its buffer', async () => {
    const kv = new MemoryKv();
    const buffer = bytes('one');
    await kv.put('k', buffer);
    buffer.set(bytes('two'));
    expect(new TextDecoder().decode((await kv.range({ key: 'k' })).kvs[0]?.value)).toBe('one');
  });

  it('delivers writes made by a listener in a later batch, never re-entrantly', async () => {
    const kv = new MemoryKv();
    let depth = 0;
    let maxDepth = 0;
    const seen: number[] = [];
    kv.watch('n/', 2, {
      onBatch: (batch) => {
        depth++;
        maxDepth = Math.max(maxDepth, depth);
        seen.push(batch.revision);
        if (seen.length < 3) void kv.put(`n/${seen.length}`, bytes('x'));
        depth--;
      },
      onCompacted: () => undefined,
    });
    await kv.put('n/0', bytes('x'));
    for (let i = 0; i < 5; i++) await settle();
    expect(seen).toEqual([2, 3, 4]);
    expect(maxDepth).toBe(1);
  });

  it('refuses every operation after close', async () => {
    const kv = new MemoryKv();
    await kv.close();
    await expect(kv.currentRevision()).rejects.toThrow(/closed/);
  });
});
