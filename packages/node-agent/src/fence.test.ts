import { afterEach, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type KvLease, type KvStore, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec, outageKv } from '@omega/cell-state/testing';
import { Agent } from './agent.js';
import { FENCED_REASON, LeaseFence } from './fence.js';
import { FakeTimerClock } from './testing/fake-timer-clock.js';
import { HollowExecutor } from './hollow.js';
import { eventually, placeTasks } from './testing/index.js';

/** A monotonic clock that moves only when told, firing its timers in order. */
/** A store whose leases report renewals when the test says so (MemoryKv's never lapse by themselves). */
function renewingKv(inner: KvStore): { kv: KvStore; renew(sentAgoMs: number): void } {
  let listeners: ((sentAgoMs: number) => void)[] = [];
  const kv = new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (property !== 'grantLease' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      return async (...args: unknown[]): Promise<KvLease> => {
        const lease = (await (value as (...a: unknown[]) => Promise<KvLease>).apply(target, args)) as KvLease;
        const mine: ((sentAgoMs: number) => void)[] = [];
        listeners = mine;
        return { id: lease.id, ttlSeconds: lease.ttlSeconds, revoke: () => lease.revoke(), onLost: (l) => lease.onLost(l), onRenewed: (l) => void mine.push(l) };
      };
    },
  });
  return { kv, renew: (sentAgoMs) => listeners.forEach((l) => l(sentAgoMs)) };
}

describe('the lease fence', () => {
  function fence(afterMs = 5_000): { fence: LeaseFence; clock: FakeTimerClock; events: string[] } {
    const clock = new FakeTimerClock();
    const events: string[] = [];
    const f = new LeaseFence({ afterMs, clock, onFence: () => events.push(`fenced@${clock.now()}`), onLifted: () => events.push(`lifted@${clock.now()}`) });
    return { fence: f, clock, events };
  }

  it('closes afterMs after the last acknowledged renewal was sent, not after the answer arrived', () => {
    const { fence: f, clock, events } = fence();
    f.renewed(0);
    clock.advance(1_000);
    // Sent at 800, acknowledged at 1000.
    f.renewed(clock.now() - 200);
    clock.advance(4_799);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events).toEqual(['fenced@5800']);
    expect(f.fenced).toBe(true);
  });

  it('is moved on by each renewal and lifted only by a renewal sent within afterMs', () => {
    const { fence: f, clock, events } = fence();
    f.renewed(0);
    for (let i = 0; i < 10; i++) {
      clock.advance(3_000);
      f.renewed(clock.now());
    }
    expect(events).toEqual([]);
    clock.advance(6_000);
    expect(events).toEqual(['fenced@35000']);
    // An answer to a keep-alive sent before the fence closed lifts nothing.
    f.renewed(clock.now() - 5_500);
    expect(f.fenced).toBe(true);
    f.renewed(clock.now() - 100);
    expect(events).toEqual(['fenced@35000', 'lifted@36000']);
    clock.advance(5_000);
    expect(events.at(-1)).toBe('fenced@40900');
    expect(f.fenceCount).toBe(2);
  });

  it('never closes with afterMs 0, nor while paused; resumed, it counts from the given time', () => {
    const off = fence(0);
    off.fence.renewed(0);
    off.clock.advance(60_000);
    expect(off.events).toEqual([]);
    const { fence: f, clock, events } = fence();
    f.renewed(0);
    f.pause();
    clock.advance(60_000);
    expect(events).toEqual([]);
    f.resume(clock.now());
    clock.advance(5_000);
    expect(events).toEqual(['fenced@65000']);
  });
});

