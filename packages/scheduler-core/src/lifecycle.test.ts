import { PROTOS_DIR, jobId, taskId, type JobId } from '@omega/cell-state';
import path from 'node:path';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { isAbandonedStatus } from './job-status.js';
import { SchedulerHarness, firstFitPolicy, jobSpec, machine } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

async function statusOf(job: JobId) {
  return (await h.snapshot()).status(job);
}

/** Writes a job record as a buggy or older client might: no validation, raw wire fields. */
async function putRawJob(id: string, spec: Record<string, unknown>): Promise<JobId> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS_DIR, target);
  root.loadSync('omega/v1/records.proto', { keepCase: false });
  const type = root.lookupType('omega.v1.JobRecord');
  const task = { command: ['true'], resources: { cpuMillis: 100, memoryBytes: 1024 ** 2 } };
  const bytes = type.encode(type.fromObject({ id, spec: { name: id, kind: 1, instances: 1, task, ...spec }, desired: 1, submittedAtMs: h.clock.now() })).finish();
  await h.kv.put(h.cell.keys.job(jobId(id)), bytes);
  return jobId(id);
}

describe('restarts', () => {
  it('restarts failed tasks after a backoff doubled per restart, then fails the job after maxRestarts', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('flaky').restart({ kind: 'on-failure', maxRestarts: 2, initialBackoffMs: 1000, maxBackoffMs: 60_000 }));
    await h.runUntilIdle();
    const id = taskId(job, 0);
    const placedAfterFailure: number[] = [];
    for (let i = 0; i < 2; i++) {
      await h.setTaskState(id, 'failed', { exitCode: 3 });
      const failedAt = h.clock.now();
      await h.runUntilIdle();
      const task = (await h.snapshot()).task(id);
      expect(task).toMatchObject({ state: 'placed', attempt: i + 2, restarts: i + 1 });
      placedAfterFailure.push((task?.placedAtMs ?? 0) - failedAt);
    }
    expect(placedAfterFailure).toEqual([1000, 2000]);
    await h.setTaskState(id, 'failed', { exitCode: 3 });
    await h.runUntilIdle();
    expect(await statusOf(job)).toMatchObject({ state: 'failed', reason: 'task 0 failed (exit 3) after 2 restarts (maxRestarts 2)' });
    expect((await h.snapshot()).owner(job)).toBeUndefined();
  });

  it('never restarts a batch task by default: the job fails when a task fails and its other tasks are killed', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('once').instances(3));
    await h.runUntilIdle();
    await h.setTaskState(taskId(job, 1), 'failed', { exitCode: 1 });
    await h.runUntilIdle();
    expect(await statusOf(job)).toMatchObject({ state: 'failed', reason: 'task 1 failed (exit 1), restart policy never' });
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => [t.state, t.reason])).toEqual([
      ['killed', 'job-failed'],
      ['failed', ''],
      ['killed', 'job-failed'],
    ]);
  });

  it('marks a batch job succeeded when every task succeeded, and lets it go', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('ok').instances(4));
    await h.runUntilIdle();
    await h.endTasks(job, 'succeeded', { exitCode: 0 });
    await h.runUntilIdle();
    expect((await statusOf(job))?.state).toBe('succeeded');
    expect((await h.snapshot()).owner(job)).toBeUndefined();
    expect(s.ownedJobs()).toEqual([]);
    expect(s.metrics().jobsSucceeded).toBe(1);
  });

  it('replaces service tasks that ended, whatever the policy says about lost ones', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }));
    const job = await h.submit(jobSpec('web').service().instances(2).restart({ kind: 'never' }));
    await h.runUntilIdle();
    await h.setTaskState(taskId(job, 0), 'lost', { reason: 'machine-lost' });
    await h.setTaskState(taskId(job, 1), 'succeeded');
    await h.runUntilIdle();
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => [t.state, t.attempt])).toEqual([
      ['placed', 2],
      ['succeeded', 1],
    ]);
    expect((await statusOf(job))?.state).toBe('running');
  });
});

