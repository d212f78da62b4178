import { describe, expect, it } from 'vitest';
import { age, formatJob, formatJobs, formatMachines, formatStats, formatWatchEvent, taskSummary } from './output.js';
import { jobOutput, jobSpecToWire, machineOutput, schedulerOutput, type WireJobView, type WireTaskView } from './wire.js';
import { parseJobFile } from './job-file.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');

function wireTask(index: number, overrides: Partial<WireTaskView> = {}): WireTaskView {
  return {
    index,
    state: 'TASK_VIEW_STATE_PENDING',
    machine: '',
    has_exit_code: false,
    exit_code: 0,
    signal: '',
    reason: '',
    attempt: 0,
    restarts: 0,
    placed_at_ms: 0,
    started_at_ms: 0,
    finished_at_ms: 0,
    cpu_seconds: 0,
    peak_memory_bytes: 0,
    ...overrides,
  };
}

function wireJob(overrides: Partial<WireJobView> = {}): WireJobView {
  const spec = parseJobFile('name: hello\nkind: batch\ninstances: 2\ncommand: [sh, -c, "echo hi"]\ncpu: 500m\nmemory: 64Mi\n');
  return {
    id: 'hello-0000000001',
    spec: jobSpecToWire(spec) as unknown as WireJobView['spec'],
    state: 'JOB_VIEW_STATE_RUNNING',
    reason: '',
    ruled_out: [],
    kill_requested: false,
    submitted_at_ms: NOW - 90_000,
    scheduler: 'batch-0',
    tasks: [
      wireTask(0, { state: 'TASK_VIEW_STATE_FAILED', machine: 'dev-0', has_exit_code: true, exit_code: 137, reason: 'oom-killed', attempt: 1, started_at_ms: NOW - 60_000, peak_memory_bytes: 64 * 1024 * 1024 }),
      wireTask(1, { state: 'TASK_VIEW_STATE_RUNNING', machine: 'dev-1', attempt: 2, restarts: 1 }),
    ],
    task_counts: { pending: 0, placed: 0, running: 1, succeeded: 0, failed: 1, killed: 0, lost: 0 },
    ...overrides,
  };
}

describe('--json output', () => {
  it('gives a job its id, name, kind, state and tasks with index, state, machine, exit code and reason', () => {
    const job = jobOutput(wireJob());
    expect(job).toMatchObject({ id: 'hello-0000000001', name: 'hello', kind: 'batch', state: 'running', instances: 2, scheduler: 'batch-0' });
    expect(job.tasks).toEqual([
      expect.objectContaining({ index: 0, state: 'failed', machine: 'dev-0', exitCode: 137, reason: 'oom-killed', attempt: 1 }),
      expect.objectContaining({ index: 1, state: 'running', machine: 'dev-1', exitCode: null, reason: '', restarts: 1 }),
    ]);
    expect(job.spec).toMatchObject({ command: ['sh', '-c', 'echo hi'], cpuMillis: 500, memoryBytes: 64 * 1024 * 1024, commitMode: 'unspecified' });
    expect(JSON.parse(JSON.stringify(job))).toEqual(job);
  });

  it('gives a machine its capacity and allocation in integers, task count and liveness', () => {
    const machine = machineOutput({
      id: 'dev-0',
      capacity: { cpu_millis: 2000, memory_bytes: 4 * 1024 ** 3 },
      allocated: { cpu_millis: 500, memory_bytes: 64 * 1024 ** 2 },
      tasks: 1,
      alive: true,
      schedulable: true,
      unschedulable_reason: '',
      attributes: { rack: 'rack-0' },
      hollow: false,
      enforcement_disabled: false,
    });
    expect(machine).toMatchObject({ id: 'dev-0', capacity: { cpuMillis: 2000, memoryBytes: 4 * 1024 ** 3 }, allocated: { cpuMillis: 500, memoryBytes: 64 * 1024 ** 2 }, tasks: 1, alive: true });
  });

  it('gives a scheduler its transactions, conflicts, conflict fraction and busyness', () => {
    const stats = schedulerOutput({
      name: 'batch-0',
      kind: 'batch',
      conflict_mode: 'resource-fit',
      transaction_mode: 'incremental',
      transactions: 10,
      transactions_failed: 2,
      claims_committed: 30,
      claims_conflicted: 3,
      conflict_fraction: 0.25,
      busyness: 0.4,
      jobs_placed: 7,
      jobs_abandoned: 0,
      wait_first_attempt_mean_ms: 1,
      wait_fully_placed_mean_ms: 2,
      spurious_retries: 0,
      updated_at_ms: 5,
    });
    expect(stats).toMatchObject({ name: 'batch-0', kind: 'batch', transactions: 10, conflicts: 2, conflictFraction: 0.25, busyness: 0.4 });
  });
});