describe('an agent cut off from its store', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('kills its tasks once the lease went unrenewed past the fence time and reports them lost (fenced), keeping a real outcome that came first, and runs new tasks once renewed', async () => {
    const m1 = machineId('m1');
    const memory = new MemoryKv();
    const outage = outageKv(memory);
    const leases = renewingKv(outage.kv);
    const name = freshCellName();
    const clock = new FakeTimerClock();
    const agent = new Agent({
      cell: new Cell(leases.kv, name),
      machines: [{ id: m1, capacity: { cpuMillis: 8_000, memoryBytes: 8 * 1024 ** 3 } }],
      executor: ({ reporter }) => new HollowExecutor(reporter),
      flushIntervalMs: 5,
      fenceAfterMs: 5_000,
      fenceClock: clock,
    });
    await agent.start();
    // The test's own view of the cell, on the store itself (never cut off).
    const observer = new Cell(memory, name);
    const mirror: CellMirror = observer.mirror();
    await mirror.start();
    cleanups.push(async () => {
      outage.resume();
      await agent.stop();
      await mirror.stop();
      await memory.close();
    });
    const record = (job: string): Task | undefined => mirror.snapshot().task(taskId(job, 0));
    const place = async (job: string, runMs: number): Promise<void> => {
      await observer.createJob({ id: jobId(job), spec: jobSpec(job).cpu(100).memory('16Mi').duration(runMs).build() });
      await placeTasks(observer, mirror, [{ taskId: taskId(job, 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 16 * 1024 ** 2 } }]);
    };

    await place('long', 3_600_000);
    await place('short', 200);
    await eventually('both to run', () => record('long')?.state === 'running' && record('short')?.state === 'running');
    clock.advance(1_000);
    leases.renew(200);

    outage.stop();
    // The short task ends during the outage: its outcome waits in the reporter.
    await new Promise((r) => setTimeout(r, 400));
    clock.advance(4_799);
    expect(agent.isFenced).toBe(false);
    clock.advance(1);
    expect(agent.isFenced).toBe(true);
    expect(agent.counters.fenced).toBe(1);
    await eventually('the long task to be stopped', () => agent.attemptCount === 0);

    outage.resume();
    // Placed while still fenced: it must wait for the lease.
    await place('later', 50);
    await new Promise((r) => setTimeout(r, 200));
    expect(record('later')?.state).toBe('placed');
    expect(agent.counters.started).toBe(2);
    await eventually('the fenced task to be reported', () => record('long')?.state === 'lost');
    expect(record('long')).toMatchObject({ state: 'lost', reason: FENCED_REASON });
    expect(record('long')!.finishedAtMs).toBeGreaterThan(0);
    expect(record('short')).toMatchObject({ state: 'succeeded' });

    leases.renew(10);
    expect(agent.isFenced).toBe(false);
    await eventually('the later task to run to its end', () => record('later')?.state === 'succeeded');
  });

  it('never fences while a lease that reports no renewals holds, and counts from its loss while no new one can be had', async () => {
    const m1 = machineId('m1');
    const memory = new MemoryKv();
    const outage = outageKv(memory);
    const granted: string[] = [];
    const kv = new Proxy(outage.kv, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        if (property !== 'grantLease') return (value as (...a: unknown[]) => unknown).bind(target);
        return async (...args: unknown[]) => {
          const lease = (await (value as (...a: unknown[]) => Promise<KvLease>).apply(target, args)) as KvLease;
          granted.push(lease.id);
          return lease;
        };
      },
    });
    const clock = new FakeTimerClock();
    const agent = new Agent({
      cell: new Cell(kv, freshCellName()),
      machines: [{ id: m1, capacity: { cpuMillis: 8_000, memoryBytes: 8 * 1024 ** 3 } }],
      executor: ({ reporter }) => new HollowExecutor(reporter),
      flushIntervalMs: 5,
      fenceAfterMs: 5_000,
      fenceClock: clock,
    });
    await agent.start();
    cleanups.push(async () => {
      outage.resume();
      await agent.stop();
      await memory.close();
    });
    // MemoryKv's kept-alive leases never lapse by themselves: nothing to count.
    clock.advance(60_000);
    expect(agent.isFenced).toBe(false);

    // Lost while no new lease can be granted: the count starts at the loss.
    outage.stop();
    memory.expireLease(granted[0] as string);
    await new Promise((r) => setTimeout(r, 50));
    clock.advance(4_999);
    expect(agent.isFenced).toBe(false);
    clock.advance(1);
    expect(agent.isFenced).toBe(true);
    outage.resume();
    await eventually('a new lease to lift the fence', () => !agent.isFenced && granted.length === 2);
  });
});
