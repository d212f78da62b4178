/**
 * Brings the API server's mirror up in the background, however long etcd takes to be reachable.
 *
 * ```
 *   start() ──► mirror.start() ──ok──► ready (whenReady() resolves)
 *                   │ fails (etcd down, slow, stopped)
 *                   └─► wait (200 ms, doubling to 5 s, jittered) ──► mirror.start() ...   until stop()
 *                         ▲ cut short by a waiting call (kick)
 * ```
 *
 * The server listens before the mirror is listed (so a supervisor sees it up, and clients get a
 * clear UNAVAILABLE rather than a refused connection); calls wait for {@link MirrorLink.whenReady}
 * within their deadline. The backoff and the log-once bookkeeping are cell-state's store retry
 * ({@link RetryState}): the first failure is logged (warn), then being ready (info), never once
 * per retry. A call that waits for the link cuts the current backoff short (at most one attempt
 * in flight, attempts at least the initial backoff apart), so the first call after etcd is back
 * is served without waiting out a long backoff. Once listed, the mirror keeps itself current
 * (its watch resumes after an outage and re-lists after a compaction): this link's job is only
 * the first listing.
 */
import { RetryState, type BackoffPolicy, type CellMirror, type RetryMessages } from '@omega/cell-state';
import type { Logger } from 'pino';

const MESSAGES: RetryMessages = { down: 'cell store unreachable; listing the mirror in the background until it answers', up: 'cell store reachable; mirror listed' };

export interface MirrorLinkOptions {
  /** First delay between start attempts; default 200 ms; must be > 0. */
  readonly initialBackoffMs?: number;
  /** Largest delay between start attempts; default 5 s; must be >= `initialBackoffMs`. */
  readonly maxBackoffMs?: number;
}

export class MirrorLink {
  private state: 'starting' | 'retrying' | 'ready' | 'stopped' = 'starting';
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private lastAttemptAtMs = 0;
  private readonly policy: BackoffPolicy;
  private readonly retry: RetryState;

  /** Throws a RangeError for backoff bounds that make no sense. */
  constructor(
    private readonly mirror: CellMirror,
    private readonly logger: Logger,
    options: MirrorLinkOptions = {},
  ) {
    // Jitter so that many API servers restarted together do not retry in step.
    this.policy = { initialMs: options.initialBackoffMs ?? 200, maxMs: options.maxBackoffMs ?? 5_000, jitter: true };
    this.retry = new RetryState(logger, this.policy, MESSAGES);
  }

  /** Start attempts that failed so far (while not ready). */
  get failures(): number {
    return this.retry.failuresInARow;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  /** Starts trying; returns at once. */
  start(): void {
    this.try();
  }

  /**
   * Resolves true once the mirror is listed, false if that has not happened within `timeoutMs`
   * or the link was stopped.
   */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.state === 'ready') return Promise.resolve(true);
    if (this.state === 'stopped' || timeoutMs <= 0) return Promise.resolve(false);
    this.kick();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.state === 'ready');
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  /**
   * Stops retrying and stops the mirror. Idempotent. An attempt in flight is not waited for: a
   * stopped mirror starts no watch when its listing finally returns.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    clearTimeout(this.timer);
    for (const done of [...this.waiters]) done();
    await this.mirror.stop();
  }

  /** Someone waits: try now rather than at the end of the backoff, if no attempt runs and the last is not too recent. */
  private kick(): void {
    if (this.state !== 'retrying' || this.inFlight || Date.now() - this.lastAttemptAtMs < this.policy.initialMs) return;
    clearTimeout(this.timer);
    this.try();
  }

  private try(): void {
    if (this.state === 'stopped' || this.inFlight) return;
    this.inFlight = true;
    this.lastAttemptAtMs = Date.now();
    void this.mirror.start().then(
      () => {
        this.inFlight = false;
        if (this.state === 'stopped') return;
        if (!this.retry.failing) this.logger.debug({ revision: this.mirror.revision }, 'mirror listed');
        this.retry.succeeded();
        this.state = 'ready';
        for (const done of [...this.waiters]) done();
      },
      (error: unknown) => {
        this.inFlight = false;
        if (this.state === 'stopped') return;
        this.state = 'retrying';
        this.timer = setTimeout(() => this.try(), this.retry.failed(error, { retryMaxMs: this.policy.maxMs }));
      },
    );
  }
}
