/**
 * Brings the API server's mirror up in the background, however long etcd takes to be reachable.
 *
 * ```
 *   start() ──► mirror.start() ──ok──► ready (whenReady() resolves)
 *                   │ fails (etcd down, slow, stopped)
 *                   └─► wait (200 ms, doubling to 5 s) ──► mirror.start() ...   until stop()
 * ```
 *
 * The server listens before the mirror is listed (so a supervisor sees it up, and clients get a
 * clear UNAVAILABLE rather than a refused connection); calls wait for {@link MirrorLink.whenReady}
 * within their deadline. Logged once per state change: the first failure (warn), then being ready
 * (info), never once per retry. A call that waits for the link cuts the current backoff short
 * (at most one attempt in flight, attempts at least the initial backoff apart), so the first call
 * after etcd is back is served without waiting out a long backoff. Once listed, the mirror keeps itself current (its watch resumes
 * after an outage and re-lists after a compaction): this link's job is only the first listing.
 */
import type { CellMirror } from '@omega/cell-state';
import type { Logger } from 'pino';

export interface MirrorLinkOptions {
  /** First delay between start attempts; default 200 ms. */
  readonly initialBackoffMs?: number;
  /** Largest delay between start attempts; default 5 s. */
  readonly maxBackoffMs?: number;
}

export class MirrorLink {
  private state: 'starting' | 'retrying' | 'ready' | 'stopped' = 'starting';
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private lastAttemptAtMs = 0;
  private nextBackoffMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  /** Start attempts that failed so far. */
  failures = 0;

  constructor(
    private readonly mirror: CellMirror,
    private readonly logger: Logger,
    options: MirrorLinkOptions = {},
  ) {
    this.initialBackoffMs = options.initialBackoffMs ?? 200;
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.nextBackoffMs = this.initialBackoffMs;
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
    if (this.state !== 'retrying' || this.inFlight || Date.now() - this.lastAttemptAtMs < this.initialBackoffMs) return;
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
        if (this.failures > 0) this.logger.info({ failures: this.failures }, 'cell store reachable; mirror listed');
        else this.logger.debug({ revision: this.mirror.revision }, 'mirror listed');
        this.state = 'ready';
        for (const done of [...this.waiters]) done();
      },
      (error: unknown) => {
        this.inFlight = false;
        if (this.state === 'stopped') return;
        this.failures++;
        if (this.state === 'starting') {
          this.logger.warn({ err: error, retryMaxMs: this.maxBackoffMs }, 'cell store unreachable; listing the mirror in the background until it answers');
          this.state = 'retrying';
        }
        // Jitter so that many API servers restarted together do not retry in step.
        const delay = Math.round(this.nextBackoffMs * (0.5 + Math.random() / 2));
        this.nextBackoffMs = Math.min(this.nextBackoffMs * 2, this.maxBackoffMs);
        this.timer = setTimeout(() => this.try(), delay);
      },
    );
  }
}
