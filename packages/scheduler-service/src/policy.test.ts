import { jobSpec, machine, type JobSpecBuilder } from '@omega/cell-state/testing';
import { jobId, taskId, type ClaimDelta, type Constraint, type ConstraintOperator, type Job, type MachineId } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { servicePolicy } from './policy.js';
import type { ServicePolicyOptions } from './options.js';
import { ServiceHarness } from './testing/index.js';

const harnesses: ServiceHarness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

async function harness(...machines: Parameters<typeof ServiceHarness.start>[0]): Promise<ServiceHarness> {
  const h = await ServiceHarness.start(machines);
  harnesses.push(h);
  return h;
}

/** A service job: default 500m / 256Mi per task, priority 5. */
function service(name: string, build: (b: JobSpecBuilder) => JobSpecBuilder = (b) => b): { job: (h: ServiceHarness) => Job } {
  return { job: (h) => h.job(name, build(jobSpec(name).service().priority(5).cpu(500).memory('256Mi')).build()) };
}

function perMachine(deltas: readonly ClaimDelta[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of deltas) out.set(d.claim.machineId, (out.get(d.claim.machineId) ?? 0) + 1);
  return out;
}

const on = (deltas: readonly ClaimDelta[]): string[] => deltas.map((d) => d.claim.machineId).sort();

function place(h: ServiceHarness, job: Job, options: ServicePolicyOptions = {}, seed = 1) {
  return h.place(servicePolicy(options), job, { seed });
}

describe('servicePolicy', () => {
  it('is a service policy committing incrementally by default', () => {
    const p = servicePolicy();
    expect(p.kind).toBe('service');
    expect(p.defaultTransactionMode).toBe('incremental');
    expect(servicePolicy({ defaultTransactionMode: 'all-or-nothing' }).defaultTransactionMode).toBe('all-or-nothing');
  });

  it('places every instance when there is room and reports nothing ruled out', async () => {
    const h = await harness(machine('m1'), machine('m2'), machine('m3'));
    const { outcome, cell } = place(h, service('web', (b) => b.instances(5)).job(h));
    expect(outcome.placed).toBe(5);
    expect(outcome.ruledOut.size).toBe(0);
    expect(new Set(cell.deltas.map((d) => d.claim.taskId)).size).toBe(5);
    expect(cell.deltas.every((d) => d.claim.priority === 5 && d.evicts.length === 0)).toBe(true);
  });
});

