import { KvInvalidRequestError, KvUnavailableError, MemoryKv, type KvLease } from '@omega/cell-state';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaseKeeper, NoLeaseError } from './lease-keeper.js';
import { RetryState, retryUntilDone } from './store-retry.js';
import { FakeClock, flushAsync } from './testing/index.js';

/** A logger that keeps its lines. */
function recordingLogger(): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

/** Runs `promise` to its end, firing the fake clock's timers whenever it waits on them. */
async function drive<T>(clock: FakeClock, promise: Promise<T>): Promise<T> {
  let done = false;
  const result = promise.finally(() => (done = true));
  while (!done) {
    await flushAsync();
    if (!done) clock.fireNext();
  }
  return result;
}

describe('retrying the store', () => {
  it('waits 250 ms doubling to 10 s between failures, and logs one warning and one recovery line for a whole outage', async () => {
    const clock = new FakeClock();
    const { logger, lines } = recordingLogger();
    const state = new RetryState(logger);
    let failures = 10;
    const tries: number[] = [];
    const value = await drive(
      clock,
      retryUntilDone(
        async () => {
          tries.push(clock.now());
          if (failures-- > 0) throw new KvUnavailableError('etcd unavailable: test');
          return 'up';
        },
        { clock, state },
      ),
    );
    expect(value).toBe('up');
    const waits = tries.slice(1).map((t, i) => t - (tries[i] as number));
    expect(waits).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'cell store unreachable; retrying'],
      [30, 'cell store reached'],
    ]);
    // The next outage starts over from 250 ms, and is logged again.
    expect(state.failed(new Error('down again'))).toBe(250);
    expect(lines).toHaveLength(3);
  });

  it('gives up when stopped, at once, and throws a failure the caller calls fatal', async () => {
    const clock = new FakeClock();
    const state = new RetryState(pino({ level: 'silent' }));
    const controller = new AbortController();
    let calls = 0;
    const retrying = retryUntilDone(
      async () => {
        calls++;
        throw new KvUnavailableError('etcd unavailable: test');
      },
      { clock, state, signal: controller.signal },
    );
    await flushAsync();
    expect(clock.pendingTimers).toBe(1);
    controller.abort();
    expect(await retrying).toBeUndefined();
    expect(calls).toBe(1);

    const refused = retryUntilDone(
      async () => {
        throw new KvInvalidRequestError('bad request');
      },
      { clock, state, isFatal: (e) => e instanceof KvInvalidRequestError },
    );
    await expect(refused).rejects.toBeInstanceOf(KvInvalidRequestError);
  });

  it('refuses a backoff whose bounds make no sense', () => {
    expect(() => new RetryState(pino({ level: 'silent' }), { initialMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => new RetryState(pino({ level: 'silent' }), { initialMs: 100, maxMs: 10 })).toThrow(RangeError);
  });
});

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
