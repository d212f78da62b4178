/**
 * A millisecond clock and its timers: what the fence (monotonic time) and the health checks
 * (wall-clock time, since task start times and `healthSinceMs` are wall-clock) run on, so tests
 * drive both with one fake (`@omega/node-agent/testing`'s FakeTimerClock). The real ones' timers
 * are unref'd: neither keeps a process alive.
 */
export interface TimerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const timers = { setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms).unref(), clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout) };

/** `performance.now()`: for durations that must not jump with the wall clock (the fence). */
export const MONOTONIC_CLOCK: TimerClock = { now: () => performance.now(), ...timers };

/** `Date.now()`: for times written to the cell (health checks). */
export const WALL_CLOCK: TimerClock = { now: () => Date.now(), ...timers };