describe('constraints', () => {
  const zones = () => [
    machine('a1').attr('zone', 'a').attr('rack', 'r1'),
    machine('a2').attr('zone', 'a').attr('rack', 'r2'),
    machine('b1').attr('zone', 'b').attr('rack', 'r1'),
    machine('c1').attr('zone', 'c').attr('rack', 'r3'),
    machine('bare'),
  ];

  it('places only on machines whose attribute equals the value', async () => {
    const h = await harness(...zones());
    const { outcome, cell } = place(h, service('web', (b) => b.instances(6).constraint({ operator: 'equals', attribute: 'zone', values: ['a'] })).job(h));
    expect(outcome.placed).toBe(6);
    expect(new Set(on(cell.deltas))).toEqual(new Set(['a1', 'a2']));
  });

  it('places only on machines whose attribute is in the list, never on machines without it', async () => {
    const h = await harness(...zones());
    const { outcome, cell } = place(h, service('web', (b) => b.instances(9).constraint({ operator: 'in', attribute: 'zone', values: ['a', 'b'] })).job(h));
    expect(outcome.placed).toBe(9);
    expect(new Set(on(cell.deltas))).toEqual(new Set(['a1', 'a2', 'b1']));
  });

  it('places on machines whose attribute is not in the list, including machines without it', async () => {
    const h = await harness(...zones());
    const { outcome, cell } = place(h, service('web', (b) => b.instances(12).constraint({ operator: 'not-in', attribute: 'rack', values: ['r1'] })).job(h));
    expect(outcome.placed).toBe(12);
    expect(new Set(on(cell.deltas))).toEqual(new Set(['a2', 'c1', 'bare']));
  });

  it('puts at most max-per-machine instances on each machine', async () => {
    const h = await harness(machine('m1'), machine('m2'), machine('m3'));
    const { outcome, cell } = place(h, service('web', (b) => b.instances(7).constraint({ operator: 'max-per-machine', limit: 2 })).job(h));
    expect(outcome.placed).toBe(6);
    expect(perMachine(cell.deltas)).toEqual(new Map([['m1', 2], ['m2', 2], ['m3', 2]]));
    expect(outcome.ruledOut).toEqual(new Map([['max-per-machine 2', 3]]));
  });

  it('counts the live instances already committed against max-per-machine, but not ended ones', async () => {
    const h = await harness(machine('m1'), machine('m2'));
    await h.occupy([
      { task: 'web/0', machine: 'm1', cpu: 500, priority: 5 },
      { task: 'web/1', machine: 'm1', cpu: 500, priority: 5 },
      { task: 'web/2', machine: 'm2', cpu: 500, priority: 5 },
    ]);
    // web/2 ends: its claim no longer counts, and web/2 gets placed again.
    await h.endTask('web/2');
    const { outcome, cell } = place(h, service('web', (b) => b.instances(4).constraint({ operator: 'max-per-machine', limit: 2 })).job(h));
    expect(outcome.placed).toBe(2);
    expect(on(cell.deltas)).toEqual(['m2', 'm2']);
  });

  it('rules out every machine, without throwing, for an operator this version does not know', async () => {
    const h = await harness(machine('m1'), machine('m2'));
    const unknown = { operator: undefined as unknown as ConstraintOperator, attribute: 'zone', values: ['a'], limit: 0 } satisfies Constraint;
    const job = service('web', (b) => b.instances(2)).job(h);
    const weird: Job = { ...job, spec: { ...job.spec, constraints: [unknown] } };
    const { outcome, cell } = place(h, weird);
    expect(outcome.placed).toBe(0);
    expect(cell.deltas).toHaveLength(0);
    expect(outcome.ruledOut).toEqual(new Map([['unknown constraint operator', 2]]));
  });

  it('names the filter that ruled out each machine, each machine counted once', async () => {
    const h = await harness(
      machine('wrong-zone').attr('zone', 'b'),
      machine('no-zone'),
      machine('cpu-full').attr('zone', 'a').cpu(1000),
      machine('memory-full').attr('zone', 'a').memory('2Gi'),
      machine('both-full').attr('zone', 'a').cpu(1000).memory('1Gi'),
      machine('rack-r9').attr('zone', 'a').attr('rack', 'r9'),
    );
    await h.occupy([
      { task: 'other/0', machine: 'cpu-full', cpu: 1000, memory: '1Gi', priority: 9 },
      { task: 'other/1', machine: 'memory-full', cpu: 100, memory: '2Gi', priority: 9 },
      { task: 'other/2', machine: 'both-full', cpu: 1000, memory: '1Gi', priority: 9 },
    ]);
    const job = service('web', (b) =>
      b
        .instances(3)
        .cpu(600)
        .constraint({ operator: 'in', attribute: 'zone', values: ['a'] })
        .constraint({ operator: 'not-in', attribute: 'rack', values: ['r9'] }),
    ).job(h);
    const { outcome } = place(h, job);
    expect(outcome.placed).toBe(0);
    expect(outcome.ruledOut).toEqual(
      new Map([
        ['attribute zone in [a]', 2],
        ['attribute rack not-in [r9]', 1],
        ['cpu', 2],
        ['memory', 1],
      ]),
    );
    expect([...outcome.ruledOut.values()].reduce((a, b) => a + b, 0)).toBe(6);
  });

  it('reports what ruled out machines for the first task that could not be placed after others were', async () => {
    const h = await harness(machine('m1').cpu(1000), machine('m2').cpu(1000));
    const { outcome } = place(h, service('web', (b) => b.instances(6)).job(h));
    expect(outcome.placed).toBe(4);
    expect(outcome.ruledOut).toEqual(new Map([['cpu', 2]]));
  });

  it('skips tasks that are already live and places the rest', async () => {
    const h = await harness(machine('m1'));
    await h.occupy([{ task: 'web/0', machine: 'm1', cpu: 500, priority: 5 }]);
    const { outcome, cell } = h.place(servicePolicy(), service('web', (b) => b.instances(2)).job(h), { indexes: [0, 1] });
    expect(outcome.placed).toBe(1);
    expect(cell.deltas.map((d) => d.claim.taskId)).toEqual(['web/1']);
  });
});

