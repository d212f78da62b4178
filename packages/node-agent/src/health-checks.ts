/**
 * Runs one task attempt's health check on its interval and turns the results into reports: the
 * attempt's `health` (`passing` / `failing`, with `healthSinceMs`) written only when it changes,
 * and, after `failureThreshold` consecutive failures, a call to stop the task (the executor ends
 * it `failed`, reason `health-check-failed`, and the scheduler's restart policy replaces it).
 *
 * ```
 *  start ─► wait until startedAtMs + gracePeriodMs ─► take a slot (CheckSlots: a bounded number
 *        of checks run at once per agent) ─► probe, aborted after timeoutMs (a timeout fails)
 *        ─► release the slot ─► result changes health? report it ─► failures ≥ threshold?
 *           onThreshold (once; no more checks) ─► next check intervalMs after this one started
 *  stop  ─► no more checks; a running probe is aborted (its process killed)
 * ```
 *
 * One check of an attempt runs at a time: the next is scheduled when the previous ends, so a
 * slow check (or a wait for a slot) delays the next one rather than piling up. A pass resets the
 * failure count. The first result of an attempt is always a change (its health was absent),
 * except for an adopted attempt whose record already says the same: a restarted agent resumes
 * the count at 0 and writes nothing until the result differs from the record.
 */
import pino, { type Logger } from 'pino';
import type { HealthState, ResolvedHealthCheck } from '@omega/cell-state';
import { WALL_CLOCK, type TimerClock } from './timer-clock.js';

/** What one check found: passed or not, and a short reason for the log (never the task's output in full). */
export interface ProbeResult {
  readonly passed: boolean;
  readonly detail: string;
}

/**
 * Runs one check. Must settle soon after `signal` aborts (a timeout or a stop), having killed
 * whatever it started; never rejects (a failure to run the check is a failed check).
 */
export type HealthProbe = (signal: AbortSignal) => Promise<ProbeResult>;

/** Default number of checks an agent runs at once (over all its tasks). */
export const DEFAULT_MAX_CONCURRENT_CHECKS = 8;

/** A counting semaphore: at most `max` holders; waiters are served in order. */
export class CheckSlots {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly max: number = DEFAULT_MAX_CONCURRENT_CHECKS) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`CheckSlots: max must be an integer >= 1, got ${max}`);
  }

  /** Checks running now. */
  get running(): number {
    return this.held;
  }

  /** Resolves with a release function once a slot is free. */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = (): void => {
        this.held++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.held--;
          this.waiting.shift()?.();
        });
      };
      if (this.held < this.max) grant();
      else this.waiting.push(grant);
    });
  }
}

export interface HealthWatchOptions {
  readonly check: ResolvedHealthCheck;
  readonly probe: HealthProbe;
  /** When the task started (wall clock, ms): no check runs before `startedAtMs + gracePeriodMs`. */
  readonly startedAtMs: number;
  /** The health the attempt's record already carries (an adopted attempt); undefined: none. */
  readonly initial?: HealthState;
  /** Called once per change of health, with the patch to report. */
  readonly report: (patch: { readonly health: HealthState; readonly healthSinceMs: number }) => void;
  /** Called once, when `failureThreshold` consecutive checks failed; no check runs after it. */
  readonly onThreshold: (failures: number, detail: string) => void;
  readonly slots: CheckSlots;
  readonly clock?: TimerClock;
  readonly logger?: Logger;
}

/** Counters of one watch (tests, and the agent's own figures). */
export interface HealthWatchCounters {
  checks: number;
  failures: number;
  timeouts: number;
  reports: number;
}

/** One attempt's health check loop. Created stopped; {@link start} once, {@link stop} any time. */
export class HealthWatch {
  readonly counters: HealthWatchCounters = { checks: 0, failures: 0, timeouts: 0, reports: 0 };
  private readonly clock: TimerClock;
  private readonly log: Logger;
  private health: HealthState | undefined;
  private consecutiveFailures = 0;
  private timer: unknown;
  private running: AbortController | undefined;
  private stopped = false;
  private started = false;

  constructor(private readonly options: HealthWatchOptions) {
    this.clock = options.clock ?? WALL_CLOCK;
    this.log = options.logger ?? pino({ level: 'silent' });
    this.health = options.initial;
  }

  /** The last health this watch knows (reported or taken over from the record). */
  get current(): HealthState | undefined {
    return this.health;
  }

  /** Schedules the first check at the end of the grace period (at once when it is over). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    const { check, startedAtMs } = this.options;
    this.schedule(Math.max(0, startedAtMs + check.gracePeriodMs - this.clock.now()));
  }

  /** No more checks; a check in flight is aborted (its result is dropped). Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.running?.abort();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, delayMs);
  }

  private async runOnce(): Promise<void> {
    const release = await this.options.slots.acquire();
    if (this.stopped) return release();
    const { check, probe } = this.options;
    const startedAt = this.clock.now();
    const controller = new AbortController();
    this.running = controller;
    let timedOut = false;
    const timeout = this.clock.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, check.timeoutMs);
    let result: ProbeResult;
    try {
      result = await probe(controller.signal);
    } catch (error) {
      // Probes do not reject; one that does is a failed check, not a crashed agent.
      result = { passed: false, detail: `the check could not run: ${(error as Error).message}` };
    } finally {
      this.clock.clearTimeout(timeout);
      this.running = undefined;
      release();
    }
    if (this.stopped) return;
    if (timedOut) result = { passed: false, detail: `timed out after ${check.timeoutMs} ms` };
    this.counters.checks++;
    if (timedOut) this.counters.timeouts++;
    this.record(result);
    if (this.stopped) return;
    this.schedule(Math.max(0, startedAt + check.intervalMs - this.clock.now()));
  }

  private record(result: ProbeResult): void {
    const next: HealthState = result.passed ? 'passing' : 'failing';
    if (result.passed) this.consecutiveFailures = 0;
    else {
      this.consecutiveFailures++;
      this.counters.failures++;
    }
    if (next !== this.health) {
      this.health = next;
      this.counters.reports++;
      this.log.info({ health: next, detail: result.detail, failures: this.consecutiveFailures }, next === 'passing' ? 'task health check passing' : 'task health check failing');
      this.options.report({ health: next, healthSinceMs: this.clock.now() });
    }
    if (!result.passed && this.consecutiveFailures >= this.options.check.failureThreshold) {
      this.stopped = true;
      this.log.warn({ failures: this.consecutiveFailures, detail: result.detail }, 'task failed its health check too many times; stopping it');
      this.options.onThreshold(this.consecutiveFailures, result.detail);
    }
  }
}
