import { describe, expect, it } from 'vitest';
import { decodeJob, decodeSchedulerStats, encodeJob, encodeSchedulerStats } from './codec.js';
import { jobSpec } from './testing/builders.js';
import { jobId, type SchedulerStats } from './types.js';

describe('job records', () => {
  it('keep the namespace of a job, and store the default one as absent so older records read as default', () => {
    const job = (namespace: string) => ({ id: jobId('j'), spec: jobSpec('web').namespace(namespace).build(), desired: 'running' as const, submittedAtMs: 1, requestId: '' });
    expect(decodeJob(encodeJob(job('team-a')), 3).spec.namespace).toBe('team-a');
    expect(decodeJob(encodeJob(job('default')), 3).spec.namespace).toBe('default');
    expect(encodeJob(job('default'))).toEqual(encodeJob(job('default')));
    expect(encodeJob(job('default')).length).toBeLessThan(encodeJob(job('team-a')).length);
  });
});

describe('a job spec log limit', () => {
  it('is kept through an encode and decode, and left absent when 0 so older records read back equal', () => {
    const base = jobSpec('web').build();
    const job = (spec: typeof base) => ({ id: jobId('j'), spec, desired: 'running' as const, submittedAtMs: 1, requestId: '' });
    expect(decodeJob(encodeJob(job({ ...base, task: { ...base.task, logLimitBytes: 1 << 20 } })), 3).spec.task.logLimitBytes).toBe(1 << 20);
    expect('logLimitBytes' in decodeJob(encodeJob(job(base)), 3).spec.task).toBe(false);
  });
});

describe('a job spec disk limit', () => {
  it('is kept through an encode and decode, and left absent when 0 so older records read back equal', () => {
    const base = jobSpec('web').build();
    const job = (spec: typeof base) => ({ id: jobId('j'), spec, desired: 'running' as const, submittedAtMs: 1, requestId: '' });
    expect(decodeJob(encodeJob(job({ ...base, task: { ...base.task, diskLimitBytes: 2 ** 33 } })), 3).spec.task.diskLimitBytes).toBe(2 ** 33);
    expect('diskLimitBytes' in decodeJob(encodeJob(job(base)), 3).spec.task).toBe(false);
  });
});

describe('a job spec network', () => {
  it('is kept through an encode and decode, and left absent when unset so older records read back equal', () => {
    const base = jobSpec('web').build();
    const job = (spec: typeof base) => ({ id: jobId('j'), spec, desired: 'running' as const, submittedAtMs: 1, requestId: '' });
    expect(decodeJob(encodeJob(job({ ...base, task: { ...base.task, network: 'none' } })), 3).spec.task.network).toBe('none');
    expect(decodeJob(encodeJob(job({ ...base, task: { ...base.task, network: 'host' } })), 3).spec.task.network).toBe('host');
    expect('network' in decodeJob(encodeJob(job(base)), 3).spec.task).toBe(false);
  });
});

describe('a job spec user', () => {
  it('is kept through an encode and decode, and left absent when unset so older records read back equal', () => {
    const base = jobSpec('web').build();
    const job = (spec: typeof base) => ({ id: jobId('j'), spec, desired: 'running' as const, submittedAtMs: 1, requestId: '' });
    expect(decodeJob(encodeJob(job({ ...base, task: { ...base.task, user: 'daemon' } })), 3).spec.task.user).toBe('daemon');
    expect('user' in decodeJob(encodeJob(job(base)), 3).spec.task).toBe(false);
  });
});

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