describe('spread', () => {
  const racks = (perRack: number, racks = 3) =>
    Array.from({ length: racks * perRack }, (_, i) => machine(`m${i}`).cpu(16000).memory('64Gi').attr('rack', `r${i % racks}`));

  it('spreads 6 instances over 3 racks as 2 per rack', async () => {
    const h = await harness(...racks(4));
    for (const seed of [1, 2, 3, 4, 5]) {
      const job = service('web', (b) => b.instances(6).constraint({ operator: 'spread', attribute: 'rack' })).job(h);
      const { outcome, cell } = place(h, job, { scoring: 'bin-pack' }, seed);
      expect(outcome.placed).toBe(6);
      const perRack = new Map<string, number>();
      for (const d of cell.deltas) {
        const rack = h.snapshot().machine(d.claim.machineId)?.attributes['rack'] ?? '';
        perRack.set(rack, (perRack.get(rack) ?? 0) + 1);
      }
      expect(perRack).toEqual(new Map([['r0', 2], ['r1', 2], ['r2', 2]]));
    }
  });

  it('fills the racks with fewer live instances first', async () => {
    const h = await harness(...racks(1));
    await h.occupy([
      { task: 'web/0', machine: 'm0', cpu: 500, priority: 5 },
      { task: 'web/1', machine: 'm0', cpu: 500, priority: 5 },
      { task: 'web/2', machine: 'm1', cpu: 500, priority: 5 },
    ]);
    const job = service('web', (b) => b.instances(6).constraint({ operator: 'spread', attribute: 'rack' })).job(h);
    const { cell } = place(h, job);
    // r0 has 2, r1 has 1, r2 has 0: the three new ones make it 2/2/2.
    expect(on(cell.deltas)).toEqual(['m1', 'm2', 'm2']);
  });

  it('spreads only over the listed values when values are given', async () => {
    const h = await harness(...racks(2));
    const job = service('web', (b) => b.instances(4).constraint({ operator: 'spread', attribute: 'rack', values: ['r0', 'r2'] })).job(h);
    const { outcome, cell } = place(h, job);
    expect(outcome.placed).toBe(4);
    const racksUsed = cell.deltas.map((d) => h.snapshot().machine(d.claim.machineId)?.attributes['rack']);
    expect(racksUsed.filter((r) => r === 'r0')).toHaveLength(2);
    expect(racksUsed.filter((r) => r === 'r2')).toHaveLength(2);
  });

  it('treats machines without the attribute as one group of their own', async () => {
    const h = await harness(machine('r0a').attr('rack', 'r0'), machine('r0b').attr('rack', 'r0'), machine('bare1'), machine('bare2'));
    const job = service('web', (b) => b.instances(4).constraint({ operator: 'spread', attribute: 'rack' })).job(h);
    const { cell } = place(h, job);
    const bare = cell.deltas.filter((d) => d.claim.machineId.startsWith('bare'));
    expect(bare).toHaveLength(2);
  });

  it('goes to a fuller group when the emptiest group has no room', async () => {
    const h = await harness(machine('m0').attr('rack', 'r0').cpu(1000), machine('m1').attr('rack', 'r1'));
    await h.occupy([{ task: 'other/0', machine: 'm0', cpu: 1000, priority: 9 }]);
    const job = service('web', (b) => b.instances(2).constraint({ operator: 'spread', attribute: 'rack' })).job(h);
    const { outcome, cell } = place(h, job);
    expect(outcome.placed).toBe(2);
    expect(on(cell.deltas)).toEqual(['m1', 'm1']);
  });

  it('balances on the first spread constraint, then the second', async () => {
    const machines = [];
    for (const zone of ['a', 'b']) for (const rack of ['r1', 'r2']) for (const i of [0, 1]) machines.push(machine(`${zone}-${rack}-${i}`).attr('zone', zone).attr('rack', `${zone}${rack}`));
    const h = await harness(...machines);
    const job = service('web', (b) =>
      b.instances(8).constraint({ operator: 'spread', attribute: 'zone' }).constraint({ operator: 'spread', attribute: 'rack' }),
    ).job(h);
    const { cell } = place(h, job, { scoring: 'bin-pack' });
    const perRack = new Map<string, number>();
    for (const d of cell.deltas) {
      const rack = h.snapshot().machine(d.claim.machineId)?.attributes['rack'] ?? '';
      perRack.set(rack, (perRack.get(rack) ?? 0) + 1);
    }
    expect([...perRack.values()]).toEqual([2, 2, 2, 2]);
  });
});

