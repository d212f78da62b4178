/**
 * A virtual clock for discrete-event simulation of async code. `sleep()` registers a timer;
 * `runUntil()` lets every piece of work that is ready run to completion (all microtasks, then one
 * macrotask turn), then jumps time to the earliest timer and wakes it, and so on. Simulated code
 * must wait only through this clock (and on MemoryKv, whose operations and watch deliveries
 * settle as microtasks), never on real timers or I/O, or time would pass without it.
 *
 * Timers due at the same instant wake in the order they were set, so runs repeat exactly.
 * An aborted sleep resolves at once and its timer is skipped when due, without a settling turn
 * (idle schedulers abort a sleep on every store change: those must cost nothing later).
 */
import type { Clock } from '@omega/scheduler-core';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly wake: () => void;
  /** Aborted sleeps stay in the heap (removal would cost a search) and are skipped when due. */
  dead: boolean;
}

export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  /** Binary min-heap on (at, seq). */
  private readonly heap: Timer[] = [];
  /** Timers woken so far: a measure of simulated events. */
  woken = 0;

  constructor(startMs = 0) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted === true) return resolve();
      let done = false;
      const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, wake: () => finish(), dead: false };
      const finish = (): void => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        timer.dead = true;
        finish();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.push(timer);
    });
  }

  /** Runs a callback at a virtual time (>= now). */
  at(timeMs: number, callback: () => void): void {
    this.push({ at: Math.max(this.time, timeMs), seq: this.seq++, wake: callback, dead: false });
  }

  /** Timers waiting (aborted sleeps not yet due included). */
  get pending(): number {
    return this.heap.length;
  }

  /** Time of the earliest live timer, or undefined when none is left. */
  nextAt(): number | undefined {
    this.dropDead();
    return this.heap[0]?.at;
  }

  /**
   * Advances time to `untilMs`, waking every timer due by then in order and letting the work
   * each one starts settle before the next. Resolves with time at `untilMs`.
   */
  async runUntil(untilMs: number): Promise<void> {
    for (;;) {
      await settle();
      this.dropDead();
      const next = this.heap[0];
      if (next === undefined || next.at > untilMs) break;
      this.pop();
      this.time = next.at;
      this.woken++;
      next.wake();
    }
    this.time = Math.max(this.time, untilMs);
  }

  /** Pops aborted sleeps off the top of the heap: they wake nobody, so they cost no settling turn. */
  private dropDead(): void {
    while (this.heap[0]?.dead === true) this.pop();
  }

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i] as Timer, h[parent] as Timer)) break;
      [h[i], h[parent]] = [h[parent] as Timer, h[i] as Timer];
      i = parent;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as Timer;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l] as Timer, h[m] as Timer)) m = l;
      if (r < h.length && before(h[r] as Timer, h[m] as Timer)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m] as Timer, h[i] as Timer];
      i = m;
    }
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Lets all ready work run: every queued microtask, then one turn of the macrotask queue. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
