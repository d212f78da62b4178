import { jobTaskVersion, jobVersion, taskId, taskVersion, type JobId, type JobSpec, type UpdateStrategy } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { planRollout } from './rollout.js';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

const STRATEGY: UpdateStrategy = { maxUnavailable: 1, maxSurge: 0, minHealthyTimeMs: 10_000, healthyDeadlineMs: 60_000, autoRollback: false };

function service(command: string[], instances = 4, update: Partial<UpdateStrategy> = {}): JobSpec {
  return { ...jobSpec('web').service().instances(instances).cpu(500).memory('256Mi').command(...command).build(), update: { ...STRATEGY, ...update } };
}

/** What agents do: every placed task starts running now; with `fails`, tasks of that command exit at once instead. */
async function agents(job: JobId, fails?: string): Promise<void> {
  const snapshot = await h.snapshot();
  const spec = snapshot.job(job)?.spec;
  for (const task of await h.tasks(job)) {
    if (task.state !== 'placed') continue;
    const failing = fails !== undefined && spec?.task.command[0] === fails && taskVersion(task) >= jobTaskVersion(snapshot.job(job) ?? {});
    if (failing) await h.setTaskState(task.id, 'failed', { exitCode: 1 });
    else await h.setTaskState(task.id, 'running', { startedAtMs: h.clock.now(), pid: 1 });
  }
}

/** Healthy as a deployment counts it: running, and (at the current task spec) for minHealthyTime. */
async function healthy(job: JobId): Promise<number> {
  const snapshot = await h.snapshot();
  const current = snapshot.job(job);
  if (current === undefined) return 0;
  let n = 0;
  for (let index = 0; index < current.spec.instances; index++) {
    const task = snapshot.task(taskId(job, index));
    if (task?.state !== 'running') continue;
    if (taskVersion(task) < jobTaskVersion(current) || h.clock.now() - task.startedAtMs >= STRATEGY.minHealthyTimeMs) n++;
  }
  return n;
}

/** Runs the cell for `seconds`, a second at a time, with agents, sampling the healthy count after every step. */
async function run(job: JobId, seconds: number, fails?: string): Promise<number[]> {
  const samples: number[] = [];
  for (let s = 0; s < seconds; s++) {
    const target = h.clock.now() + 1_000;
    await h.runUntilIdle({ untilMs: target });
    if (h.clock.now() < target) await h.advance(target - h.clock.now());
    await agents(job, fails);
    await h.runUntilIdle({ untilMs: h.clock.now() });
    samples.push(await healthy(job));
  }
  return samples;
}

async function startService(spec: JobSpec): Promise<JobId> {
  h = await SchedulerHarness.open({ machines: 4 });
  await h.addScheduler(firstFitPolicy({ kind: 'service' }), {});
  const job = await h.submit(spec);
  await run(job, 15);
  expect(await healthy(job)).toBe(spec.instances);
  return job;
}