describe('scoring', () => {
  async function halfFull() {
    const h = await harness(machine('busy').cpu(4000).memory('8Gi'), machine('idle').cpu(4000).memory('8Gi'));
    await h.occupy([{ task: 'other/0', machine: 'busy', cpu: 2000, memory: '4Gi' }]);
    return h;
  }

  it('prefers the machine with the most free resources in spread mode', async () => {
    const h = await halfFull();
    for (const seed of [1, 2, 3]) expect(on(place(h, service('web').job(h), { scoring: 'spread' }, seed).cell.deltas)).toEqual(['idle']);
  });

  it('prefers the fullest machine that fits in bin-pack mode', async () => {
    const h = await halfFull();
    for (const seed of [1, 2, 3]) expect(on(place(h, service('web').job(h), { scoring: 'bin-pack' }, seed).cell.deltas)).toEqual(['busy']);
  });

  it('packs tasks onto one machine in bin-pack mode and spreads them in spread mode', async () => {
    const h = await harness(machine('m1'), machine('m2'), machine('m3'), machine('m4'));
    const job = service('web', (b) => b.instances(4)).job(h);
    expect(perMachine(place(h, job, { scoring: 'bin-pack' }).cell.deltas).size).toBe(1);
    expect(perMachine(place(h, job, { scoring: 'spread' }).cell.deltas).size).toBe(4);
  });

  it('avoids machines already running the same job in spread mode (anti-affinity)', async () => {
    const h = await harness(machine('mine'), machine('theirs'));
    // Equal load on both machines; only the job differs.
    await h.occupy([
      { task: 'web/0', machine: 'mine', cpu: 500, memory: '256Mi', priority: 5 },
      { task: 'other/0', machine: 'theirs', cpu: 500, memory: '256Mi', priority: 5 },
    ]);
    const job = service('web', (b) => b.instances(2)).job(h);
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const { cell } = h.place(servicePolicy(), job, { seed, indexes: [1] });
      expect(on(cell.deltas)).toEqual(['theirs']);
    }
    const chosen = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((seed) => on(h.place(servicePolicy({ antiAffinityPenalty: 0 }), job, { seed, indexes: [1] }).cell.deltas)[0]));
    expect(chosen).toEqual(new Set(['mine', 'theirs']));
  });

  it('breaks exact ties with the Random: same seed same choice, other seeds other machines', async () => {
    const h = await harness(...Array.from({ length: 8 }, (_, i) => machine(`m${i}`)));
    const job = service('web').job(h);
    const first = (seed: number) => on(place(h, job, {}, seed).cell.deltas)[0];
    expect(first(7)).toBe(first(7));
    expect(new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(first)).size).toBeGreaterThan(2);
  });
});

