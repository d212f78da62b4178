import { claimId, jobId, machineId, taskId, type Job, type JobStatus, type Task, type TaskState } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { describe, expect, it } from 'vitest';
import { deriveJob, isFinal, jobViewToWire, type JobFacts } from './job-view.js';

function job(build: (b: ReturnType<typeof jobSpec>) => ReturnType<typeof jobSpec> = (b) => b, desired: Job['desired'] = 'running'): Job {
  return { id: jobId('j'), spec: build(jobSpec('j')).build(), desired, submittedAtMs: 1000, requestId: '', revision: 5 };
}

function task(index: number, state: TaskState, extra: Partial<Task> = {}): Task {
  return {
    id: taskId('j', index),
    jobId: jobId('j'),
    index,
    attempt: 1,
    claimId: claimId(`c${index}`),
    machineId: machineId('m1'),
    scheduler: 'batch-1',
    state,
    reason: '',
    message: '',
    signal: '',
    pid: 0,
    placedAtMs: 2000,
    startedAtMs: 0,
    finishedAtMs: 0,
    cpuSeconds: 0,
    peakMemoryBytes: 0,
    resources: { cpuMillis: 100, memoryBytes: 1024 },
    priority: 0,
    restarts: 0,
    notBeforeMs: 0,
    revision: 7,
    ...extra,
  };
}

function status(state: JobStatus['state'], reason = ''): JobStatus {
  return { jobId: jobId('j'), state, reason, ruledOut: [{ filter: 'memory', machines: 3 }], attempts: 2, scheduler: 'batch-1', updatedAtMs: 0, firstAttemptAtMs: 0, fullyPlacedAtMs: 0, revision: 9 };
}

const facts = (j: Job, tasks: Task[] = [], s?: JobStatus): JobFacts => ({ job: j, status: s, owner: undefined, tasks });

describe('deriveJob', () => {
  it('is pending with one pending task per instance until anything is placed', () => {
    const d = deriveJob(facts(job((b) => b.instances(3))));
    expect(d.state).toBe('pending');
    expect(d.ended).toBe(false);
    expect(d.slots.map((s) => s.state)).toEqual(['pending', 'pending', 'pending']);
    expect(d.counts.pending).toBe(3);
  });

  it('is running while any task is placed or running', () => {
    expect(deriveJob(facts(job((b) => b.instances(2)), [task(0, 'placed')])).state).toBe('running');
    expect(deriveJob(facts(job((b) => b.instances(2)), [task(0, 'succeeded'), task(1, 'running')])).state).toBe('running');
  });

  it('succeeds once every batch task succeeded, and has then ended', () => {
    const d = deriveJob(facts(job((b) => b.instances(2)), [task(0, 'succeeded'), task(1, 'succeeded')]));
    expect(d).toMatchObject({ state: 'succeeded', ended: true });
  });

  it('fails when a batch task failed and will not be restarted, naming the task and its reason', () => {
    const d = deriveJob(facts(job((b) => b.instances(2)), [task(0, 'succeeded'), task(1, 'failed', { reason: 'oom-killed' })]));
    expect(d).toMatchObject({ state: 'failed', ended: true, reason: 'task 1 oom-killed' });
    const exit = deriveJob(facts(job(), [task(0, 'failed', { exitCode: 3 })]));
    expect(exit.reason).toBe('task 0 exit code 3');
  });

  it('has not ended while a failed task may still be restarted under on-failure', () => {
    const j = job((b) => b.restart({ kind: 'on-failure', maxRestarts: 3 }));
    expect(deriveJob(facts(j, [task(0, 'failed')]))).toMatchObject({ state: 'running', ended: false });
  });

  it('never ends a service job by itself: succeeded and lost tasks are replaced', () => {
    const j = job((b) => b.service().instances(2));
    expect(deriveJob(facts(j, [task(0, 'succeeded'), task(1, 'running')])).ended).toBe(false);
    expect(deriveJob(facts(j, [task(0, 'running'), task(1, 'lost')])).state).toBe('running');
  });

  it('treats a lost or preempted batch task as not final', () => {
    expect(isFinal(task(0, 'lost'), 'never')).toBe(false);
    expect(isFinal(task(0, 'killed', { reason: 'preempted' }), 'never')).toBe(false);
    expect(isFinal(task(0, 'killed', { reason: 'oom-killed' }), 'never')).toBe(true);
  });

  it('is killed once a kill was requested and no task is live, showing never-placed tasks as killed', () => {
    const running = deriveJob(facts(job((b) => b.instances(3), 'killed'), [task(0, 'running'), task(1, 'killed')]));
    expect(running).toMatchObject({ state: 'running', ended: false });
    const done = deriveJob(facts(job((b) => b.instances(3), 'killed'), [task(0, 'killed'), task(1, 'succeeded')]));
    expect(done).toMatchObject({ state: 'killed', ended: true });
    expect(done.slots.map((s) => [s.state, s.reason])).toEqual([
      ['killed', ''],
      ['succeeded', ''],
      ['killed', 'job-killed'],
    ]);
  });

  it('is unschedulable when the scheduler says so and nothing runs, with its reason', () => {
    const d = deriveJob(facts(job(), [], status('unschedulable', 'no machine has 64Gi of memory')));
    expect(d).toMatchObject({ state: 'unschedulable', ended: false, reason: 'no machine has 64Gi of memory' });
    expect(deriveJob(facts(job((b) => b.instances(2)), [task(0, 'running')], status('unschedulable', 'x'))).state).toBe('running');
  });

  it('takes a terminal state from the status record once nothing is live', () => {
    const j = job((b) => b.service().instances(2));
    expect(deriveJob(facts(j, [task(0, 'failed'), task(1, 'failed')], status('failed', 'restart limit reached')))).toMatchObject({ state: 'failed', ended: true, reason: 'restart limit reached' });
    expect(deriveJob(facts(j, [task(0, 'failed'), task(1, 'running')], status('failed'))).state).toBe('running');
  });

  it('ignores task records beyond the job instance count', () => {
    expect(deriveJob(facts(job(), [task(0, 'succeeded'), task(5, 'running')])).state).toBe('succeeded');
  });
});

