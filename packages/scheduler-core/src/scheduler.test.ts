import { jobId, taskId, type JobId } from '@omega/cell-state';
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

describe('the scheduling loop', () => {
  it('places every task of a job and reports the job running', async () => {
    h = await SchedulerHarness.open({ machines: 3 });
    const s = await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('web').instances(5).cpu(1000));
    await h.runUntilIdle();
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => t.state)).toEqual(['placed', 'placed', 'placed', 'placed', 'placed']);
    expect(tasks.every((t) => t.scheduler === s.name && t.attempt === 1)).toBe(true);
    expect(await statusOf(job)).toMatchObject({ state: 'running', scheduler: s.name, attempts: 1 });
    expect(s.metrics()).toMatchObject({ attempts: 1, transactionsOk: 1, transactionsFailed: 0, claimsCommitted: 5, jobsPlaced: 1 });
    expect(await h.violations()).toEqual([]);
  });

  it('attempts jobs by priority, then by age', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(1000).memory('4Gi')] });
    const order: string[] = [];
    await h.addScheduler(firstFitPolicy({ onPlace: (input) => order.push(input.job.spec.name) }), { settings: { maxAttemptsWithoutProgress: 1 } });
    await h.submit(jobSpec('old-low').cpu(1000).priority(1));
    await h.advance(1);
    await h.submit(jobSpec('new-high').cpu(1000).priority(9));
    await h.advance(1);
    await h.submit(jobSpec('newer-low').cpu(1000).priority(1));
    await h.runUntilIdle();
    expect(order).toEqual(['new-high', 'old-low', 'newer-low']);
    const snapshot = await h.snapshot();
    expect(snapshot.task(taskId(jobId('new-high-1'), 0))?.state).toBe('placed');
    expect(snapshot.status(jobId('old-low-0'))?.state).toBe('unschedulable');
  });

  it('attempts new jobs of any priority before jobs that made no progress at their last attempt', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(1000).memory('4Gi')] });
    const order: string[] = [];
    const s = await h.addScheduler(firstFitPolicy({ onPlace: (input) => order.push(input.job.spec.name) }), { settings: { retryBackoffInitialMs: 1, retryBackoffMaxMs: 1 } });
    await h.submit(jobSpec('hog').cpu(1000).priority(1));
    await h.submit(jobSpec('high-stuck').cpu(1000).priority(9));
    await h.submit(jobSpec('high-stuck').cpu(1000).priority(9));
    await h.step(s);
    await h.step(s);
    await h.step(s);
    // The first high-priority job took the machine; the second and the hog found no room and
    // are due to retry (1 ms backoff)...
    await h.advance(5);
    await h.submit(jobSpec('low-new').cpu(500).priority(0));
    await h.step(s);
    // ...yet the new low-priority job gets its first attempt before their next retries.
    expect(order).toEqual(['high-stuck', 'high-stuck', 'hog', 'low-new']);
  });

  it('gives a new job its first attempt while tasks keep ending and high-priority jobs that never fit wait, each attempt thinking 1 s', async () => {
    // Why waiting jobs are not woken ahead of new ones whenever a task ends: their attempts,
    // each thinking, would take every step for as long as tasks keep ending.
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(2000).memory('8Gi')] });
    const order: string[] = [];
    await h.addScheduler(firstFitPolicy({ onPlace: (input) => order.push(input.job.spec.name) }), { settings: { thinkTimeJobMs: 1_000, retryBackoffInitialMs: 1_000, retryBackoffMaxMs: 1_000 } });
    const fillers: JobId[] = [];
    for (let i = 0; i < 20; i++) fillers.push(await h.submit(jobSpec('filler').cpu(100)));
    const placed = async (job: JobId) => (await h.tasks(job)).filter((t) => t.state === 'placed').length;
    await h.runUntilIdle({ untilMs: h.clock.now() + 30_000 });
    // Each needs the whole machine: never fits while a filler runs.
    for (let i = 0; i < 5; i++) await h.submit(jobSpec('big').cpu(2000).priority(9));
    await h.runUntilIdle({ untilMs: h.clock.now() + 3_000 });
    order.length = 0;
    const fresh = await h.submit(jobSpec('new').cpu(100).priority(0));
    // A filler ends every 500 ms: room for the new job from the first one on.
    for (const filler of fillers) {
      if (order.includes('new')) break;
      expect(await placed(filler)).toBe(1);
      await h.endTasks(filler, 'succeeded');
      await h.runUntilIdle({ untilMs: h.clock.now() + 500 });
    }
    expect(order).toContain('new');
    expect(await placed(fresh)).toBe(1);
  });

  it('commits an all-or-nothing job whole or not at all, and says why not', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { maxAttemptsWithoutProgress: 2 } });
    const tooBig = await h.submit(jobSpec('gang').instances(9).cpu(1000).gang());
    await h.advance(1);
    const fits = await h.submit(jobSpec('gang').instances(8).cpu(1000).gang());
    expect(await h.step(s)).toMatchObject({ kind: 'attempt', attempt: { jobId: tooBig, tasks: 9, claimed: 8, committed: 0, outcome: 'no-fit' } });
    expect(await statusOf(tooBig)).toMatchObject({
      state: 'unschedulable',
      reason: 'all-or-nothing job: only 8 of 9 tasks fit, so none was placed: cpu: 2 machines',
    });
    await h.runUntilIdle();
    expect(await h.tasks(tooBig)).toEqual([]);
    // The first job never held anything, so the second still fit whole.
    expect((await h.tasks(fits)).length).toBe(8);
  });

  it('retries conflicts at once and re-places only the conflicted tasks', async () => {
    h = await SchedulerHarness.open({ machines: 4 });
    const s = await h.addScheduler(firstFitPolicy(), { interference: { every: 1, how: 'fill', limit: 1 } });
    const job = await h.submit(jobSpec('batch').instances(6).cpu(2000));
    const first = await h.step(s);
    const second = await h.step(s);
    // First fit put tasks 0-1 on m0, 2-3 on m1, 4-5 on m2; a competitor filled m0 just before the commit.
    expect(first).toMatchObject({ kind: 'attempt', attempt: { tasks: 6, committed: 4, conflicted: 2, outcome: 'conflicted' } });
    expect(second).toMatchObject({ kind: 'attempt', attempt: { tasks: 2, committed: 2, conflicted: 0, outcome: 'placed' } });
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => t.machineId)).toEqual(['m3', 'm3', 'm1', 'm1', 'm2', 'm2']);
    expect(tasks.every((t) => t.attempt === 1)).toBe(true);
    await h.runUntilIdle();
    expect(await h.violations()).toEqual([]);
  });

  it('bounds attempts that never make progress and records the abandoned job', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy(), {
      settings: { conflictMode: 'sequence-numbers', maxAttemptsWithoutProgress: 5 },
      interference: { every: 1, how: 'touch' },
    });
    const job = await h.submit(jobSpec('unlucky').instances(2));
    await h.runUntilIdle();
    const m = s.metrics();
    expect(m).toMatchObject({ attempts: 5, transactionsFailed: 5, transactionsOk: 0, claimsConflicted: 10, jobsAbandoned: 1 });
    expect(await statusOf(job)).toMatchObject({ state: 'unschedulable', attempts: 5 });
    expect((await statusOf(job))?.reason).toMatch(/^abandoned after 5 attempts \(5 without progress\): every claim conflicted/);
    expect(await h.tasks(job)).toEqual([]);
  });

  it('backs off between attempts that commit nothing, doubling up to the maximum', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(1000).memory('1Gi')] });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { retryBackoffInitialMs: 100, retryBackoffMaxMs: 400, maxAttemptsWithoutProgress: 6 } });
    await h.submit(jobSpec('big').cpu(1000));
    await h.submit(jobSpec('waits').cpu(1000));
    const times: number[] = [];
    for (let i = 0; i < 200 && s.metrics().jobsAbandoned === 0; i++) {
      const step = await h.step(s);
      if (step.kind === 'attempt' && step.attempt.jobId === 'waits-1') times.push(h.clock.now());
      if (step.kind === 'idle' && step.wakeAtMs !== undefined) await h.clock.advanceTo(step.wakeAtMs);
    }
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps.length).toBe(5);
    // Jittered in [0.5, 1) of 100, 200, 400, 400, 400.
    [100, 200, 400, 400, 400].forEach((full, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(full / 2);
      expect(gaps[i]).toBeLessThan(full);
    });
  });

  it('says why a job cannot be placed, with how many machines each resource ruled out', async () => {
    h = await SchedulerHarness.open({ machines: Array.from({ length: 50 }, (_, i) => machine(`m${i}`).cpu(1000).memory('8Gi')) });
    await h.addScheduler(firstFitPolicy(), { settings: { maxAttemptsWithoutProgress: 3 } });
    const filler = await h.submit(jobSpec('filler').instances(50).cpu(800));
    const job = await h.submit(jobSpec('late').instances(2).cpu(500));
    await h.runUntilIdle();
    expect((await statusOf(filler))?.state).toBe('running');
    const status = await statusOf(job);
    expect(status).toMatchObject({ state: 'unschedulable', ruledOut: [{ filter: 'cpu', machines: 50 }] });
    expect(status?.reason).toBe('abandoned after 3 attempts (3 without progress): 2 of 2 tasks could not be placed: cpu: 50 machines');
    expect(isAbandonedStatus(status)).toBe(true);
    expect(isAbandonedStatus({ state: 'unschedulable', reason: '2 of 2 tasks could not be placed: cpu: 50 machines' })).toBe(false);
  });

  it('counts machines the loop withholds (not alive) in the reason', async () => {
    h = await SchedulerHarness.open({ machines: 3 });
    await h.addScheduler(firstFitPolicy(), { settings: { maxAttemptsWithoutProgress: 2 } });
    for (const id of h.machineIds) await h.loseMachine(id);
    const job = await h.submit(jobSpec('nowhere'));
    await h.runUntilIdle();
    const status = await statusOf(job);
    expect(status?.ruledOut).toEqual([{ filter: 'not alive', machines: 3 }]);
    expect(status?.reason).toMatch(/1 of 1 tasks could not be placed: no machine is alive and schedulable \(not alive: 3 machines\)$/);
  });

  it('adds the think time t_job + t_task x tasks to each attempt, on the injected clock', async () => {
    h = await SchedulerHarness.open({ machines: 4 });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { thinkTimeJobMs: 100, thinkTimeTaskMs: 5 } });
    await h.submit(jobSpec('think').instances(10));
    const before = h.clock.now();
    const step = await h.step(s);
    expect(step).toMatchObject({ kind: 'attempt', attempt: { thinkMs: 150, busyMs: 150, outcome: 'placed' } });
    expect(h.clock.now() - before).toBe(150);
    expect(s.metrics()).toMatchObject({ busyUsefulMs: 150, busyWastedMs: 0, busyNoFitMs: 0 });
  });

  it('takes the job kinds it is set to, with a think time per kind', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const mono = await h.addScheduler(firstFitPolicy(), {
      name: 'mono',
      settings: { jobKinds: ['batch', 'service'], thinkTimeJobMs: 10, thinkTimeByKind: { service: { jobMs: 300, taskMs: 1 } } },
    });
    const svc = await h.submit(jobSpec('svc').service().instances(2));
    await h.advance(1);
    const bat = await h.submit(jobSpec('bat'));
    const steps = [await h.step(mono), await h.step(mono)];
    expect(steps.map((s) => (s.kind === 'attempt' ? [s.attempt.jobId, s.attempt.thinkMs] : s.kind))).toEqual([
      [svc, 302],
      [bat, 10],
    ]);
    // An instance left at its policy's kind never takes the other kind, even after the grace.
    const batchOnly = await h.addScheduler(firstFitPolicy({ kind: 'batch' }), { name: 'batch-only', settings: { ownershipGraceMs: 0 } });
    await h.crash(mono);
    const svc2 = await h.submit(jobSpec('svc').service());
    await h.runUntilIdle();
    expect((await h.snapshot()).owner(svc2)).toBeUndefined();
    expect(batchOnly.ownedJobs()).toEqual([bat]);
  });

  it('keeps the metrics consistent: committed plus conflicted claims are the attempted ones', async () => {
    h = await SchedulerHarness.open({ machines: 6 });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { thinkTimeJobMs: 10 }, interference: { every: 2, how: 'fill', limit: 4 } });
    for (let i = 0; i < 6; i++) await h.submit(jobSpec('mix').instances(3).cpu(500));
    await h.runUntilIdle();
    const m = s.metrics();
    expect(m.claimsCommitted + m.claimsConflicted).toBe(m.claimsAttempted);
    expect(m.transactionsOk + m.transactionsFailed).toBe(m.attempts - m.noFitAttempts - m.interruptedAttempts);
    expect(m.transactionsFailed).toBeGreaterThan(0);
    expect(m.claimsCommitted).toBe(18);
    expect(m.busyWastedMs).toBe(10 * m.transactionsFailed);
    expect(m.conflictFraction).toBeCloseTo(m.transactionsFailed / m.transactionsOk);
    expect(m.waitFirstAttempt.count).toBe(6);
    expect(m.waitFullyPlaced.count).toBe(6);
    expect(m.jobsPlaced).toBe(6);
  });

  it('publishes its stats under its name, bound to its lease', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy(), { name: 'batch-a' });
    await h.submit(jobSpec('one').instances(2));
    await h.runUntilIdle();
    await s.publishStats();
    const stats = [...(await h.snapshot()).schedulerStats()];
    expect(stats).toEqual([expect.objectContaining({ name: 'batch-a', kind: 'batch', conflictMode: 'resource-fit', transactionMode: 'incremental', transactionsOk: 1, claimsCommitted: 2, jobsPlaced: 1 })]);
    await h.crash(s);
    expect([...(await h.snapshot()).schedulerStats()]).toEqual([]);
  });

  describe('with several jobs per commit', () => {
    async function untilAttempt(s: Awaited<ReturnType<SchedulerHarness['addScheduler']>>) {
      for (let i = 0; i < 20; i++) {
        const step = await h.step(s);
        if (step.kind === 'attempt') return step;
      }
      throw new Error('no attempt in 20 steps');
    }

    it('places queued jobs together in one commit, each reported and counted as its own transaction', async () => {
      h = await SchedulerHarness.open({ machines: 3 });
      const s = await h.addScheduler(firstFitPolicy(), { settings: { maxJobsPerCommit: 4 } });
      const jobs: JobId[] = [];
      for (let i = 0; i < 5; i++) jobs.push(await h.submit(jobSpec('small').cpu(500)));
      const step = await untilAttempt(s);
      expect(step.attempts.map((a) => [a.jobId, a.outcome, a.committed])).toEqual(jobs.slice(0, 4).map((id) => [id, 'placed', 1]));
      expect(step.attempt).toBe(step.attempts[0]);
      expect(s.metrics()).toMatchObject({ attempts: 4, transactionsOk: 4, transactionsFailed: 0, claimsCommitted: 4, commits: 1 });
      await h.runUntilIdle();
      for (const id of jobs) expect(await statusOf(id)).toMatchObject({ state: 'running', attempts: 1 });
      expect(s.metrics()).toMatchObject({ attempts: 5, transactionsOk: 5, jobsPlaced: 5 });
      // The four jobs' claims on one machine went in one machine write, so the claims never over-commit it.
      expect(await h.violations()).toEqual([]);
    });

    it('re-places only the conflicted job when a competitor takes its machine, and the others commit', async () => {
      h = await SchedulerHarness.open({ machines: 3 });
      const s = await h.addScheduler(firstFitPolicy(), { settings: { maxJobsPerCommit: 8 }, interference: { every: 1, how: 'fill', limit: 1 } });
      const a = await h.submit(jobSpec('a').cpu(4000));
      const b = await h.submit(jobSpec('b').cpu(4000));
      // First fit on the shared cell: a on m0 (full), b on m1; the competitor fills m0 before the commit.
      const first = await untilAttempt(s);
      expect(first.attempts.map((r) => [r.jobId, r.outcome, r.committed, r.conflicted])).toEqual([
        [a, 'conflicted', 0, 1],
        [b, 'placed', 1, 0],
      ]);
      expect(s.metrics()).toMatchObject({ transactionsOk: 1, transactionsFailed: 1, claimsConflicted: 1, claimsCommitted: 1 });
      await h.runUntilIdle();
      const [ta] = await h.tasks(a);
      const [tb] = await h.tasks(b);
      expect([ta?.machineId, ta?.attempt, tb?.machineId, tb?.attempt]).toEqual(['m2', 1, 'm1', 1]);
      expect(await h.violations()).toEqual([]);
    });

    it('attempts an all-or-nothing job alone and keeps the budget of tasks per commit', async () => {
      h = await SchedulerHarness.open({ machines: 4 });
      const s = await h.addScheduler(firstFitPolicy(), { settings: { maxJobsPerCommit: 8, maxClaimsPerCommit: 5 } });
      const one = await h.submit(jobSpec('one').instances(2).cpu(100));
      await h.advance(1);
      const gang = await h.submit(jobSpec('gang').instances(2).cpu(100).gang());
      await h.advance(1);
      const two = await h.submit(jobSpec('two').instances(3).cpu(100));
      await h.advance(1);
      const three = await h.submit(jobSpec('three').instances(3).cpu(100));
      const first = await untilAttempt(s);
      // The gang waits for a step of its own; `three` would exceed 5 tasks.
      expect(first.attempts.map((r) => r.jobId)).toEqual([one, two]);
      const second = await untilAttempt(s);
      expect(second.attempts.map((r) => [r.jobId, r.outcome])).toEqual([[gang, 'placed']]);
      const third = await untilAttempt(s);
      expect(third.attempts.map((r) => r.jobId)).toEqual([three]);
      expect(await h.violations()).toEqual([]);
    });
  });
});
