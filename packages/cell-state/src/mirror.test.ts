import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import type { KvStore, WatchBatch, WatchHandle, WatchListener } from './kv.js';
import { MemoryKv } from './memory-kv.js';
import { machineId } from './types.js';
import { machine } from './testing/builders.js';
import { freshCellName, withLimits } from './testing/cell-contract.js';
import type { CellMirror } from './mirror.js';

/**
 * A store whose watches the test controls: it can deliver every batch twice (as etcd 3.4 may
 * around reconnects), hold batches back, or end the watch as compacted.
 */
class ControlledWatchKv {
  readonly kv: KvStore;
  duplicate = false;
  private listeners: WatchListener[] = [];
  private held = false;
  private heldBatches: { listener: WatchListener; batch: WatchBatch }[] = [];

  constructor(inner: KvStore) {
    this.kv = new Proxy(inner, {
      get: (target, property, receiver) => {
        if (property === 'watch') return (prefix: string, from: number, listener: WatchListener) => this.watch(target, prefix, from, listener);
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  private watch(inner: KvStore, prefix: string, from: number, listener: WatchListener): WatchHandle {
    this.listeners.push(listener);
    const handle = inner.watch(prefix, from, {
      onBatch: (batch) => {
        if (this.held) {
          this.heldBatches.push({ listener, batch });
          return;
        }
        listener.onBatch(batch);
        if (this.duplicate) listener.onBatch(batch);
      },
      onCompacted: (rev) => listener.onCompacted(rev),
    });
    return handle;
  }

  /** Stops delivering batches (they are lost if the watch then ends). */
  hold(): void {
    this.held = true;
  }

  /** Ends every watch as compacted at `revision`, dropping held batches, and resumes delivery. */
  compactWatches(revision: number): void {
    this.heldBatches = [];
    this.held = false;
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l.onCompacted(revision);
  }
}

describe('CellMirror', () => {
  const mirrors: CellMirror[] = [];
  afterEach(async () => {
    for (const m of mirrors.splice(0)) await m.stop();
  });

  it('lists a cell in pages at one revision and then follows it', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    for (let i = 0; i < 25; i++) await cell.registerMachine(machine(`m${i}`).build());
    const mirror = cell.mirror({ pageSize: 4 });
    mirrors.push(mirror);
    await mirror.start();
    expect(mirror.snapshot().machineCount).toBe(25);
    expect(mirror.revision).toBe(await kv.currentRevision());
    await cell.registerMachine(machine('late').build());
    await mirror.waitForRevision(await kv.currentRevision());
    expect(mirror.snapshot().machine(machineId('late'))).toBeDefined();
    expect(mirror.counters.lists).toBe(1);
  });

  it('applies duplicated watch events once', async () => {
    const controlled = new ControlledWatchKv(new MemoryKv());
    controlled.duplicate = true;
    const cell = new Cell(controlled.kv, freshCellName());
    const mirror = cell.mirror();
    mirrors.push(mirror);
    await mirror.start();
    const changes: number[] = [];
    mirror.onChange((c) => changes.push(c.changes.length));
    await cell.registerMachine(machine('a').build());
    await cell.setSchedulable(machineId('a'), false, 'test');
    await mirror.waitForRevision(await controlled.kv.currentRevision());
    expect(mirror.snapshot().machine(machineId('a'))?.schedulable).toBe(false);
    expect(mirror.counters.duplicates).toBe(2);
    expect(changes).toEqual([1, 1]);
  });

  it('re-lists the cell when the revision its watch needs was compacted, and misses nothing', async () => {
    const kv = new MemoryKv();
    const controlled = new ControlledWatchKv(kv);
    const cell = new Cell(controlled.kv, freshCellName());
    await cell.registerMachine(machine('a').build());
    const mirror = cell.mirror();
    mirrors.push(mirror);
    await mirror.start();
    controlled.hold();
    await cell.registerMachine(machine('b').build());
    await cell.setSchedulable(machineId('a'), false, 'gone while the watch was behind');
    await kv.compact(await kv.currentRevision());
    controlled.compactWatches(await kv.currentRevision());
    await mirror.waitForRevision(await kv.currentRevision());
    const snap = mirror.snapshot();
    expect(mirror.counters.relistsAfterCompaction).toBe(1);
    expect(snap.machine(machineId('b'))).toBeDefined();
    expect(snap.machine(machineId('a'))?.schedulable).toBe(false);
    // The new watch keeps following.
    await cell.registerMachine(machine('c').build());
    await mirror.waitForRevision(await kv.currentRevision());
    expect(mirror.snapshot().machine(machineId('c'))).toBeDefined();
  });

  it('keeps a snapshot unchanged while the mirror moves on', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    await cell.registerMachine(machine('a').cpu(1000).build());
    const mirror = cell.mirror();
    mirrors.push(mirror);
    await mirror.start();
    const before = mirror.snapshot();
    await cell.registerMachine(machine('a').cpu(2000).build());
    await cell.registerMachine(machine('b').build());
    await mirror.waitForRevision(await kv.currentRevision());
    expect(before.machine(machineId('a'))?.capacity.cpuMillis).toBe(1000);
    expect(before.machine(machineId('b'))).toBeUndefined();
    expect(mirror.snapshot().machine(machineId('a'))?.capacity.cpuMillis).toBe(2000);
    expect(mirror.snapshot()).toBe(mirror.snapshot());
  });

  it('pages under a store limit smaller than the cell', async () => {
    const kv = withLimits(new MemoryKv(), { maxTxnOps: 4, maxRequestBytes: 1024 * 1024 });
    const cell = new Cell(kv, freshCellName());
    for (let i = 0; i < 10; i++) await cell.registerMachine(machine(`m${i}`).build());
    const mirror = cell.mirror({ pageSize: 3 });
    mirrors.push(mirror);
    await mirror.start();
    expect([...mirror.snapshot().machines()].map((m) => m.id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
  });

  it('rejects waiters when stopped', async () => {
    const kv = new MemoryKv();
    const mirror = new Cell(kv, freshCellName()).mirror();
    await mirror.start();
    const waiting = mirror.waitForRevision(1_000_000);
    await mirror.stop();
    await expect(waiting).rejects.toThrow(/stopped/);
  });
});