describe('jobViewToWire', () => {
  it('fills every task view field from the task record', () => {
    const f = facts(job(), [task(0, 'failed', { exitCode: 137, signal: 'SIGKILL', reason: 'oom-killed', message: 'the kernel counted 1 OOM kill', attempt: 2, restarts: 1, startedAtMs: 2100, finishedAtMs: 2500, cpuSeconds: 0.25, peakMemoryBytes: 4096, health: 'failing', healthSinceMs: 2300 })], status('running'));
    const view = jobViewToWire(f, deriveJob(f));
    expect(view).toMatchObject({
      id: 'j',
      state: 'JOB_VIEW_STATE_FAILED',
      scheduler: 'batch-1',
      ruled_out: [{ filter: 'memory', machines: 3 }],
      submitted_at_ms: 1000,
      task_counts: { failed: 1 },
      spec: { kind: 'JOB_KIND_BATCH', commit_mode: 'COMMIT_MODE_UNSPECIFIED' },
    });
    expect(view.tasks).toEqual([
      {
        index: 0,
        state: 'TASK_VIEW_STATE_FAILED',
        machine: 'm1',
        has_exit_code: true,
        exit_code: 137,
        signal: 'SIGKILL',
        reason: 'oom-killed',
        attempt: 2,
        restarts: 1,
        placed_at_ms: 2000,
        started_at_ms: 2100,
        finished_at_ms: 2500,
        cpu_seconds: 0.25,
        peak_memory_bytes: 4096,
        version: 1,
        health: 'failing',
        health_since_ms: 2300,
        message: 'the kernel counted 1 OOM kill',
      },
    ]);
  });

  it('gives an instance without a message, or never placed, an empty one', () => {
    const f = facts(job((b) => b.instances(2)), [task(0, 'running')], status('running'));
    expect(jobViewToWire(f, deriveJob(f)).tasks.map((t) => [t.index, t.message])).toEqual([[0, ''], [1, '']]);
  });

  it('leaves tasks out but keeps the counts when asked to', () => {
    const f = facts(job((b) => b.instances(2)), [task(0, 'running')]);
    const view = jobViewToWire(f, deriveJob(f), { includeTasks: false });
    expect(view.tasks).toEqual([]);
    expect(view.task_counts).toEqual({ pending: 1, placed: 0, running: 1, succeeded: 0, failed: 0, killed: 0, lost: 0 });
  });
});
