import { describe, expect, it } from 'vitest';
import { decodeJob, decodeSchedulerStats, decodeTask, encodeJob, encodeSchedulerStats, encodeTask, protobufEncodeTask } from './codec.js';
import { decodeTaskRecord } from './record-wire.js';
import { jobSpec } from './testing/builders.js';
import { claimId, jobId, machineId, type SchedulerStats, type Task } from './types.js';

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

describe('a task record message', () => {
  const ended: Omit<Task, 'revision' | 'id'> = {
    jobId: jobId('web'),
    index: 3,
    attempt: 2,
    claimId: claimId('c-1'),
    machineId: machineId('m-1'),
    scheduler: 'batch-1',
    state: 'failed',
    reason: 'start-failed',
    message: 'could not start the task: exec /nonexistent/binary: No such file or directory',
    exitCode: 127,
    signal: '',
    pid: 0,
    placedAtMs: 1_000,
    startedAtMs: 0,
    finishedAtMs: 2_000,
    cpuSeconds: 0,
    peakMemoryBytes: 0,
    resources: { cpuMillis: 100, memoryBytes: 1 << 20 },
    priority: 0,
    restarts: 1,
    notBeforeMs: 0,
  };

  it('is kept through an encode and decode, by both decoders, ASCII or not', () => {
    for (const message of [ended.message, 'the work dir holds 2.1 GiB, over its 2 GiB (über)', 'x'.repeat(512)]) {
      const bytes = encodeTask({ ...ended, message });
      expect(decodeTask(bytes, 5).message).toBe(message);
      expect(decodeTaskRecord(bytes, 5).message).toBe(message);
    }
  });

  it('reads as empty in a record written before messages (no field 25), and an empty one is not written', () => {
    // protobufjs leaves out a field it is not given: the bytes an older writer wrote.
    const old = protobufEncodeTask({ ...ended, message: undefined as unknown as string });
    expect(old.length).toBeLessThan(encodeTask(ended).length);
    expect(decodeTask(old, 5)).toMatchObject({ reason: 'start-failed', message: '' });
    expect(decodeTaskRecord(old, 5)).toMatchObject({ reason: 'start-failed', message: '' });
    expect(encodeTask({ ...ended, message: '' })).toEqual(old);
  });
});
