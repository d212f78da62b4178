import { MemoryKv, type KvLease } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { LeaseKeeper, NoLeaseError } from './lease-keeper.js';
import { flushAsync } from './testing/index.js';

describe('the lease keeper', () => {
  it('reports the loss of the lease it holds once, ignores a late loss of an earlier lease, and throws while it holds none', async () => {
    const kv = new MemoryKv();
    const lost: string[] = [];
    const first = await kv.grantLease(10, { autoKeepAlive: true });
    const keeper = new LeaseKeeper(() => kv.grantLease(10, { autoKeepAlive: true }), (_error, lease) => lost.push(lease.id), first);
    const start = keeper.generation;
    expect(keeper.current()).toBe(first);

    kv.expireLease(first.id);
    await flushAsync();
    expect(lost).toEqual([first.id]);
    expect(keeper.held).toBeUndefined();
    expect(() => keeper.current()).toThrow(NoLeaseError);
    expect(keeper.generation).toBe(start + 1);

    const second: KvLease = await keeper.grant();
    expect(keeper.current()).toBe(second);
    expect(keeper.generation).toBe(start + 2);
    await expect(keeper.grant()).rejects.toThrow(/while a lease is held/);

    kv.expireLease(second.id);
    await flushAsync();
    expect(lost).toEqual([first.id, second.id]);
    await kv.close();
  });

  it('ignores a late loss event of a lease it no longer holds', async () => {
    const listeners = new Map<string, (error: Error) => void>();
    const fake = (id: string): KvLease => ({ id, ttlSeconds: 2, revoke: async () => undefined, onLost: (l) => void listeners.set(id, l) });
    const lost: string[] = [];
    const keeper = new LeaseKeeper(async () => fake('b'), (_error, lease) => lost.push(lease.id), fake('a'));
    listeners.get('a')?.(new Error('lost'));
    await keeper.grant();
    listeners.get('a')?.(new Error('lost again'));
    expect(keeper.held?.id).toBe('b');
    expect(lost).toEqual(['a']);
    listeners.get('b')?.(new Error('lost'));
    expect(lost).toEqual(['a', 'b']);
    expect(keeper.held).toBeUndefined();
  });
});
