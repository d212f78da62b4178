import { describe, expect, it } from 'vitest';
import { decodeSchedulerStats, encodeSchedulerStats } from './codec.js';
import type { SchedulerStats } from './types.js';

describe('scheduler stats records', () => {
  it('keep every field of SchedulerStats through an encode and decode', () => {
    // Distinct values per field, so a field the proto names differently (and drops) shows up.
    const stats: SchedulerStats = {
      name: 'batch-1',
      kind: 'batch',
      conflictMode: 'resource-fit',
      transactionMode: 'incremental',
      transactionsOk: 1,
      transactionsFailed: 2,
      claimsCommitted: 3,
      claimsConflicted: 4,
      busyUsefulMs: 5,
      busyWastedMs: 6,
      busyNoFitMs: 7,
      elapsedMs: 8,
      jobsPlaced: 9,
      jobsAbandoned: 10,
      waitFirstAttemptMeanMs: 11,
      waitFirstAttemptP90Ms: 12,
      waitFullyPlacedMeanMs: 13,
      waitFullyPlacedP90Ms: 14,
      spuriousRetries: 15,
      updatedAtMs: 16,
    };
    expect(decodeSchedulerStats(encodeSchedulerStats(stats))).toEqual(stats);
  });
});
