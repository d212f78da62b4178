/**
 * How long `omega dev` waits before restarting a child that died: capped exponential backoff,
 * forgotten once the child has stayed up for a while.
 *
 * ```
 *   exits in a row:   1    2    3    4    5    6 ...
 *   delay (default):  1 s  2 s  4 s  8 s  16 s 30 s 30 s ...
 *   a run of at least `stableAfterMs` (60 s) resets the sequence to 1 s
 * ```
 *
 * A crash loop costs one spawn per 30 s at most; a child that crashes once a day restarts at
 * once. Pure arithmetic: the caller measures how long the child ran.
 */

export interface BackoffSettings {
  /** The first delay; default 1 s. */
  readonly initialMs: number;
  /** The cap; default 30 s. */
  readonly maxMs: number;
  /** A run at least this long starts the sequence over; default 60 s. */
  readonly stableAfterMs: number;
}

export const DEFAULT_RESTART_BACKOFF: BackoffSettings = { initialMs: 1_000, maxMs: 30_000, stableAfterMs: 60_000 };

/** One child's backoff. Not shared between children. */
export class RestartBackoff {
  private failures = 0;

  constructor(private readonly settings: BackoffSettings = DEFAULT_RESTART_BACKOFF) {}

  /** The delay before the next start of a child that has just exited after running `upMs`. */
  next(upMs: number): number {
    if (upMs >= this.settings.stableAfterMs) this.failures = 0;
    const delay = Math.min(this.settings.maxMs, this.settings.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return delay;
  }
}
