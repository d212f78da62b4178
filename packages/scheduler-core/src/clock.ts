/**
 * Time, injected: real in processes, virtual in the simulator and tests. The scheduling loop
 * reads time and waits only through a Clock, so the same code runs live and simulated.
 */
import { timerSleep } from '@omega/cell-state';

export interface Clock {
  /** Milliseconds since the epoch (virtual under simulation). */
  now(): number;
  /** Resolves after `ms` of this clock's time; `signal` aborts the wait (resolves early). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: timerSleep,
};
