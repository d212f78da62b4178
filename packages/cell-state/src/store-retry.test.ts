import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { InvalidRecordError } from './codec.js';
import { KvCompactedError, KvInvalidRequestError, KvLeaseNotFoundError, KvUnavailableError } from './kv.js';
import { backoffDelayMs, isPermanentStoreError, RetryState, retryUntilDone, STORE_RETRY_BACKOFF, type Sleep } from './store-retry.js';

/** A logger that keeps its lines. */
function recordingLogger(): { logger: pino.Logger; lines: { level: number; msg: string; [field: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

/** A virtual clock: each sleep advances it at once (unless aborted first). */
function virtualSleep(): { sleep: Sleep; now: () => number } {
  let now = 0;
  return {
    sleep: async (ms, signal) => {
      if (signal?.aborted !== true) now += ms;
    },
    now: () => now,
  };
}

describe('the store backoff', () => {
  it('doubles from the initial wait per failure in a row and stops at the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100].map((k) => backoffDelayMs(k))).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect([0, 1, 2, 3, 4, 5].map((k) => backoffDelayMs(k, { initialMs: 200, maxMs: 5_000 }))).toEqual([200, 400, 800, 1600, 3200, 5000]);
  });

  it('with jitter draws each wait between half and all of the capped delay', () => {
    const policy = { initialMs: 200, maxMs: 5_000, jitter: true };
    expect(backoffDelayMs(0, policy, () => 0)).toBe(100);
    expect(backoffDelayMs(0, policy, () => 0.5)).toBe(150);
    expect(backoffDelayMs(10, policy, () => 0.999_999)).toBe(5_000);
    // Without jitter the random source is not consulted.
    expect(backoffDelayMs(1, STORE_RETRY_BACKOFF, () => { throw new Error('not called'); })).toBe(500);
  });

  it('refuses a backoff whose bounds make no sense', () => {
    expect(() => new RetryState(pino({ level: 'silent' }), { initialMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => new RetryState(pino({ level: 'silent' }), { initialMs: 100, maxMs: 10 })).toThrow(RangeError);
    expect(() => new RetryState(pino({ level: 'silent' }), { initialMs: Number.NaN, maxMs: 10 })).toThrow(/initialMs/);
  });
});

describe('the permanent-error rule', () => {
  it('calls a refused request and an invalid record permanent, and an outage, a lost lease or a compaction worth another try', () => {
    expect(isPermanentStoreError(new KvInvalidRequestError('request too large'))).toBe(true);
    expect(isPermanentStoreError(new InvalidRecordError('machine.capacity', 'must ask for some cpuMillis or memoryBytes'))).toBe(true);
    expect(isPermanentStoreError(new KvUnavailableError('etcd unavailable: test'))).toBe(false);
    expect(isPermanentStoreError(new KvLeaseNotFoundError('7'))).toBe(false);
    expect(isPermanentStoreError(new KvCompactedError(3))).toBe(false);
    expect(isPermanentStoreError(new Error('deadline exceeded'))).toBe(false);
  });
});

describe('retrying the store', () => {
  it('waits 250 ms doubling to 10 s between failures, and logs one warning and one recovery line for a whole outage', async () => {
    const clock = virtualSleep();
    const { logger, lines } = recordingLogger();
    const state = new RetryState(logger);
    let failures = 10;
    const tries: number[] = [];
    const result = await retryUntilDone(
      async () => {
        tries.push(clock.now());
        if (failures-- > 0) throw new KvUnavailableError('etcd unavailable: test');
        return 'up';
      },
      { sleep: clock.sleep, state, fields: { step: 'list' } },
    );
    expect(result).toEqual({ value: 'up' });
    const waits = tries.slice(1).map((t, i) => t - (tries[i] as number));
    expect(waits).toEqual([250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
    expect(lines.map((l) => [l.level, l.msg, l['step']])).toEqual([
      [40, 'cell store unreachable; retrying', 'list'],
      [30, 'cell store reached', 'list'],
    ]);
    expect(lines[1]?.['failedTries']).toBe(10);
    // The next outage starts over from 250 ms, and is logged again.
    expect(state.failed(new Error('down again'))).toBe(250);
    expect(lines).toHaveLength(3);
  });

  it('tells a call that resolved to nothing from a stop', async () => {
    const state = new RetryState(pino({ level: 'silent' }));
    expect(await retryUntilDone(async () => undefined, { state })).toEqual({ value: undefined });
    const controller = new AbortController();
    controller.abort();
    let calls = 0;
    expect(await retryUntilDone(async () => void calls++, { state, signal: controller.signal })).toBeUndefined();
    expect(calls).toBe(0);
  });

  it('gives up when stopped, at once, and throws a failure the caller calls fatal', async () => {
    const state = new RetryState(pino({ level: 'silent' }));
    const controller = new AbortController();
    let sleeping = 0;
    // A sleep that lasts until aborted: only the signal can end this retry.
    const sleep: Sleep = (_ms, signal) =>
      new Promise((resolve) => {
        sleeping++;
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    let calls = 0;
    const retrying = retryUntilDone(
      async () => {
        calls++;
        throw new KvUnavailableError('etcd unavailable: test');
      },
      { sleep, state, signal: controller.signal },
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(sleeping).toBe(1);
    controller.abort();
    expect(await retrying).toBeUndefined();
    expect(calls).toBe(1);

    const refused = retryUntilDone(
      async () => {
        throw new KvInvalidRequestError('bad request');
      },
      { sleep, state, isFatal: isPermanentStoreError },
    );
    await expect(refused).rejects.toBeInstanceOf(KvInvalidRequestError);
  });

  it('without a sleep of its own waits on the timers, and an abort ends that wait at once', async () => {
    const state = new RetryState(pino({ level: 'silent' }), { initialMs: 60_000, maxMs: 60_000 });
    const controller = new AbortController();
    const retrying = retryUntilDone(async () => Promise.reject(new KvUnavailableError('etcd unavailable: test')), { state, signal: controller.signal });
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    expect(await retrying).toBeUndefined();
  });
});