describe('preemption', () => {
  it('evicts a strictly lower-priority claim when the task fits nowhere', async () => {
    const h = await harness(machine('m1').cpu(2000));
    await h.occupy([{ task: 'low/0', machine: 'm1', cpu: 2000, priority: 1 }]);
    const { outcome, cell } = place(h, service('web').job(h));
    expect(outcome.placed).toBe(1);
    expect(outcome.ruledOut.size).toBe(0);
    expect(cell.deltas[0]?.evicts.map((e) => e.claim.taskId)).toEqual(['low/0']);
  });

  it('does not preempt when some machine has room', async () => {
    const h = await harness(machine('full').cpu(2000), machine('free').cpu(2000));
    await h.occupy([{ task: 'low/0', machine: 'full', cpu: 2000, priority: 0 }]);
    const { cell } = place(h, service('web', (b) => b.instances(4)).job(h));
    expect(on(cell.deltas)).toEqual(['free', 'free', 'free', 'free']);
    expect(cell.deltas.every((d) => d.evicts.length === 0)).toBe(true);
  });

  it('never evicts claims of equal or higher priority', async () => {
    const h = await harness(machine('m1').cpu(2000));
    await h.occupy([
      { task: 'same/0', machine: 'm1', cpu: 1000, priority: 5 },
      { task: 'high/0', machine: 'm1', cpu: 1000, priority: 9 },
    ]);
    const { outcome, cell } = place(h, service('web').job(h));
    expect(outcome.placed).toBe(0);
    expect(cell.deltas).toHaveLength(0);
    expect(outcome.ruledOut).toEqual(new Map([['cpu', 1]]));
  });

  it('evicts the fewest claims: the largest of the lowest priority', async () => {
    const h = await harness(machine('m1').cpu(4000));
    await h.occupy([
      { task: 'small/0', machine: 'm1', cpu: 500, memory: '256Mi', priority: 1 },
      { task: 'small/1', machine: 'm1', cpu: 500, memory: '256Mi', priority: 1 },
      { task: 'big/0', machine: 'm1', cpu: 2000, memory: '256Mi', priority: 1 },
      { task: 'small/2', machine: 'm1', cpu: 1000, memory: '256Mi', priority: 1 },
    ]);
    const { cell } = place(h, service('web', (b) => b.cpu(1500)).job(h));
    expect(cell.deltas[0]?.evicts.map((e) => e.claim.taskId)).toEqual(['big/0']);
  });

  it('evicts the lowest priority first and gives back victims the others make unnecessary', async () => {
    const h = await harness(machine('m1').cpu(4000));
    await h.occupy([
      { task: 'p1/0', machine: 'm1', cpu: 500, priority: 1 },
      { task: 'p2/0', machine: 'm1', cpu: 1500, priority: 2 },
      { task: 'p3/0', machine: 'm1', cpu: 2000, priority: 3 },
    ]);
    // Needs 1500: p1 (500) alone is not enough, p1 + p2 is, and then p1 is unnecessary.
    const { cell } = place(h, service('web', (b) => b.cpu(1500)).job(h));
    expect(cell.deltas[0]?.evicts.map((e) => e.claim.taskId)).toEqual(['p2/0']);
  });

  it('prefers the machine where the preempted work has the lowest priority', async () => {
    const h = await harness(machine('m1').cpu(1000), machine('m2').cpu(1000), machine('m3').cpu(1000));
    await h.occupy([
      { task: 'p3/0', machine: 'm1', cpu: 1000, priority: 3 },
      { task: 'p1/0', machine: 'm2', cpu: 1000, priority: 1 },
      { task: 'p2/0', machine: 'm3', cpu: 1000, priority: 2 },
    ]);
    for (const seed of [1, 2, 3]) {
      const { cell } = place(h, service('web').job(h), {}, seed);
      expect(cell.deltas[0]?.evicts.map((e) => e.claim.taskId)).toEqual(['p1/0']);
    }
  });

  it('prefers the machine needing fewer victims at the same priority', async () => {
    const h = await harness(machine('m1').cpu(1000), machine('m2').cpu(1000));
    await h.occupy([
      { task: 'a/0', machine: 'm1', cpu: 500, priority: 1 },
      { task: 'a/1', machine: 'm1', cpu: 500, priority: 1 },
      { task: 'b/0', machine: 'm2', cpu: 1000, priority: 1 },
    ]);
    const { cell } = place(h, service('web', (b) => b.cpu(1000)).job(h));
    expect(cell.deltas[0]?.evicts.map((e) => e.claim.taskId)).toEqual(['b/0']);
  });

  it("never evicts the job's own tasks, even at a lower priority", async () => {
    const h = await harness(machine('m1').cpu(1000));
    await h.occupy([{ task: 'web/0', machine: 'm1', cpu: 1000, priority: 1 }]);
    const { outcome, cell } = h.place(servicePolicy(), service('web', (b) => b.instances(2)).job(h), { indexes: [1] });
    expect(outcome.placed).toBe(0);
    expect(cell.deltas).toHaveLength(0);
  });

  it('never evicts the same claim twice in one attempt', async () => {
    const h = await harness(machine('m1').cpu(4000));
    await h.occupy([
      { task: 'low/0', machine: 'm1', cpu: 2000, priority: 1 },
      { task: 'mid/0', machine: 'm1', cpu: 2000, priority: 2 },
    ]);
    const { outcome, cell } = place(h, service('web', (b) => b.instances(3).cpu(2000)).job(h));
    expect(outcome.placed).toBe(2);
    const victims = cell.deltas.flatMap((d) => d.evicts.map((e) => e.claim.taskId));
    expect(victims).toEqual(['low/0', 'mid/0']);
    expect(outcome.ruledOut).toEqual(new Map([['cpu', 1]]));
  });

  it('respects the constraints when choosing where to preempt', async () => {
    const h = await harness(machine('a').attr('zone', 'a').cpu(1000), machine('b').attr('zone', 'b').cpu(1000));
    await h.occupy([
      { task: 'x/0', machine: 'a', cpu: 1000, priority: 3 },
      { task: 'y/0', machine: 'b', cpu: 1000, priority: 0 },
    ]);
    const { cell } = place(h, service('web', (b) => b.constraint({ operator: 'equals', attribute: 'zone', values: ['a'] })).job(h));
    expect(cell.deltas[0]?.evicts.map((e) => e.claim.taskId)).toEqual(['x/0']);
  });

  it('does nothing when preemption is disabled', async () => {
    const h = await harness(machine('m1').cpu(1000));
    await h.occupy([{ task: 'low/0', machine: 'm1', cpu: 1000, priority: 0 }]);
    const { outcome, cell } = place(h, service('web').job(h), { preemption: false });
    expect(outcome.placed).toBe(0);
    expect(cell.deltas).toHaveLength(0);
    expect(outcome.ruledOut).toEqual(new Map([['cpu', 1]]));
  });

  it('commits the preempting claim and kills the victim in the same transaction', async () => {
    const h = await harness(machine('m1').cpu(1000), machine('m2').cpu(1000));
    await h.occupy([
      { task: 'low/0', machine: 'm1', cpu: 1000, priority: 1 },
      { task: 'high/0', machine: 'm2', cpu: 1000, priority: 9 },
    ]);
    const { cell } = place(h, service('web', (b) => b.cpu(1000)).job(h));
    const result = await h.commit(cell);
    expect(result.committed).toHaveLength(1);
    expect(result.conflicted).toHaveLength(0);
    const snap = h.snapshot();
    expect(snap.task(taskId(jobId('low'), 0))).toMatchObject({ state: 'killed', reason: 'preempted' });
    expect(snap.task(taskId(jobId('web'), 0))).toMatchObject({ state: 'placed', machineId: 'm1' as MachineId });
    expect(snap.machine('m1' as MachineId)?.claims.map((c) => c.taskId)).toEqual(['web/0']);
    expect(snap.task(taskId(jobId('high'), 0))?.state).toBe('placed');
  });
});
