import { jobId, machineId, type Job, type JobSpec } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { planJob, type JobPlan } from './plan.js';
import { seededRandom } from './random.js';
import { DEFAULT_SETTINGS } from './settings.js';
import { SchedulerHarness, firstFitPolicy, jobSpec, machine } from './testing/index.js';
import type { PlacementPolicy } from './policy.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

async function plan(policy: PlacementPolicy, spec: JobSpec, current?: Job): Promise<JobPlan> {
  const snapshot = await h.snapshot();
  const job: Job = current === undefined ? { id: jobId('planned'), spec, desired: 'running', submittedAtMs: h.clock.now(), requestId: '', revision: 0, version: 1 } : { ...current, spec };
  return planJob({ job, current, snapshot, policy, random: seededRandom(1), nowMs: h.clock.now(), defaults: DEFAULT_SETTINGS });
}

describe('planJob', () => {
  it('says what a submit would place, and the submit then places exactly that', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const policy = firstFitPolicy();
    await h.addScheduler(policy);
    const spec = jobSpec('fill').instances(5).cpu(1500).build();
    const planned = await plan(policy, spec);
    expect(planned.create.map((t) => [t.index, t.machineId])).toEqual([
      [0, 'm0'],
      [1, 'm0'],
      [2, 'm1'],
      [3, 'm1'],
      [4, undefined],
    ]);
    expect(planned.unplaced).toEqual([4]);
    expect(planned.ruledOut).toEqual([{ filter: 'cpu', machines: 2 }]);
    expect(planned.reason).toBe('1 of 5 tasks could not be placed: cpu: 2 machines');
    // The loop's status then speaks of its last attempt (the one task left), with the same filters.
    expect(planned.stop).toEqual([]);
    // Nothing was written by the plan.
    expect([...(await h.snapshot()).jobs()]).toEqual([]);

    const id = await h.submit(spec);
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    const tasks = await h.tasks(id);
    expect(tasks.map((t) => [t.index, t.machineId])).toEqual(planned.create.filter((t) => t.machineId !== undefined).map((t) => [t.index, t.machineId]));
    const status = (await h.snapshot()).status(id);
    expect(status?.ruledOut).toEqual(planned.ruledOut);
    expect(status?.reason).toBe('1 of 1 tasks could not be placed: cpu: 2 machines');
  });

  it('names the filters of a job nothing fits, as its status then does', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(1000).memory('1Gi'), machine('m1').cpu(1000).memory('1Gi')] });
    const policy = firstFitPolicy();
    await h.addScheduler(policy);
    await h.cell.cordonMachine(machineId('m1'), { reason: '' });
    await h.submit(jobSpec('filler').memory('512Mi'));
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    const spec = jobSpec('huge').memory('768Mi').build();
    const planned = await plan(policy, spec);
    expect(planned.create).toEqual([{ index: 0 }]);
    expect(planned.ruledOut).toEqual([{ filter: 'cordoned', machines: 1 }, { filter: 'memory', machines: 1 }]);
    const id = await h.submit(spec);
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    expect((await h.snapshot()).status(id)).toMatchObject({ ruledOut: planned.ruledOut, reason: planned.reason });
    // No machine could hold it even empty: the loop gives the job up at once, and the plan says so.
    const tooLarge = await plan(policy, jobSpec('larger').memory('4Gi').build());
    expect(tooLarge).toMatchObject({ ruledOut: [{ filter: 'memory', machines: 2 }], reason: 'a task needs more than any machine has: memory too small on 2 machines' });
    const given = await h.submit(jobSpec('larger').memory('4Gi'));
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    expect((await h.snapshot()).status(given)).toMatchObject({ state: 'unschedulable', ruledOut: tooLarge.ruledOut, reason: tooLarge.reason });
  });

  it('plans a scale down as stops of the highest indexes and a scale up as new ones, changing nothing', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const policy = firstFitPolicy({ kind: 'service' });
    await h.addScheduler(policy);
    const id = await h.submit(jobSpec('web').service().instances(3).cpu(500));
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    const current = (await h.snapshot()).job(id);
    if (current === undefined) throw new Error('no job');
    const down = await plan(policy, { ...current.spec, instances: 1 }, current);
    expect(down.stop.map((s) => [s.index, s.reason])).toEqual([
      [1, 'scaled-down'],
      [2, 'scaled-down'],
    ]);
    expect([down.create, down.replace, down.unplaced]).toEqual([[], [], []]);
    const up = await plan(policy, { ...current.spec, instances: 5 }, current);
    expect(up.create.map((t) => t.index)).toEqual([3, 4]);
    expect(up.stop).toEqual([]);
    expect((await h.tasks(id)).map((t) => t.state)).toEqual(['placed', 'placed', 'placed']);
  });

  it("plans a service's new command as a replacement of every live instance, in steps of maxUnavailable", async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(2000).memory('4Gi')] });
    const policy = firstFitPolicy({ kind: 'service' });
    await h.addScheduler(policy);
    // The machine is full: the replacements fit only because the instances they replace stop first.
    const id = await h.submit(jobSpec('full').service().instances(4).cpu(500));
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    const current = (await h.snapshot()).job(id);
    if (current === undefined) throw new Error('no job');
    const next: JobSpec = { ...current.spec, task: { ...current.spec.task, command: ['sleep', '60'] }, update: { maxUnavailable: 2, maxSurge: 0, minHealthyTimeMs: 0, healthyDeadlineMs: 0, autoRollback: false } };
    const planned = await plan(policy, next, current);
    expect(planned.replace.map((t) => [t.index, t.machineId])).toEqual([0, 1, 2, 3].map((i) => [i, 'm0']));
    expect(planned.stop.map((s) => s.reason)).toEqual(['updated', 'updated', 'updated', 'updated']);
    expect(planned.replaceStep).toBe(2);
    expect(planned.unplaced).toEqual([]);
    // Only the instance count changes: nothing is replaced.
    const same = await plan(policy, { ...current.spec, priority: current.spec.priority + 1 }, current);
    expect([same.replace, same.stop, same.create]).toEqual([[], [], []]);
  });
});
