import { DRAINED_REASON, machineId, type JobId, type Task } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

const m0 = machineId('m0');

/** Stands in for the agents: every placed task runs. */
async function runPlaced(job: JobId): Promise<void> {
  for (const task of await h.tasks(job)) if (task.state === 'placed') await h.setTaskState(task.id, 'running');
}

const running = (tasks: readonly Task[]): number => tasks.filter((t) => t.state === 'running').length;

describe('drain', () => {
  it('moves a service off a draining machine one instance at a time, never with more than maxUnavailable down', async () => {
    h = await SchedulerHarness.open({ machines: 3 });
    await h.addScheduler(firstFitPolicy({ kind: 'service' }), { name: 'service-1' });
    const job = await h.submit(jobSpec('web').service().instances(4).cpu(500));
    await h.runUntilIdle();
    await runPlaced(job);
    await h.runUntilIdle();
    expect((await h.tasks(job)).every((t) => t.machineId === m0 && t.state === 'running')).toBe(true);

    const deadline = h.clock.now() + 3_600_000;
    await h.cell.cordonMachine(m0, { reason: 'retire', drainDeadlineMs: deadline });
    const lowest: number[] = [];
    for (let step = 0; step < 12; step++) {
      await h.runUntilIdle({ untilMs: h.clock.now() + 1_000 });
      const tasks = await h.tasks(job);
      lowest.push(running(tasks));
      if (tasks.every((t) => t.machineId !== m0 && t.state === 'running')) break;
      await runPlaced(job);
    }
    const tasks = await h.tasks(job);
    expect(tasks.map((t) => [t.machineId, t.state])).toEqual(Array.from({ length: 4 }, () => [machineId('m1'), 'running']));
    // maxUnavailable defaults to 1: at every look, at least 3 of the 4 instances ran.
    expect(Math.min(...lowest)).toBe(3);
    expect(tasks.every((t) => t.attempt === 2 && t.restarts === 0)).toBe(true);
    const status = (await h.snapshot()).status(job);
    expect(status?.state).toBe('running');
  });

  it('lets a batch task finish until the deadline, then stops it as machine-drained and places it again elsewhere', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('crunch').instances(2));
    await h.runUntilIdle();
    await runPlaced(job);
    const deadline = h.clock.now() + 60_000;
    await h.cell.cordonMachine(m0, { reason: '', drainDeadlineMs: deadline });
    // runUntilIdle moves the clock to the next wake-up: bound it to just before the deadline.
    await h.runUntilIdle({ untilMs: deadline - 1 });
    expect((await h.tasks(job)).map((t) => [t.state, t.attempt])).toEqual([['running', 1], ['running', 1]]);

    await h.runUntilIdle({ untilMs: deadline });
    expect((await h.tasks(job)).map((t) => [t.state, t.reason])).toEqual([['killed', DRAINED_REASON], ['killed', DRAINED_REASON]]);
    await h.runUntilIdle({ untilMs: deadline + 5_000 });
    const replaced = await h.tasks(job);
    expect(replaced.map((t) => [t.machineId, t.state, t.attempt])).toEqual([
      [machineId('m1'), 'placed', 2],
      [machineId('m1'), 'placed', 2],
    ]);
    expect((await h.snapshot()).status(job)?.state).not.toBe('failed');
    expect(await h.violations()).toEqual([]);
  });

  it('does not move a batch job whose restart policy says never: it fails with the drain named', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const job = await h.submit(jobSpec('strict').restart({ kind: 'never', maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 }));
    await h.runUntilIdle();
    await runPlaced(job);
    await h.cell.cordonMachine(m0, { reason: '', drainDeadlineMs: h.clock.now() + 1_000 });
    await h.runUntilIdle();
    expect((await h.snapshot()).status(job)).toMatchObject({ state: 'failed', reason: `task 0 killed (${DRAINED_REASON}), restart policy never` });
  });

  it('a cordon without a drain stops nothing and places nothing new on the machine', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    await h.cell.cordonMachine(m0, { reason: 'flaky disk' });
    const job = await h.submit(jobSpec('elsewhere').instances(3));
    await h.runUntilIdle();
    expect((await h.tasks(job)).map((t) => t.machineId)).toEqual([machineId('m1'), machineId('m1'), machineId('m1')]);
    await h.cell.cordonMachine(machineId('m1'), { reason: '' });
    const stuck = await h.submit(jobSpec('nowhere'));
    await h.runUntilIdle();
    expect((await h.snapshot()).status(stuck)).toMatchObject({ state: 'unschedulable', ruledOut: [{ filter: 'cordoned', machines: 2 }] });
    expect((await h.tasks(job)).every((t) => t.state === 'placed')).toBe(true);
  });
});