describe('kill', () => {
  it('kills the live tasks of a job whose desired state is killed, reports it and lets the job go', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('doomed').instances(3));
    await h.runUntilIdle();
    await h.setTaskState(taskId(job, 0), 'running');
    await h.setTaskState(taskId(job, 2), 'succeeded');
    await h.cell.setJobDesired(job, 'killed');
    await h.runUntilIdle();
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => [t.state, t.reason])).toEqual([
      ['killed', 'job-killed'],
      ['killed', 'job-killed'],
      ['succeeded', ''],
    ]);
    expect((await statusOf(job))?.state).toBe('killed');
    expect((await h.snapshot()).owner(job)).toBeUndefined();
    expect(s.metrics().jobsKilled).toBe(1);
  });
});

describe('machine loss', () => {
  it('marks the tasks of a machine lost once its heartbeat has been gone for the grace period', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(2000), machine('m1').cpu(2000)] });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { machineLossGraceMs: 5000 } });
    const job = await h.submit(jobSpec('retry').instances(2).cpu(1000).restart({ kind: 'on-failure', initialBackoffMs: 1 }));
    await h.runUntilIdle();
    expect((await h.tasks(job)).map((t) => t.machineId)).toEqual(['m0', 'm0']);
    await h.loseMachine('m0');
    await h.step(s);
    const seenGoneAt = h.clock.now();
    expect((await h.tasks(job)).map((t) => t.state)).toEqual(['placed', 'placed']);
    await h.runUntilIdle();
    const snapshot = await h.snapshot();
    const tasks = [...snapshot.tasksOf(job)].sort((a, b) => a.index - b.index);
    // Replaced on m1, after being lost; the lost attempt's claims no longer count on m0.
    expect(tasks.map((t) => [t.machineId, t.attempt, t.state])).toEqual([
      ['m1', 2, 'placed'],
      ['m1', 2, 'placed'],
    ]);
    expect(tasks[0]?.placedAtMs).toBeGreaterThanOrEqual(seenGoneAt + 5000);
    expect(snapshot.used(h.machineIds[0]!)).toEqual({ cpuMillis: 0, memoryBytes: 0 });
    expect(s.metrics().tasksMarkedLost).toBe(2);
  });

  it('fails a batch job whose restart policy says never itself when its task is lost', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy(), { settings: { machineLossGraceMs: 100 } });
    const job = await h.submit(jobSpec('fragile').restart({ kind: 'never' }));
    await h.runUntilIdle();
    await h.loseMachine('m0');
    await h.runUntilIdle();
    expect(await statusOf(job)).toMatchObject({ state: 'failed', reason: 'task 0 lost (machine-lost), restart policy never' });
  });

  it('places a lost batch task of the default policy again on another machine, as a new attempt, and the job still succeeds', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy(), { settings: { machineLossGraceMs: 100 } });
    const job = await h.submit(jobSpec('sturdy'));
    await h.runUntilIdle();
    const first = (await h.snapshot()).task(taskId(job, 0));
    await h.loseMachine(first?.machineId ?? 'm0');
    await h.runUntilIdle();
    const again = (await h.snapshot()).task(taskId(job, 0));
    expect(again).toMatchObject({ attempt: 2, state: 'placed' });
    expect(again?.machineId).not.toBe(first?.machineId);
    expect((await statusOf(job))?.state).not.toBe('failed');
    await h.setTaskState(taskId(job, 0), 'succeeded');
    await h.runUntilIdle();
    expect(await statusOf(job)).toMatchObject({ state: 'succeeded' });
  });
});