describe('rolling updates', () => {
  it('replaces a 4-instance service one instance at a time, never with fewer than 3 healthy, and says it succeeded', async () => {
    const job = await startService(service(['v1']));
    const updated = await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: service(['v2']) }, by: 'test' });
    expect(updated.kind).toBe('updated');
    const samples = await run(job, 90);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(3);
    const snapshot = await h.snapshot();
    const tasks = [...snapshot.tasksOf(job)];
    expect(tasks.map((t) => [t.state, taskVersion(t)])).toEqual([0, 1, 2, 3].map(() => ['running', 2]));
    expect(tasks.every((t) => t.restarts === 0)).toBe(true);
    expect(snapshot.status(job)?.deployment).toMatchObject({ version: 2, state: 'succeeded', healthy: 4, updated: 4, total: 4 });
    expect(h.schedulers[0]?.metrics()).toMatchObject({ tasksUpdated: 4, tasksScaledDown: 0, jobsRolledBack: 0 });
  });

  it('replaces two at a time with maxUnavailable 2, never with fewer than 2 healthy', async () => {
    const job = await startService(service(['v1'], 4, { maxUnavailable: 2 }));
    await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: service(['v2'], 4, { maxUnavailable: 2 }) }, by: 'test' });
    const samples = await run(job, 60);
    expect(Math.min(...samples)).toBe(2);
    expect((await h.snapshot()).status(job)?.deployment?.state).toBe('succeeded');
  });

  it('does not replace instances on a scale, and stops the highest indexes on a scale down (scaled-down), placing them again on a scale up', async () => {
    const job = await startService(service(['v1']));
    await h.cell.updateJob({ jobId: job, change: { kind: 'scale', instances: 2 }, by: 'test' });
    await run(job, 3);
    let tasks = await h.tasks(job);
    expect(tasks.map((t) => [t.index, t.state, t.reason])).toEqual([
      [0, 'running', ''],
      [1, 'running', ''],
      [2, 'killed', 'scaled-down'],
      [3, 'killed', 'scaled-down'],
    ]);
    await h.cell.updateJob({ jobId: job, change: { kind: 'scale', instances: 5 }, by: 'test' });
    await run(job, 3);
    tasks = await h.tasks(job);
    expect(tasks.map((t) => t.state)).toEqual(['running', 'running', 'running', 'running', 'running']);
    expect(tasks.map((t) => t.attempt)).toEqual([1, 1, 2, 2, 1]);
    expect(tasks.every((t) => t.restarts === 0)).toBe(true);
    expect((await h.snapshot()).status(job)?.deployment).toBeUndefined();
  });

  it('fails an update whose instances never get healthy and, with autoRollback, returns to the last good version, never with fewer than 3 healthy', async () => {
    const spec = (command: string): JobSpec => service([command], 4, { autoRollback: true, healthyDeadlineMs: 30_000 });
    const job = await startService(spec('good'));
    await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: spec('bad') }, by: 'test' });
    const samples = await run(job, 150, 'bad');
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(3);
    const snapshot = await h.snapshot();
    const current = snapshot.job(job);
    expect(current === undefined ? 0 : jobVersion(current)).toBe(3);
    expect(current?.spec.task.command).toEqual(['good']);
    expect(current?.versionChange).toMatch(/^auto-rollback to version 1: /);
    expect(snapshot.status(job)?.deployment).toMatchObject({ version: 3, state: 'succeeded' });
    expect([...snapshot.tasksOf(job)].map((t) => t.state)).toEqual(['running', 'running', 'running', 'running']);
    // Only the instance that had moved to the broken version was replaced: the others run version 1's spec, which is the rollback's.
    expect([...snapshot.tasksOf(job)].map((t) => [taskVersion(t), t.attempt > 1])).toEqual([
      [3, true],
      [1, false],
      [1, false],
      [1, false],
    ]);
    expect(h.schedulers[0]?.metrics().jobsRolledBack).toBe(1);
    const history = await h.cell.jobHistory(job);
    expect(history.map((v) => [v.version, v.by])).toEqual([
      [3, 'scheduler'],
      [2, 'test'],
      [1, ''],
    ]);
  });

  it('without autoRollback, stops at the failure and says why', async () => {
    const job = await startService(service(['good'], 4, { healthyDeadlineMs: 30_000 }));
    await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: service(['bad'], 4, { healthyDeadlineMs: 30_000 }) }, by: 'test' });
    const samples = await run(job, 90, 'bad');
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(3);
    const snapshot = await h.snapshot();
    expect(snapshot.status(job)?.deployment).toMatchObject({ version: 2, state: 'failed', reason: 'instance 0 not healthy within 30s' });
    expect(jobVersion(snapshot.job(job) ?? {})).toBe(2);
    expect([...snapshot.tasksOf(job)].filter((t) => t.state === 'running' && taskVersion(t) === 1)).toHaveLength(3);
  });
});

describe('automatic rollback out of reach', () => {
  it('says the update failed and was not rolled back when the last good version is no longer kept', async () => {
    const job = await startService(service(['good'], 4, { healthyDeadlineMs: 30_000 }));
    await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: service(['bad'], 4, { healthyDeadlineMs: 30_000 }) }, by: 'test' });
    await run(job, 60, 'bad');
    expect((await h.snapshot()).status(job)?.deployment).toMatchObject({ version: 2, state: 'failed' });
    // Ten versions that change no instance push version 1 (the last good one) out of the history.
    for (let p = 1; p <= 10; p++) await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: { ...service(['bad'], 4, { healthyDeadlineMs: 30_000 }), priority: p } }, by: 'test' });
    await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: service(['worse'], 4, { healthyDeadlineMs: 30_000, autoRollback: true }) }, by: 'test' });
    await run(job, 60, 'worse');
    const deployment = (await h.snapshot()).status(job)?.deployment;
    expect(deployment).toMatchObject({ version: 13, state: 'failed', lastGoodVersion: 1 });
    expect(deployment?.reason).toMatch(/; not rolled back to version 1 \(unknown-version\)$/);
    expect(jobVersion((await h.snapshot()).job(job) ?? {})).toBe(13);
  });
});

describe('planRollout', () => {
  it('counts an instance with a health check healthy only once it passed for minHealthyTime', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }), {});
    const spec = { ...service(['v1'], 2), task: { ...service(['v1'], 2).task, healthCheck: { command: ['true'] } } };
    const job = await h.submit(spec);
    await h.runUntilIdle({ untilMs: h.clock.now() + 1_000 });
    await h.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: { ...spec, task: { ...spec.task, command: ['v2'] } } }, by: 'test' });
    const now = h.clock.now();
    for (const task of await h.tasks(job)) await h.setTaskState(task.id, 'running', { startedAtMs: now - 60_000 });
    const snapshot = await h.snapshot();
    const current = snapshot.job(job);
    if (current === undefined) throw new Error('no job');
    // Old instances, running: the first step stops one (maxUnavailable 1).
    const first = planRollout(current, snapshot, now, undefined);
    expect(first.stop.map((s) => [s.task.index, s.reason])).toEqual([[0, 'updated']]);
    expect(first.deployment).toMatchObject({ version: 2, state: 'running', healthy: 0, updated: 0, total: 2, lastGoodVersion: 1 });
    // An old instance failing its check is down already: replacing it costs nothing.
    await h.setTaskState(taskId(job, 1), 'running', { health: 'failing', healthSinceMs: now });
    const second = planRollout(current, await h.snapshot(), now, first.deployment);
    expect(second.stop.map((s) => s.task.index)).toEqual([1]);
  });
});
