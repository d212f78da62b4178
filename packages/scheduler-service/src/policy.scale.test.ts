/**
 * Paper scale: 10,000 machines, each with three claims of other jobs, and jobs of 300 tasks:
 * placement stays correct at the simulator's scale. How long it takes is measured by
 * `bench/dist/service-placement.js`, not asserted here.
 */
import { jobSpec, machine } from '@omega/cell-state/testing';
import type { Machine } from '@omega/cell-state';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServicePolicyOptions } from './options.js';
import { servicePolicy } from './policy.js';
import { ServiceHarness } from './testing/index.js';

const MACHINES = 10_000;
const RACKS = 40;

describe('at paper scale', () => {
  let h: ServiceHarness;
  let machines: Machine[];

  beforeAll(async () => {
    h = await ServiceHarness.start(
      Array.from({ length: MACHINES }, (_, i) => machine(`m${i}`).cpu(8000).memory('32Gi').attr('rack', `r${i % RACKS}`).attr('zone', `z${i % 3}`)),
    );
    const claims = [];
    for (let i = 0; i < MACHINES; i++) {
      for (let k = 0; k < 3; k++) claims.push({ task: `bg${k}/${i}`, machine: `m${i}`, cpu: 1000 + ((i * 7 + k * 13) % 20) * 100, memory: '2Gi', priority: k });
    }
    await h.occupy(claims);
    machines = h.machines();
  }, 120_000);
  afterAll(async () => {
    await h.close();
  });

  function place(name: string, spec: ReturnType<ReturnType<typeof jobSpec>['build']>, options: ServicePolicyOptions = {}) {
    return h.place(servicePolicy(options), h.job(name, spec), { machines });
  }

  it('places 300 tasks on 10,000 machines', () => {
    const { outcome } = place('web', jobSpec('web').service().instances(300).cpu(500).memory('1Gi').priority(5).build());
    expect(outcome.placed).toBe(300);
  });

  it('places 300 spread, constrained, one-per-machine tasks exactly balanced over the racks', () => {
    const spec = jobSpec('web')
      .service()
      .instances(300)
      .cpu(500)
      .memory('1Gi')
      .priority(5)
      .constraint({ operator: 'spread', attribute: 'rack' })
      .constraint({ operator: 'in', attribute: 'zone', values: ['z0', 'z1'] })
      .constraint({ operator: 'max-per-machine', limit: 1 })
      .build();
    const { outcome, cell } = place('web', spec);
    expect(outcome.placed).toBe(300);
    expect(new Set(cell.deltas.map((d) => d.claim.machineId)).size).toBe(300);
    const perRack = new Map<string, number>();
    for (const d of cell.deltas) {
      const rack = h.snapshot().machine(d.claim.machineId)?.attributes['rack'] ?? '';
      perRack.set(rack, (perRack.get(rack) ?? 0) + 1);
    }
    // 300 over 40 racks: 7 or 8 each.
    expect(perRack.size).toBe(RACKS);
    expect(new Set(perRack.values())).toEqual(new Set([7, 8]));
  });

  it('keeps spread exact when sampling', () => {
    const spec = jobSpec('web').service().instances(300).cpu(500).memory('1Gi').priority(5).constraint({ operator: 'spread', attribute: 'rack' }).build();
    const { outcome, cell } = place('web', spec, { sampleSize: 16 });
    expect(outcome.placed).toBe(300);
    const perRack = new Map<string, number>();
    for (const d of cell.deltas) {
      const rack = h.snapshot().machine(d.claim.machineId)?.attributes['rack'] ?? '';
      perRack.set(rack, (perRack.get(rack) ?? 0) + 1);
    }
    const counts = [...perRack.values()];
    expect(perRack.size).toBe(RACKS);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it('preempts for 300 tasks that fit nowhere else', () => {
    const { outcome, cell } = place('big', jobSpec('big').service().instances(300).cpu(7000).memory('1Gi').priority(9).build());
    expect(outcome.placed).toBe(300);
    expect(cell.deltas.every((d) => d.evicts.length > 0 && d.evicts.every((e) => e.claim.priority < 9))).toBe(true);
  });

  it('reports every machine ruled out when a task fits nowhere even with preemption', () => {
    const { outcome } = place('huge', jobSpec('huge').service().instances(300).cpu(9000).memory('1Gi').priority(9).build());
    expect(outcome.placed).toBe(0);
    expect(outcome.ruledOut).toEqual(new Map([['cpu', MACHINES]]));
  });
});