describe('bad job records', () => {
  it('fails a job with no tasks, or an unknown constraint operator, with a reason naming the field', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy());
    const empty = await putRawJob('empty', { instances: 0 });
    const weird = await putRawJob('weird', { constraints: [{ attribute: 'rack', operator: 42, values: ['r1'] }] });
    await h.runUntilIdle();
    expect(await statusOf(empty)).toMatchObject({ state: 'failed', reason: 'invalid job record: instances must be an integer >= 1' });
    expect((await statusOf(weird))?.reason).toMatch(/^invalid job record: constraints\[0\]\.operator must be one of equals, in/);
    expect(s.metrics().jobsInvalid).toBe(2);
    expect((await h.snapshot()).owner(empty)).toBeUndefined();
  });

  it('fails a job of an unknown kind from whichever scheduler takes it', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }));
    const odd = await putRawJob('odd', { kind: 7 });
    await h.runUntilIdle();
    expect(await statusOf(odd)).toMatchObject({ state: 'failed', reason: 'invalid job record: kind must be batch or service' });
  });

  it('gives up at once on a task larger than any machine, saying which resource', async () => {
    h = await SchedulerHarness.open({ machines: 4 });
    const s = await h.addScheduler(firstFitPolicy());
    const huge = await h.submit(jobSpec('huge').cpu(64_000));
    await h.runUntilIdle();
    expect(await statusOf(huge)).toMatchObject({
      state: 'unschedulable',
      reason: 'a task needs more than any machine has: cpu too small on 4 machines',
      ruledOut: [{ filter: 'cpu', machines: 4 }],
    });
    expect(s.metrics()).toMatchObject({ attempts: 1, jobsAbandoned: 1 });
    expect(isAbandonedStatus(await statusOf(huge))).toBe(true);
  });

  it('survives a policy that throws on a job, giving that job up with the error', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(
      firstFitPolicy({
        onPlace: (input) => {
          if (input.job.spec.name === 'cursed') throw new Error('policy bug');
        },
      }),
    );
    const cursed = await h.submit(jobSpec('cursed'));
    const fine = await h.submit(jobSpec('fine'));
    await h.runUntilIdle();
    expect((await statusOf(cursed))?.reason).toBe('abandoned after 1 attempts (0 without progress): placement failed: policy bug');
    expect(isAbandonedStatus(await statusOf(cursed))).toBe(true);
    expect((await statusOf(fine))?.state).toBe('running');
  });
});

describe('several instances', () => {
  it('share the jobs by rendezvous hashing, and one takes over the jobs of another whose lease ended', async () => {
    h = await SchedulerHarness.open({ machines: 8 });
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', settings: { thinkTimeJobMs: 50 } });
    const b = await h.addScheduler(firstFitPolicy(), { name: 'batch-b', settings: { thinkTimeJobMs: 50 } });
    const jobs: JobId[] = [];
    for (let i = 0; i < 20; i++) jobs.push(await h.submit(jobSpec('share').instances(2).cpu(200)));
    // One round: each instance takes the jobs hashed to it and attempts one.
    await h.step(a);
    await h.step(b);
    const ownedByA = a.ownedJobs();
    const ownedByB = b.ownedJobs();
    expect(ownedByA.length).toBeGreaterThan(0);
    expect(ownedByB.length).toBeGreaterThan(0);
    expect(ownedByA.length + ownedByB.length).toBe(20);
    expect(ownedByA.filter((j) => ownedByB.includes(j))).toEqual([]);

    await h.crash(a);
    await h.runUntilIdle();
    const snapshot = await h.snapshot();
    for (const job of jobs) {
      expect(snapshot.status(job)?.state).toBe('running');
      expect(snapshot.owner(job)?.scheduler).toBe('batch-b');
    }
    expect(b.metrics().jobsAcquired).toBe(20);
    expect(await h.violations()).toEqual([]);
  });

  it('take a job hashed to another live instance only after the ownership grace', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', settings: { ownershipGraceMs: 1000 } });
    const b = await h.addScheduler(firstFitPolicy(), { name: 'batch-b', settings: { ownershipGraceMs: 1000 } });
    let job: JobId | undefined;
    for (let i = 0; job === undefined; i++) {
      const id = await h.submit(jobSpec('for-a'), { id: `for-a-${i}` });
      await h.step(b);
      if (!b.ownedJobs().includes(id)) job = id;
    }
    // a never steps (busy, say): b waits out the grace, then takes the job.
    const seen = h.clock.now();
    let step = await h.step(b);
    expect(step).toMatchObject({ kind: 'idle', wakeAtMs: seen + 1000 });
    await h.clock.advanceTo(seen + 1000);
    step = await h.step(b);
    expect(b.ownedJobs()).toContain(job);
    expect(a.ownedJobs()).toEqual([]);
  });
});
