import { PrivateCell, claimIdFactory, machineId, taskId, type Machine } from '@omega/cell-state';
import { jobSpec, machine } from '@omega/cell-state/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { PlacementState } from './placement-state.js';
import { seededRandom } from './random.js';
import { PlacementHarness } from './testing/placement-harness.js';

let h: PlacementHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function cell(): Promise<PlacementHarness> {
  h = await PlacementHarness.start([
    machine('m0').cpu(1000).memory('1Gi').attr('rack', 'rack-0'),
    machine('m1').cpu(4000).memory('8Gi').attr('rack', 'rack-1'),
    machine('m2').cpu(4000).memory('1Gi').attr('rack', 'rack-1'),
  ]);
  return h;
}

describe('PlacementState', () => {
  it('keeps the input array as the candidates when every machine passes the static filters', async () => {
    const c = await cell();
    const snapshot = c.snapshot();
    const machines = c.machines();
    const job = c.job('j', jobSpec('j').cpu(500).build());
    const state = new PlacementState({ job, tasks: [], cell: new PrivateCell(snapshot, 't', claimIdFactory()), snapshot, machines, random: seededRandom(1) });
    expect(state.candidates).toBe(machines);
  });

  it('gives a job without constraints the machines accepting placements and counts the others as a constrained job does', async () => {
    const c = await cell();
    const snapshot = c.snapshot();
    const [m0, m1, m2] = c.machines() as [Machine, Machine, Machine];
    const place = (name: string, list: readonly Machine[]): PlacementState =>
      new PlacementState({ job: c.job(name, jobSpec(name).cpu(500).build()), tasks: [], cell: new PrivateCell(snapshot, 't', claimIdFactory()), snapshot, machines: list, random: seededRandom(1) });
    const all = [m0, m1, m2];
    expect(place('a', all).candidates).toBe(all);
    expect(place('a', all).ruledOut()).toEqual(new Map());
    // Offered lists hold machines accepting placements only; a list given by hand may hold any.
    const cordon = { by: 'ops', reason: 'disk', atMs: 1 } as unknown as NonNullable<Machine['cordon']>;
    for (const [at, odd, reason] of [
      [0, { ...m0, schedulable: false }, 'unschedulable'],
      [2, { ...m2, cordon }, 'cordoned'],
    ] as const) {
      const list = all.map((m, i) => (i === at ? odd : m));
      const state = place(`b${at}`, list);
      expect(state.candidates.map((m) => m.id)).toEqual(all.filter((_, i) => i !== at).map((m) => m.id));
      expect(state.ruledOut()).toEqual(new Map([[reason, 1]]));
    }
  });

  it('reads free resources from the PrivateCell and again after a recorded claim', async () => {
    const c = await cell();
    const snapshot = c.snapshot();
    const pc = new PrivateCell(snapshot, 't', claimIdFactory());
    const job = c.job('j', jobSpec('j').cpu(3000).memory('1Gi').build());
    const state = new PlacementState({ job, tasks: [], cell: pc, snapshot, machines: c.machines(), random: seededRandom(1) });
    expect(state.freeCpu(1)).toBe(4000);
    expect(state.feasible(1)).toBe(true);
    expect(pc.claim(machineId('m1'), { taskId: taskId(job.id, 0), resources: job.spec.task.resources, priority: 0 }).refused).toBeUndefined();
    state.record(1);
    expect(state.freeCpu(1)).toBe(1000);
    expect(state.feasible(1)).toBe(false);
  });

  it('counts each machine once under the first filter that ruled it out, static then dynamic', async () => {
    const c = await cell();
    const snapshot = c.snapshot();
    const spec = jobSpec('j').cpu(2000).memory('2Gi').constraint({ operator: 'not-in', attribute: 'rack', values: ['rack-0'] }).build();
    const job = c.job('j', spec);
    const state = new PlacementState({ job, tasks: [], cell: new PrivateCell(snapshot, 't', claimIdFactory()), snapshot, machines: c.machines(), random: seededRandom(1) });
    expect(state.candidates.map((m) => m.id)).toEqual(['m1', 'm2']);
    state.resetCounts();
    expect(state.candidates.map((_, i) => state.feasible(i))).toEqual([true, false]);
    expect(state.ruledOut()).toEqual(
      new Map([
        ['attribute rack not-in [rack-0]', 1],
        ['memory', 1],
      ]),
    );
    state.resetCounts();
    expect(state.ruledOut()).toEqual(new Map([['attribute rack not-in [rack-0]', 1]]));
  });

  it('counts the job live instances for max-per-machine, the snapshot and this attempt together', async () => {
    const c = await cell();
    await c.occupy([{ task: 'j/0', machine: 'm1', cpu: 100, memory: '64Mi' }]);
    const snapshot = c.snapshot();
    const pc = new PrivateCell(snapshot, 't', claimIdFactory());
    const spec = jobSpec('j').instances(3).cpu(100).memory('64Mi').constraint({ operator: 'max-per-machine', limit: 2 }).build();
    const job = c.job('j', spec);
    const state = new PlacementState({ job, tasks: [], cell: pc, snapshot, machines: c.machines(), random: seededRandom(1) });
    expect(state.instances(1)).toBe(1);
    expect(state.feasible(1)).toBe(true);
    pc.claim(machineId('m1'), { taskId: taskId(job.id, 1), resources: spec.task.resources, priority: 0 });
    state.record(1);
    expect(state.instances(1)).toBe(2);
    state.resetCounts();
    expect(state.feasible(1)).toBe(false);
    expect(state.ruledOut()).toEqual(new Map([['max-per-machine 2', 1]]));
    expect(state.feasibleExceptResources(1)).toBe(false);
    expect(state.feasibleExceptResources(0)).toBe(true);
  });
});
