/**
 * Fencing: an agent that cannot renew its heartbeat lease must assume the schedulers have taken
 * its machine for lost and are replacing its tasks elsewhere. Once the lease has gone
 * `afterMs` without a successful renewal, the fence closes: the agent kills every local task
 * (reported `lost`, reason `fenced`, once the store answers again) and starts nothing. The next
 * successful renewal (or a new lease) opens it again.
 *
 * Time is counted on a monotonic clock from when the last renewal that etcd acknowledged was
 * *sent* (etcd refreshed the lease no earlier than that), not from when a failure was noticed:
 * a keep-alive stream that simply hangs (a frozen etcd) is noticed late or never.
 *
 * ```
 *   renewed(sentAt) ─► deadline = sentAt + afterMs ─► (no renewal by then) ─► fenced: onFence()
 *   renewed(sentAt) while fenced ─► open again: onLifted()
 *   pause() ─► no deadline (a lease that cannot report renewals; see HeartbeatKeeper)
 * ```
 */
import { MONOTONIC_CLOCK, type TimerClock } from './timer-clock.js';
import { performance } from 'node:perf_hooks';
import pino, { type Logger } from 'pino';

/**
 * The schedulers' default `--machine-loss-grace-ms` (scheduler-core's settings; the agent does
 * not import the schedulers, and the cell does not store it).
 */
export const SCHEDULERS_DEFAULT_MACHINE_LOSS_GRACE_MS = 5_000;

/** The agent's default `--heartbeat-ttl`, in ms. */
const DEFAULT_HEARTBEAT_TTL_MS = 10_000;

/**
 * What the default fence time leaves between the agent's SIGKILL and the earliest start of a
 * replacement: timer lateness, the kernel's kill, the clocks' rate difference.
 */
const FENCE_MARGIN_MS = 3_000;

/**
 * The default `--fence-after-ms`: as late as the timing rule allows with the default heartbeat
 * TTL and machine-loss grace (10 + 5 - 3 = 12 s), so an etcd blip (a leader election, a slow
 * fsync, a late keep-alive) does not kill every task of the cell; a fenced task is killed at
 * once (no grace: it may be running elsewhere already).
 */
export const DEFAULT_FENCE_AFTER_MS = DEFAULT_HEARTBEAT_TTL_MS + SCHEDULERS_DEFAULT_MACHINE_LOSS_GRACE_MS - FENCE_MARGIN_MS;

/** The reason a fenced task is reported `lost` with. */
export const FENCED_REASON = 'fenced';

/** What the heartbeat tells the fence. */
export interface LeaseRenewals {
  /** A renewal (or a grant) etcd acknowledged, sent at `sentAtMs` on the fence's clock. */
  renewed(sentAtMs: number): void;
  /** The current lease cannot report renewals: no deadline until {@link resume}. */
  pause(): void;
  /** Counting again, as if last renewed at `atMs` (the paused lease was lost then). */
  resume(atMs: number): void;
}

export interface LeaseFenceOptions {
  /** Longest time without a renewal before the fence closes; 0: never. */
  readonly afterMs: number;
  readonly onFence: () => void;
  readonly onLifted: () => void;
  readonly clock?: TimerClock;
  readonly logger?: Logger;
}

export class LeaseFence implements LeaseRenewals {
  private readonly clock: TimerClock;
  private readonly logger: Logger;
  /** When the last acknowledged renewal was sent; undefined before the first. */
  private lastRenewalMs: number | undefined;
  private timer: unknown;
  private paused = false;
  private closed = false;
  private stopped = false;
  private fences = 0;

  constructor(private readonly options: LeaseFenceOptions) {
    this.clock = options.clock ?? MONOTONIC_CLOCK;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'fence' });
  }

  /** Whether the fence is closed now (tasks killed, nothing starts). */
  get fenced(): boolean {
    return this.closed;
  }

  /** Times the fence closed. */
  get fenceCount(): number {
    return this.fences;
  }

  /** The clock this fence reads (the heartbeat stamps its requests with it). */
  now(): number {
    return this.clock.now();
  }

  renewed(sentAtMs: number): void {
    if (this.stopped) return;
    this.paused = false;
    // Responses may arrive out of order across a reconnect: never move the reference back.
    this.lastRenewalMs = Math.max(this.lastRenewalMs ?? sentAtMs, sentAtMs);
    if (this.closed && this.clock.now() - this.lastRenewalMs < this.options.afterMs) {
      this.closed = false;
      this.logger.info({ fences: this.fences }, 'heartbeat lease renewed; fence lifted');
      this.options.onLifted();
    }
    this.arm();
  }

  pause(): void {
    this.paused = true;
    this.disarm();
  }

  resume(atMs: number): void {
    if (!this.paused) return;
    this.paused = false;
    this.lastRenewalMs = atMs;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private arm(): void {
    this.disarm();
    if (this.options.afterMs <= 0 || this.paused || this.closed || this.stopped || this.lastRenewalMs === undefined) return;
    const due = this.lastRenewalMs + this.options.afterMs - this.clock.now();
    this.timer = this.clock.setTimeout(() => this.check(), Math.max(0, due));
  }

  private disarm(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    this.timer = undefined;
    if (this.stopped || this.paused || this.closed || this.lastRenewalMs === undefined) return;
    const since = this.clock.now() - this.lastRenewalMs;
    if (since < this.options.afterMs) {
      this.arm();
      return;
    }
    this.closed = true;
    this.fences++;
    this.logger.warn({ sinceRenewalMs: Math.round(since), fenceAfterMs: this.options.afterMs }, 'heartbeat lease not renewed in time; fencing: killing every local task');
    this.options.onFence();
  }
}
