/**
 * The schedulers' conflict fraction and busyness over time, for the web UI's chart: the UI
 * server samples the published `schedulers/<name>` records every few seconds into a bounded
 * ring buffer (the records themselves hold only running totals).
 *
 * Each point is the ratio over the interval since the scheduler's previous sample (Omega's
 * definitions, cell-service.ts's {@link conflictFraction} and {@link busyness} applied to the
 * differences), so the chart shows what the scheduler did then, not its lifetime average. The
 * first sample of a scheduler, and one after its totals went backwards (it restarted), use its
 * totals. A scheduler whose record did not change since the last sample adds no point.
 *
 * Memory: at most `capacity` points per scheduler and `maxSchedulers` schedulers (the oldest
 * forgotten first). Not thread-shared: one sampler calls {@link StatsHistory.record}.
 */
import type { SchedulerStats } from '@omega/cell-state';
import { busyness, conflictFraction } from '../cell-service.js';

/** One point of one scheduler's series. */
export interface StatsPoint {
  /** When the scheduler published the totals this point ends at (its record's updatedAtMs). */
  readonly atMs: number;
  readonly conflictFraction: number;
  readonly busyness: number;
  /** Transactions (successful + failed) in the interval. */
  readonly transactions: number;
}

export interface StatsSeries {
  readonly name: string;
  readonly kind: string;
  readonly points: readonly StatsPoint[];
}

/** Default points kept per scheduler: 10 minutes at one sample every 2 s. */
export const DEFAULT_HISTORY_POINTS = 300;
const DEFAULT_MAX_SCHEDULERS = 64;

interface Series {
  kind: string;
  last: SchedulerStats;
  points: StatsPoint[];
  touchedAtMs: number;
}

export class StatsHistory {
  private readonly series = new Map<string, Series>();

  constructor(
    readonly capacity: number = DEFAULT_HISTORY_POINTS,
    private readonly maxSchedulers: number = DEFAULT_MAX_SCHEDULERS,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 2) throw new Error(`capacity: must be an integer of at least 2, got ${capacity}`);
  }

  /** Adds a point per scheduler whose record changed since its last sample; whether any did. */
  record(stats: Iterable<SchedulerStats>): boolean {
    let added = false;
    for (const current of stats) {
      const known = this.series.get(current.name);
      if (known !== undefined && known.last.updatedAtMs === current.updatedAtMs) continue;
      added = true;
      const previous = known?.last;
      const point = pointBetween(previous, current);
      if (known === undefined) {
        this.series.set(current.name, { kind: current.kind, last: current, points: [point], touchedAtMs: current.updatedAtMs });
        this.forgetOldest();
        continue;
      }
      known.last = current;
      known.kind = current.kind;
      known.touchedAtMs = current.updatedAtMs;
      known.points.push(point);
      if (known.points.length > this.capacity) known.points.splice(0, known.points.length - this.capacity);
    }
    return added;
  }

  /** Every scheduler's series, by name, oldest point first. */
  all(): StatsSeries[] {
    return [...this.series.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, s]) => ({ name, kind: s.kind, points: [...s.points] }));
  }

  private forgetOldest(): void {
    while (this.series.size > this.maxSchedulers) {
      let oldest: string | undefined;
      let oldestAt = Infinity;
      for (const [name, s] of this.series) if (s.touchedAtMs < oldestAt) [oldest, oldestAt] = [name, s.touchedAtMs];
      if (oldest === undefined) return;
      this.series.delete(oldest);
    }
  }
}

/** The point from `previous`'s totals to `current`'s (or `current`'s totals alone). */
function pointBetween(previous: SchedulerStats | undefined, current: SchedulerStats): StatsPoint {
  const delta =
    previous === undefined ||
    current.transactionsOk < previous.transactionsOk ||
    current.transactionsFailed < previous.transactionsFailed ||
    current.elapsedMs <= previous.elapsedMs
      ? current
      : {
          transactionsOk: current.transactionsOk - previous.transactionsOk,
          transactionsFailed: current.transactionsFailed - previous.transactionsFailed,
          busyUsefulMs: Math.max(0, current.busyUsefulMs - previous.busyUsefulMs),
          busyWastedMs: Math.max(0, current.busyWastedMs - previous.busyWastedMs),
          elapsedMs: current.elapsedMs - previous.elapsedMs,
        };
  return {
    atMs: current.updatedAtMs,
    conflictFraction: conflictFraction(delta),
    busyness: busyness(delta),
    transactions: delta.transactionsOk + delta.transactionsFailed,
  };
}
