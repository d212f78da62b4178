/**
 * Retrying the cell store for as long as it takes, the same way in every process that waits for
 * etcd (schedulers, node agents, the API server): one capped exponential backoff, one log that
 * speaks once per state change (a warning when the store stops answering, one line when it
 * answers again, never a line per retry), and one rule for the errors retrying cannot fix.
 *
 * ```
 *   retryUntilDone(call, { state, sleep, signal, isFatal })
 *
 *   call ──ok──────────► { value }     info `up` (only after failures); backoff starts over
 *     │
 *     ├──fatal─────────► thrown at once      (isFatal, e.g. isPermanentStoreError)
 *     │
 *     └──failed──► warn `down` (first failure of a run only)
 *                  sleep(backoffDelayMs(k), signal)   250 ms, 500 ms, ... 10 s (± jitter)
 *                    │                  └── signal aborts ──► undefined, at once
 *                    └──► call again
 * ```
 *
 * Time is the caller's: the loop only sleeps through the injected `sleep(ms, signal)`, so a
 * scheduler passes its Clock's (deterministic under the simulator's virtual clock) and other
 * processes take {@link timerSleep}.
 */
import type { Logger } from 'pino';
import { InvalidRecordError } from './codec.js';
import { KvInvalidRequestError, KvPermissionDeniedError } from './kv.js';

/** A capped exponential backoff: `initialMs`, doubling per failure in a row, at most `maxMs`. */
export interface BackoffPolicy {
  /** The wait after the first failure of a run, in ms; must be > 0. */
  readonly initialMs: number;
  /** The largest wait, in ms; must be >= `initialMs`. */
  readonly maxMs: number;
  /**
   * Draw each wait uniformly from half to all of the capped delay, so that many processes
   * restarted together do not retry in step. Default false (waits exactly as computed).
   */
  readonly jitter?: boolean;
}

/** The store retry of the schedulers and the node agent: 250 ms doubling to 10 s, no jitter. */
export const STORE_RETRY_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 250, maxMs: 10_000 });

/** Throws a RangeError naming the problem unless `0 < initialMs <= maxMs`. */
export function checkBackoffPolicy(policy: BackoffPolicy): void {
  if (!(policy.initialMs > 0) || !(policy.maxMs >= policy.initialMs)) {
    throw new RangeError(`backoff must have 0 < initialMs <= maxMs, got ${JSON.stringify(policy)}`);
  }
}

/**
 * The wait after `failures + 1` failures in a row (0 for the first failure):
 * `min(maxMs, initialMs × 2^failures)`, and with `policy.jitter` a uniform draw (by `random`,
 * in [0, 1)) between half of that and all of it, rounded to whole milliseconds.
 */
export function backoffDelayMs(failures: number, policy: BackoffPolicy = STORE_RETRY_BACKOFF, random: () => number = Math.random): number {
  const capped = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(failures, 0), 30));
  return policy.jitter === true ? Math.round(capped * (0.5 + random() / 2)) : capped;
}

/**
 * Whether retrying cannot fix `error`: a request the store refused as malformed or over its
 * limits ({@link KvInvalidRequestError}) or as not allowed for this identity
 * ({@link KvPermissionDeniedError}: etcd's roles change only by an administrator), or a record
 * that fails validation ({@link InvalidRecordError}: the same record would fail again).
 * Everything else (the store
 * unreachable or slow, a lost lease, a compacted revision, a contended write) is worth another
 * try, which is why this is not `KvError.retryable`: a lost lease is not retryable as a call,
 * but taking a new one is.
 */
export function isPermanentStoreError(error: unknown): boolean {
  return error instanceof KvInvalidRequestError || error instanceof KvPermissionDeniedError || error instanceof InvalidRecordError;
}

/** The log lines of one {@link RetryState}: constant messages, data in fields. */
export interface RetryMessages {
  /** Logged at warn, with the error, at the first failure after a success (or at the start). */
  readonly down: string;
  /** Logged at info at the first success after failures; none when the caller says it itself. */
  readonly up?: string;
}

/** The default lines: `cell store unreachable; retrying` and `cell store reached`. */
export const STORE_RETRY_MESSAGES: RetryMessages = Object.freeze({ down: 'cell store unreachable; retrying', up: 'cell store reached' });

/**
 * The state of one retried operation: failures in a row (so the next wait), and whether the last
 * try failed (so the log speaks only when that changes). Log fields: the caller's `fields`, plus
 * `err` on the warning and `failedTries` on the recovery line. Not shared between concurrent
 * retry loops; one loop may run several operations in turn through it (a success starts over).
 */
export class RetryState {
  private failures = 0;

  /** Throws a RangeError for a policy that {@link checkBackoffPolicy} refuses. */
  constructor(
    private readonly logger: Logger,
    private readonly policy: BackoffPolicy = STORE_RETRY_BACKOFF,
    private readonly messages: RetryMessages = STORE_RETRY_MESSAGES,
    private readonly random: () => number = Math.random,
  ) {
    checkBackoffPolicy(policy);
  }

  /** Whether the last try failed. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** Failures in a row so far (0 after a success). */
  get failuresInARow(): number {
    return this.failures;
  }

  /** Notes a failure; returns how long to wait before the next try. Logs only the first of a run. */
  failed(error: unknown, fields: Record<string, unknown> = {}): number {
    if (this.failures === 0) this.logger.warn({ ...fields, err: error }, this.messages.down);
    const delay = backoffDelayMs(this.failures, this.policy, this.random);
    this.failures++;
    return delay;
  }

  /** Notes a success: logs once if tries had failed, and starts the backoff over. */
  succeeded(fields: Record<string, unknown> = {}): void {
    if (this.failures > 0 && this.messages.up !== undefined) this.logger.info({ ...fields, failedTries: this.failures }, this.messages.up);
    this.failures = 0;
  }
}

/** Waits `ms`, or less: resolves at once when `signal` aborts (never rejects). */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** A {@link Sleep} on the process's timers. */
export const timerSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** What {@link retryUntilDone} needs besides the call. */
export interface RetryOptions {
  /** The backoff and the log-once bookkeeping. */
  readonly state: RetryState;
  /** How to wait between tries; default {@link timerSleep}. */
  readonly sleep?: Sleep;
  /** Stops the retrying: the sleep in progress ends at once; a call in flight is awaited first. */
  readonly signal?: AbortSignal;
  /** Errors thrown at once instead of retried; default none (every failure is retried). */
  readonly isFatal?: (error: unknown) => boolean;
  /** Added to both log lines (e.g. `{ step: 'register' }`). */
  readonly fields?: Record<string, unknown>;
}

/**
 * Calls `call` until it resolves: `{ value }` then (wrapped, so a call resolving to `undefined`
 * is told apart), or `undefined` once `options.signal` aborted (no call is made after that).
 * Rejects only with an error `options.isFatal` calls fatal, at once.
 */
export async function retryUntilDone<T>(call: () => Promise<T>, options: RetryOptions): Promise<{ readonly value: T } | undefined> {
  const { state, signal } = options;
  const sleep = options.sleep ?? timerSleep;
  while (signal?.aborted !== true) {
    try {
      const value = await call();
      state.succeeded(options.fields);
      return { value };
    } catch (error) {
      if (options.isFatal?.(error) === true) throw error;
      await sleep(state.failed(error, options.fields), signal);
    }
  }
  return undefined;
}