describe('tables', () => {
  it('lists jobs with their task summary and age', () => {
    const text = formatJobs([jobOutput(wireJob())], NOW);
    const [head, row] = text.split('\n');
    expect(head).toMatch(/^ID\s+NAME\s+KIND\s+STATE\s+TASKS\s+AGE\s+REASON$/);
    expect(row).toMatch(/^hello-0000000001\s+hello\s+batch\s+running\s+1 running, 1 failed\s+90s$/);
    expect(formatJobs([], NOW)).toBe('No jobs.');
  });

  it('shows a job with one row per task, exit code and reason', () => {
    const text = formatJob(jobOutput(wireJob()), NOW);
    expect(text).toContain('State:      running');
    expect(text).toContain('Instances:  2, each 500m CPU, 64Mi memory');
    expect(text).toContain('Command:    sh -c "echo hi"');
    expect(text).toMatch(/\n0\s+failed\s+dev-0\s+1\s+0\s+137\s+oom-killed\s+60s ago\s+-\s+64Mi\n/);
  });

  it('shows machines with allocation as used/capacity', () => {
    const text = formatMachines([machineOutput({ id: 'dev-0', capacity: { cpu_millis: 2000, memory_bytes: 1024 ** 3 }, allocated: { cpu_millis: 500, memory_bytes: 256 * 1024 ** 2 }, tasks: 2, alive: false, schedulable: true, unschedulable_reason: '', attributes: {}, hollow: true, enforcement_disabled: false })]);
    expect(text.split('\n')[1]).toMatch(/^dev-0\s+no\s+yes\s+500m\/2 \(25%\)\s+256Mi\/1Gi \(25%\)\s+2\s+hollow$/);
  });

  it('shows scheduler stats with the conflict fraction and busyness', () => {
    const text = formatStats([{ name: 'batch-0', kind: 'batch', conflictMode: 'resource-fit', transactionMode: 'incremental', transactions: 10, conflicts: 2, conflictFraction: 0.25, busyness: 0.4, claimsCommitted: 0, claimsConflicted: 0, jobsPlaced: 7, jobsAbandoned: 0, waitFirstAttemptMeanMs: 0, waitFullyPlacedMeanMs: 0, spuriousRetries: 0, updatedAtMs: 0 }]);
    expect(text.split('\n')[1]).toMatch(/^batch-0\s+batch\s+resource-fit\s+10\s+2\s+0\.250\s+40\.0%\s+7\s+0$/);
  });

  it('prints a watch event as one line with the task summary and reasons', () => {
    expect(formatWatchEvent(jobOutput(wireJob({ state: 'JOB_VIEW_STATE_FAILED' })), NOW)).toBe('12:00:00  hello-0000000001  failed  1 running, 1 failed  (oom-killed)');
  });

  it('summarises task counts, live ones first, and ages in human units', () => {
    expect(taskSummary({ pending: 1, placed: 0, running: 2, succeeded: 3, failed: 0, killed: 0, lost: 0 })).toBe('2 running, 1 pending, 3 succeeded');
    expect([age(NOW - 5_000, NOW), age(NOW - 600_000, NOW), age(NOW - 3 * 3600_000, NOW), age(NOW - 3 * 86_400_000, NOW), age(0, NOW)]).toEqual(['5s', '10m', '3h', '3d', '-']);
  });
});
