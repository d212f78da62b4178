import { jobId, type Job, type JobSpec } from '@omega/cell-state';
import { jobSpec, machine } from '@omega/cell-state/testing';
import { DEFAULT_SETTINGS, planJob, seededRandom } from '@omega/scheduler-core';
import { SchedulerHarness } from '@omega/scheduler-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { servicePolicy } from './policy.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

async function planSubmit(spec: JobSpec) {
  const job: Job = { id: jobId('planned'), spec, desired: 'running', submittedAtMs: h.clock.now(), requestId: '', revision: 0, version: 1 };
  return planJob({ job, current: undefined, snapshot: await h.snapshot(), policy: servicePolicy(), random: seededRandom(7), nowMs: h.clock.now(), defaults: DEFAULT_SETTINGS });
}

describe('a plan and the commit that follows it', () => {
  it('agree on where a service goes, what would not fit and which lower-priority tasks it preempts', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(2000).memory('8Gi').attr('zone', 'a'), machine('m1').cpu(2000).memory('8Gi').attr('zone', 'b'), machine('m2').cpu(2000).memory('8Gi').attr('zone', 'c')] });
    await h.addScheduler(servicePolicy(), { name: 'service-1' });
    const low = await h.submit(jobSpec('low').service().priority(1).instances(4).cpu(1000));
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    expect((await h.tasks(low)).filter((t) => t.state === 'placed')).toHaveLength(4);

    // Five instances, two zones allowed: m2 is ruled out, m0 and m1 hold the low job.
    const high = jobSpec('high').service().priority(10).instances(5).cpu(1000).constraint({ attribute: 'zone', operator: 'in', values: ['a', 'b'], limit: 0 }).build();
    const planned = await planSubmit(high);
    expect(planned.preempt.length).toBeGreaterThan(0);
    expect(planned.unplaced).toHaveLength(1);

    const id = await h.submit(high);
    await h.runUntilIdle({ untilMs: h.clock.now() + 100 });
    const placed = (await h.tasks(id)).filter((t) => t.state === 'placed');
    const preempted = (await h.tasks(low)).filter((t) => t.state === 'killed' && t.reason === 'preempted');
    expect(placed.length).toBe(planned.create.filter((t) => t.machineId !== undefined).length);
    expect(placed.map((t) => t.machineId).sort()).toEqual(planned.create.flatMap((t) => (t.machineId === undefined ? [] : [t.machineId])).sort());
    expect(preempted.map((t) => t.machineId).sort()).toEqual(planned.preempt.map((p) => p.machineId).sort());
    expect(preempted.length).toBe(planned.preempt.length);
    const status = (await h.snapshot()).status(id);
    expect(status?.ruledOut).toEqual(planned.ruledOut);
  });
});
