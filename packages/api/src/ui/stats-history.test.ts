import type { SchedulerStats } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { StatsHistory } from './stats-history.js';

const base: SchedulerStats = {
  name: 's', kind: 'batch', conflictMode: 'fine', transactionMode: 'incremental', transactionsOk: 0, transactionsFailed: 0, claimsCommitted: 0, claimsConflicted: 0,
  busyUsefulMs: 0, busyWastedMs: 0, busyNoFitMs: 0, elapsedMs: 0, jobsPlaced: 0, jobsAbandoned: 0, waitFirstAttemptMeanMs: 0, waitFirstAttemptP90Ms: 0,
  waitFullyPlacedMeanMs: 0, waitFullyPlacedP90Ms: 0, spuriousRetries: 0, updatedAtMs: 0,
};
const at = (updatedAtMs: number, ok: number, failed: number, busyMs: number, elapsedMs: number, name = 's'): SchedulerStats => ({ ...base, name, updatedAtMs, transactionsOk: ok, transactionsFailed: failed, busyUsefulMs: busyMs, elapsedMs });

describe('StatsHistory', () => {
  it('adds one point per changed record, each the ratio over the interval since the previous one', () => {
    const history = new StatsHistory(10);
    expect(history.record([at(1, 4, 2, 50, 100)])).toBe(true);
    expect(history.record([at(1, 4, 2, 50, 100)])).toBe(false);
    history.record([at(2, 14, 3, 150, 300)]);
    expect(history.all()[0]?.points).toEqual([
      { atMs: 1, conflictFraction: 0.5, busyness: 0.5, transactions: 6 },
      { atMs: 2, conflictFraction: 0.1, busyness: 0.5, transactions: 11 },
    ]);
  });

  it("takes a restarted scheduler's totals as they are rather than a negative interval", () => {
    const history = new StatsHistory(10);
    history.record([at(1, 100, 50, 500, 1000)]);
    history.record([at(2, 2, 1, 10, 100)]);
    expect(history.all()[0]?.points[1]).toEqual({ atMs: 2, conflictFraction: 0.5, busyness: 0.1, transactions: 3 });
  });

  it('keeps at most its capacity of points per scheduler and its bound of schedulers, forgetting the oldest', () => {
    const history = new StatsHistory(3, 2);
    for (let t = 1; t <= 10; t++) history.record([at(t, t, 0, t, t * 10)]);
    expect(history.all()[0]?.points.map((p) => p.atMs)).toEqual([8, 9, 10]);
    history.record([at(11, 1, 0, 1, 10, 'b')]);
    history.record([at(12, 1, 0, 1, 10, 'c')]);
    expect(history.all().map((s) => s.name)).toEqual(['b', 'c']);
  });
});
