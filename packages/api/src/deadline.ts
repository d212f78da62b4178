/**
 * The bound on how long one API call waits for the cell store. Every call gets one
 * {@link Deadline} (the server's `storeTimeoutMs`, 5 s by default) and every store step of the
 * call (a read of etcd's revision, the mirror catching up, a write) runs against what is left of
 * it. A step still pending when the time is up is abandoned, not cancelled: the call answers
 * UNAVAILABLE at once and the step's late result (or failure) is dropped.
 *
 * Why not rely on the store's own timeouts: etcd3 retries a failed call three times, each with
 * its own deadline, and opens a circuit breaker after that; a stopped etcd (SIGSTOP, a partition)
 * answers nothing at all. The client should hear UNAVAILABLE within a few seconds whatever the
 * store does underneath.
 */
import { ApiError } from './errors.js';
import { status } from '@grpc/grpc-js';

/** A store step did not finish within the call's deadline. Retryable: the store may be back soon. */
export class StoreTimeoutError extends ApiError {
  readonly retryable = true;
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(status.UNAVAILABLE, `the cell store (etcd) did not answer within ${timeoutMs} ms (${what}); retry`);
    this.name = 'StoreTimeoutError';
  }
}

export class Deadline {
  private readonly endsAtMs: number;

  constructor(
    /** The whole budget, for messages. */
    readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.endsAtMs = now() + timeoutMs;
  }

  /** Milliseconds left; 0 once the deadline has passed. */
  get remainingMs(): number {
    return Math.max(0, this.endsAtMs - this.now());
  }

  get expired(): boolean {
    return this.remainingMs === 0;
  }

  /**
   * `step`'s result, or a {@link StoreTimeoutError} naming `what` once the deadline passes
   * first. A step abandoned that way still runs; its outcome is ignored (never unhandled).
   */
  async run<T>(what: string, step: Promise<T>): Promise<T> {
    const remaining = this.remainingMs;
    if (remaining === 0) {
      step.catch(() => undefined);
      throw new StoreTimeoutError(what, this.timeoutMs);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreTimeoutError(what, this.timeoutMs)), remaining);
    });
    try {
      return await Promise.race([step, timeout]);
    } finally {
      clearTimeout(timer);
      step.catch(() => undefined);
    }
  }
}
