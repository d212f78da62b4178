/**
 * Retrying the cell store until it answers: an agent started while etcd is down (or during an
 * outage) waits for it instead of exiting. Each step of the agent's start (register, heartbeat,
 * first list) runs through one {@link StoreRetry}, which retries with capped exponential backoff
 * until the step succeeds or `cancel()` is called, and logs once per state change (store
 * unreachable / reachable again), never once per attempt.
 *
 * ```
 *   run(step) ─► ok ─────────────────────────────────► value   (logs "reachable" if it had failed)
 *             └► retryable error ─► wait 250 ms, 500 ms, ... 10 s ─► run(step) again
 *             └► error retrying cannot fix (bad registration, refused request) ─► thrown
 *   cancel() ─► the wait ends at once; run resolves `undefined`
 * ```
 */
import pino, { type Logger } from 'pino';
import { InvalidRecordError, KvInvalidRequestError } from '@omega/cell-state';

/** Backoff between attempts: doubles from `initialMs` up to `maxMs`. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** The agent's default: 250 ms, doubling, at most 10 s. */
export const DEFAULT_STORE_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 250, maxMs: 10_000 });

/** The wait before retry number `attempt` (0 for the first retry). */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_STORE_BACKOFF): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
}

/**
 * Whether trying again may help: everything except a request the store refused as malformed
 * or over its limits, and an invalid record (our own registration is wrong: retrying would
 * not change it). A lost lease or a contended write is worth another try.
 */
export function isRetryableStoreError(error: unknown): boolean {
  return !(error instanceof InvalidRecordError || error instanceof KvInvalidRequestError);
}

export class StoreRetry {
  private failing = false;
  private cancelled = false;
  private wake: (() => void) | undefined;
  private readonly logger: Logger;
  private readonly policy: BackoffPolicy;

  constructor(options: { logger?: Logger; policy?: BackoffPolicy } = {}) {
    this.policy = options.policy ?? DEFAULT_STORE_BACKOFF;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'store-retry' });
  }

  /** Whether the last attempt of any step failed (the store is unreachable as far as we know). */
  get unreachable(): boolean {
    return this.failing;
  }

  /**
   * Runs `fn` until it resolves; `{ value }` then, `undefined` once `cancel()` was called.
   * Errors {@link isRetryableStoreError} says retrying cannot fix are thrown at once.
   */
  async run<T>(step: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.cancelled) return undefined;
      try {
        const value = await fn();
        if (this.failing) {
          this.failing = false;
          this.logger.info({ step, attempts: attempt + 1 }, 'cell store reachable again');
        }
        return { value };
      } catch (error) {
        if (!isRetryableStoreError(error)) throw error;
        if (!this.failing) {
          this.failing = true;
          this.logger.warn({ err: error, step }, 'cell store unreachable; retrying with backoff');
        }
        await this.pause(backoffDelayMs(attempt, this.policy));
      }
    }
  }

  /** Ends any wait at once; every later `run` resolves `undefined` without trying. */
  cancel(): void {
    this.cancelled = true;
    this.wake?.();
  }

  private pause(ms: number): Promise<void> {
    if (this.cancelled) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}
