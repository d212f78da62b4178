import { jobId, taskId, type CellSnapshot, type Job, type Task } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { describe, expect, it } from 'vitest';
import type { JobProgress } from './job-progress.js';
import { RestartLog } from './restart-log.js';

const id = jobId('crasher');
const job: Job = { id, spec: jobSpec('crasher').service().instances(2).build(), desired: 'running', submittedAtMs: 0, requestId: '', revision: 1 } as Job;

/** A snapshot holding only the job's task records (all RestartLog reads). */
function snapshotWith(tasks: Partial<Task>[]): CellSnapshot {
  return { tasksOf: () => tasks.map((t, index) => ({ id: taskId(id, index), index, restarts: 0, placedAtMs: 0, ...t }) as Task)[Symbol.iterator]() } as unknown as CellSnapshot;
}

/** Both tasks of the job due for a restart now. */
const bothDue: JobProgress = {
  toPlace: [0, 1].map((index) => ({ taskId: taskId(id, index), index })),
  restarting: new Set([0, 1]),
  nextRestartAtMs: undefined,
  live: [],
  fullyPlaced: false,
  outcome: { kind: 'active' },
};

describe('the restart log', () => {
  it('holds a job to its cap with the restarts it committed, and lets them go a minute later', () => {
    const log = new RestartLog(3);
    const empty = snapshotWith([]);
    expect(log.throttle(job, empty, bothDue, 1000)).toBe(bothDue);
    log.note(id, 2, 1000);
    log.note(id, 1, 2000);
    const held = log.throttle(job, empty, bothDue, 3000);
    expect(held.toPlace).toEqual([]);
    expect(held.throttled).toEqual({ recent: 3, held: 2, untilMs: 61_000 });
    expect(log.throttle(job, empty, bothDue, 61_001).toPlace.map((t) => t.index)).toEqual([0, 1]);
  });

  it('seeds a job it never restarted from the task records placed again in the last minute', () => {
    const log = new RestartLog(1);
    // Cap max(1, 2 instances) = 2; both tasks were re-placed within the minute by a previous owner.
    const taken = snapshotWith([
      { restarts: 5, placedAtMs: 50_000 },
      { restarts: 1, placedAtMs: 55_000 },
    ]);
    expect(log.throttle(job, taken, bothDue, 60_000).throttled).toEqual({ recent: 2, held: 2, untilMs: 110_000 });
    // Records placed more than a minute ago, or never restarted, do not count.
    const calm = new RestartLog(1);
    expect(calm.throttle(job, snapshotWith([{ restarts: 3, placedAtMs: 1000 }, { restarts: 0, placedAtMs: 59_000 }]), bothDue, 70_000)).toBe(bothDue);
  });

  it('forgets jobs that have not restarted for a minute', () => {
    const log = new RestartLog(10);
    for (let i = 0; i < 100; i++) log.note(jobId(`job-${i}`), 1, 1000);
    expect(log.size).toBe(100);
    log.note(id, 1, 62_000);
    expect(log.size).toBe(1);
  });
});
