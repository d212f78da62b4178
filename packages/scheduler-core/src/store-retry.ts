/**
 * Retrying the cell store for as long as it takes: a capped exponential backoff, and a log that
 * speaks once per state change (one warning when the store stops answering, one line when it
 * answers again), never once per retry.
 *
 * ```
 *   call ──fail──► warn "cell store unreachable; retrying" (first failure only) ──► sleep 250 ms
 *     ▲                                                                          doubling to 10 s
 *     └──────────────────────────────────────────────────────────────────────────────┘
 *   call ──ok──► info "cell store reached" (only after a failure); backoff back to 250 ms
 * ```
 *
 * Used by the scheduler process at startup (mirror start, first lease) and by the Scheduler
 * while it re-grants a lost lease. All waiting goes through the injected Clock.
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.js';

/** A capped exponential backoff: `initialMs`, doubling per failure, at most `maxMs`. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The store retry of every scheduler: 250 ms doubling to 10 s. */
export const STORE_RETRY_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 250, maxMs: 10_000 });

/** The log lines of one {@link RetryState}: constant messages, data in fields. */
export interface RetryMessages {
  /** Logged at warn, with the error, at the first failure after a success (or at the start). */
  readonly down: string;
  /** Logged at info at the first success after a failure; none when the caller says it itself. */
  readonly up?: string;
}

const STORE_MESSAGES: RetryMessages = { down: 'cell store unreachable; retrying', up: 'cell store reached' };

/**
 * The state of one retried operation: how long to wait next, and whether the last try failed
 * (so the log speaks only when that changes). Not shared between concurrent retry loops.
 */
export class RetryState {
  private failures = 0;

  constructor(
    private readonly logger: Logger,
    private readonly policy: BackoffPolicy = STORE_RETRY_BACKOFF,
    private readonly messages: RetryMessages = STORE_MESSAGES,
  ) {
    if (!(policy.initialMs > 0) || !(policy.maxMs >= policy.initialMs)) {
      throw new RangeError(`backoff must have 0 < initialMs <= maxMs, got ${JSON.stringify(policy)}`);
    }
  }

  /** Whether the last try failed. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** Failures in a row so far. */
  get failuresInARow(): number {
    return this.failures;
  }

  /** Notes a failure; returns how long to wait before the next try. Logs only the first of a run. */
  failed(error: unknown, fields: Record<string, unknown> = {}): number {
    if (this.failures === 0) this.logger.warn({ ...fields, err: error }, this.messages.down);
    const delay = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return delay;
  }

  /** Notes a success: logs once if tries had failed, and starts the backoff over. */
  succeeded(fields: Record<string, unknown> = {}): void {
    if (this.failures > 0 && this.messages.up !== undefined) this.logger.info({ ...fields, failedTries: this.failures }, this.messages.up);
    this.failures = 0;
  }
}

/**
 * Calls `call` until it resolves, sleeping on `clock` between failures as `state` says. Resolves
 * to its value, or to `undefined` once `signal` aborts (the sleep in progress ends at once; a call
 * in flight is awaited first). Every failure counts as retryable: a caller that can tell a
 * permanent failure passes `isFatal`, and such an error is thrown at once.
 */
export async function retryUntilDone<T>(
  call: () => Promise<T>,
  options: { readonly clock: Clock; readonly state: RetryState; readonly signal?: AbortSignal; readonly isFatal?: (error: unknown) => boolean; readonly fields?: Record<string, unknown> },
): Promise<T | undefined> {
  const { clock, state, signal } = options;
  while (signal?.aborted !== true) {
    try {
      const value = await call();
      state.succeeded(options.fields);
      return value;
    } catch (error) {
      if (options.isFatal?.(error) === true) throw error;
      const delay = state.failed(error, options.fields);
      await clock.sleep(delay, signal);
    }
  }
  return undefined;
}
