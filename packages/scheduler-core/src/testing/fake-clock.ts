/**
 * FakeClock: a {@link Clock} that moves only when told. Sleeps register timers; the test (or the
 * harness) fires them in time order with `fireNext()` or `advance()`, so think times, backoffs
 * and grace periods take no wall-clock time and every run is the same.
 */
import type { Clock } from '../clock.js';

interface Timer {
  readonly atMs: number;
  /** Creation order: timers due at the same time fire in the order they were set. */
  readonly seq: number;
  readonly resolve: () => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/** Lets pending promise continuations run (microtasks and one macrotask turn). */
export function flushAsync(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  private nowMs: number;
  private timers: Timer[] = [];
  private seq = 0;

  /** Starts at `startMs` (default a fixed date, so records look plausible and runs repeat). */
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  /** Resolves when the clock is advanced to `now() + ms` (at once for `ms <= 0` or an aborted signal). */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true || !(ms > 0)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer: Timer = {
        atMs: this.nowMs + ms,
        seq: this.seq++,
        resolve,
        signal,
        onAbort: () => {
          this.timers = this.timers.filter((t) => t !== timer);
          resolve();
        },
      };
      signal?.addEventListener('abort', timer.onAbort, { once: true });
      this.timers.push(timer);
    });
  }

  /** Sleeps waiting on this clock. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** When the earliest sleep ends; undefined when nothing sleeps. */
  nextTimerAt(): number | undefined {
    return this.earliest()?.atMs;
  }

  /**
   * Moves the clock to the earliest timer (never backwards) and ends every sleep due then.
   * Returns false when nothing sleeps.
   */
  fireNext(): boolean {
    const first = this.earliest();
    if (first === undefined) return false;
    this.nowMs = Math.max(this.nowMs, first.atMs);
    const due = this.timers.filter((t) => t.atMs <= this.nowMs).sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
    this.timers = this.timers.filter((t) => t.atMs > this.nowMs);
    for (const t of due) {
      t.signal?.removeEventListener('abort', t.onAbort);
      t.resolve();
    }
    return true;
  }

  /**
   * Advances by `ms`, firing timers in time order and letting their continuations run between
   * them (a continuation may set new timers, which fire too if due within the step).
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.nowMs + ms);
  }

  async advanceTo(targetMs: number): Promise<void> {
    for (;;) {
      const next = this.nextTimerAt();
      if (next === undefined || next > targetMs) break;
      this.fireNext();
      await flushAsync();
    }
    this.nowMs = Math.max(this.nowMs, targetMs);
  }

  /** Sets the time without firing anything (for a harness that fires timers itself). */
  jumpTo(targetMs: number): void {
    this.nowMs = Math.max(this.nowMs, targetMs);
  }

  private earliest(): Timer | undefined {
    let first: Timer | undefined;
    for (const t of this.timers) if (first === undefined || t.atMs < first.atMs || (t.atMs === first.atMs && t.seq < first.seq)) first = t;
    return first;
  }
}
