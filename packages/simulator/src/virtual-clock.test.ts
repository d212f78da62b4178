import { describe, expect, it } from 'vitest';
import { MemoryKv } from '@omega/cell-state';
import { VirtualClock } from './virtual-clock.js';

describe('VirtualClock', () => {
  it('wakes sleepers in time order, ties in the order they slept, without real waiting', async () => {
    const clock = new VirtualClock(1000);
    const woke: string[] = [];
    const sleeper = async (name: string, ms: number) => {
      await clock.sleep(ms);
      woke.push(`${name}@${clock.now()}`);
    };
    void sleeper('c', 3_600_000);
    void sleeper('a', 10);
    void sleeper('b', 10);
    await clock.runUntil(1000 + 3_600_000);
    expect(woke).toEqual(['a@1010', 'b@1010', 'c@3601000']);
  });

  it('lets async work started by a timer finish before time moves on', async () => {
    const clock = new VirtualClock();
    const kv = new MemoryKv();
    const seen: number[] = [];
    kv.watch('/k/', 0, { onBatch: (b) => seen.push(clock.now()), onCompacted: () => undefined });
    const worker = async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(100);
        await kv.put(`/k/${i}`, new Uint8Array([i]));
        await kv.range({ key: '/k/', prefix: true });
      }
    };
    void worker();
    await clock.runUntil(1000);
    expect(seen).toEqual([100, 200, 300]);
    expect(clock.now()).toBe(1000);
  });

  it('wakes an aborted sleep at once', async () => {
    const clock = new VirtualClock();
    const controller = new AbortController();
    let woke = -1;
    void clock.sleep(1_000_000, controller.signal).then(() => {
      woke = clock.now();
    });
    controller.abort();
    await clock.runUntil(0);
    expect(woke).toBe(0);
  });
});
