/**
 * A {@link TimerClock} whose time moves only when the test says: `advance(ms)` runs the timers
 * due within `ms` in time order, synchronously; `advanceSettling(ms)` does the same but lets
 * pending promise callbacks run before and after each timer (for work that answers
 * asynchronously, such as a health probe).
 */
import type { TimerClock } from '../timer-clock.js';

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

export class FakeTimerClock implements TimerClock {
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(private t = 0) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.t + ms;
    while (this.fireNext(end));
    this.t = end;
  }

  async advanceSettling(ms: number): Promise<void> {
    const end = this.t + ms;
    do await flushMicrotasks();
    while (this.fireNext(end));
    this.t = end;
    await flushMicrotasks();
  }

  /** Fires the earliest timer due by `end`; false when none is. */
  private fireNext(end: number): boolean {
    const due = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
    if (due === undefined) return false;
    this.timers.delete(due[0]);
    this.t = due[1].at;
    due[1].fn();
    return true;
  }
}
