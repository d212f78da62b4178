import { taskId, type JobId } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

const MINUTE = 60_000;

/**
 * Drives a crash loop of task `index` for `forMs` of clock time: every time the task is
 * placed, it fails at once. Returns each restart's placement time and how long after the failure
 * it came, and the job's status reason whenever a restart was still waiting 1.5 s after a failure.
 */
async function crashLoop(job: JobId, index: number, forMs: number): Promise<{ restartsAtMs: number[]; waitsMs: number[]; heldReasons: string[] }> {
  const id = taskId(job, index);
  const restartsAtMs: number[] = [];
  const waitsMs: number[] = [];
  const heldReasons: string[] = [];
  await h.runUntilIdle();
  const untilMs = h.clock.now() + forMs;
  while (h.clock.now() < untilMs) {
    await h.setTaskState(id, 'failed', { exitCode: 1 });
    const failedAt = h.clock.now();
    await h.runUntilIdle({ untilMs: failedAt + 1500 });
    const waiting = (await h.snapshot()).task(id);
    if (waiting?.state === 'failed') heldReasons.push((await h.snapshot()).status(job)?.reason ?? '');
    await h.runUntilIdle();
    const task = (await h.snapshot()).task(id);
    expect(task?.state).toBe('placed');
    restartsAtMs.push(task?.placedAtMs ?? 0);
    waitsMs.push((task?.placedAtMs ?? 0) - failedAt);
  }
  return { restartsAtMs, waitsMs, heldReasons };
}

/** The most restarts within any one minute. */
function busiestMinute(times: readonly number[]): number {
  return Math.max(0, ...times.map((t) => times.filter((u) => u > t - MINUTE && u <= t).length));
}

describe('crash loops', () => {
  it('restart a task that fails at once no sooner than 1 s later, even when its policy asks for 1 ms', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }), { settings: { maxRestartsPerJobPerMinute: 1000 } });
    const job = await h.submit(jobSpec('crasher').service().restart({ kind: 'always', initialBackoffMs: 1, maxBackoffMs: 1 }));
    const { restartsAtMs, waitsMs } = await crashLoop(job, 0, 30_000);
    expect(restartsAtMs.length).toBeGreaterThanOrEqual(25);
    expect(Math.min(...waitsMs)).toBeGreaterThanOrEqual(1000);
    expect(busiestMinute(restartsAtMs)).toBeLessThanOrEqual(30);
  });

  it('hold a job to the restart cap per minute: restarts beyond it wait, the status says why, the job does not fail', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }));
    const job = await h.submit(jobSpec('crasher').service().restart({ kind: 'always', initialBackoffMs: 1, maxBackoffMs: 1 }));
    const { restartsAtMs, waitsMs, heldReasons } = await crashLoop(job, 0, 3 * MINUTE);
    // Default cap: max(10, instances) = 10 in any minute.
    expect(busiestMinute(restartsAtMs)).toBe(10);
    expect(Math.min(...waitsMs)).toBeGreaterThanOrEqual(1000);
    // It keeps restarting, minute after minute: 10 in each of the three minutes.
    expect(restartsAtMs.length).toBeGreaterThanOrEqual(30);
    expect(restartsAtMs.length).toBeLessThanOrEqual(31);
    expect(heldReasons.length).toBeGreaterThan(0);
    expect(new Set(heldReasons)).toEqual(new Set(['restart rate limit: 10 restarts in the last minute']));
    const status = (await h.snapshot()).status(job);
    expect(status?.state).not.toBe('failed');
  });

  it('count restarts per job, with a cap of at least one restart per task per minute, and never hold back replacing a lost task', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }), { settings: { maxRestartsPerJobPerMinute: 2 } });
    const job = await h.submit(jobSpec('pair').service().instances(3).restart({ kind: 'always', initialBackoffMs: 1, maxBackoffMs: 1 }));
    await h.runUntilIdle();
    // Cap max(2, 3) = 3: three restarts of task 0 take the job's whole budget for the minute.
    for (let i = 0; i < 3; i++) {
      await h.setTaskState(taskId(job, 0), 'failed', { exitCode: 1 });
      await h.runUntilIdle();
    }
    expect((await h.tasks(job)).map((t) => t.attempt)).toEqual([4, 1, 1]);
    // At the cap: a failed task 1 waits, but a lost task 2 is replaced after the 1 s floor.
    await h.setTaskState(taskId(job, 1), 'failed', { exitCode: 1 });
    await h.setTaskState(taskId(job, 2), 'lost', { reason: 'machine-lost' });
    const lostAt = h.clock.now();
    await h.runUntilIdle({ untilMs: lostAt + 10_000 });
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => [t.index, t.state, t.attempt])).toEqual([
      [0, 'placed', 4],
      [1, 'failed', 1],
      [2, 'placed', 2],
    ]);
    expect(tasks[2]?.placedAtMs).toBeGreaterThanOrEqual(lostAt + 1000);
    expect((await h.snapshot()).status(job)).toMatchObject({ state: 'running', reason: 'restart rate limit: 3 restarts in the last minute' });
    // Not for ever: task 1 goes once the first restart of task 0 leaves the minute.
    await h.runUntilIdle();
    expect((await h.tasks(job)).map((t) => t.attempt)).toEqual([4, 2, 2]);
  });
});
