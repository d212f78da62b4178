/**
 * Property: for random machines, occupying claims, task endings, job specs and policy options,
 * every claim the service policy makes satisfies all of the job's constraints and fits, every
 * eviction is of a strictly lower-priority live claim of another job on the same machine (each
 * at most once), `ruledOut` accounts for every machine when a task is left unplaced, and the
 * whole transaction commits with the victims killed.
 *
 * A failing run prints its seed; replay it with `FC_SEED=<seed> FC_PATH=<path>`.
 */
import { jobId, PrivateCell, claimIdFactory, parseTaskId, taskId, type Constraint, type JobSpec, type Machine } from '@omega/cell-state';
import { jobSpec, machine } from '@omega/cell-state/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ServicePolicyOptions } from './options.js';
import { servicePolicy } from './policy.js';
import { satisfiesConstraint } from '@omega/scheduler-core/testing';
import { ServiceHarness } from './testing/index.js';

function fcParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env['FC_SEED'];
  const path = process.env['FC_PATH'];
  return { numRuns, ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }), verbose: 1 };
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const machineArb = fc.record({
  cpu: fc.integer({ min: 2, max: 16 }).map((n) => n * 500),
  memoryGi: fc.integer({ min: 1, max: 16 }),
  rack: fc.option(fc.constantFrom('r0', 'r1', 'r2'), { nil: undefined }),
  zone: fc.option(fc.constantFrom('z0', 'z1'), { nil: undefined }),
});

const occupyArb = fc.record({
  job: fc.constantFrom('a', 'b', 'web'),
  index: fc.nat(5),
  machine: fc.nat(7),
  cpu: fc.integer({ min: 1, max: 30 }).map((n) => n * 100),
  memoryMi: fc.integer({ min: 128, max: 4096 }),
  priority: fc.nat(9),
});

const constraintArb: fc.Arbitrary<Constraint> = fc.oneof(
  fc.constantFrom<Constraint>(
    { operator: 'equals', attribute: 'zone', values: ['z0'], limit: 0 },
    { operator: 'in', attribute: 'rack', values: ['r0', 'r1'], limit: 0 },
    { operator: 'not-in', attribute: 'rack', values: ['r2'], limit: 0 },
    { operator: 'spread', attribute: 'rack', values: [], limit: 0 },
    { operator: 'spread', attribute: 'zone', values: [], limit: 0 },
    { operator: 'spread', attribute: 'rack', values: ['r1', 'r2'], limit: 0 },
  ),
  fc.integer({ min: 1, max: 3 }).map((limit): Constraint => ({ operator: 'max-per-machine', attribute: '', values: [], limit })),
);

const specArb = fc.record({
  priority: fc.nat(9),
  instances: fc.integer({ min: 1, max: 8 }),
  cpu: fc.integer({ min: 1, max: 40 }).map((n) => n * 100),
  memoryMi: fc.integer({ min: 128, max: 4096 }),
  constraints: fc.array(constraintArb, { maxLength: 3 }),
});

const optionsArb: fc.Arbitrary<ServicePolicyOptions> = fc.record({
  scoring: fc.constantFrom('spread' as const, 'bin-pack' as const),
  preemption: fc.boolean(),
  antiAffinityPenalty: fc.constantFrom(0, 0.1, 0.5),
  sampleSize: fc.constantFrom(0, 1, 2),
  sampleAbove: fc.constantFrom(0, 3),
});


describe('service policy properties', () => {
  it('claims satisfy the constraints and fit, evictions are of strictly lower-priority live claims, and it all commits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(machineArb, { minLength: 1, maxLength: 8 }),
        fc.array(occupyArb, { maxLength: 14 }),
        fc.array(fc.nat(13), { maxLength: 4 }),
        specArb,
        optionsArb,
        fc.nat(1000),
        async (machineSpecs, occupying, endings, s, options, seed) => {
          const h = await ServiceHarness.start(
            machineSpecs.map((m, i) => {
              const b = machine(`m${i}`).cpu(m.cpu).memory(m.memoryGi * GiB);
              if (m.rack !== undefined) b.attr('rack', m.rack);
              if (m.zone !== undefined) b.attr('zone', m.zone);
              return b;
            }),
          );
          try {
            // Occupy what fits (duplicates and misfits are simply not claimed).
            const pc = new PrivateCell(h.snapshot(), 'occupier', claimIdFactory());
            for (const o of occupying) {
              pc.claim(`m${o.machine % machineSpecs.length}` as Machine['id'], {
                taskId: taskId(jobId(o.job), o.index),
                resources: { cpuMillis: o.cpu, memoryBytes: o.memoryMi * MiB },
                priority: o.priority,
              });
            }
            if (pc.deltas.length > 0) await h.commit(pc);
            for (const e of endings) {
              const d = pc.deltas[e];
              if (d !== undefined) await h.endTask(d.claim.taskId, 'succeeded');
            }

            const b = jobSpec('web').service().priority(s.priority).instances(s.instances).cpu(s.cpu).memory(s.memoryMi * MiB);
            for (const c of s.constraints) b.constraint(c);
            const spec: JobSpec = b.build();
            const job = h.job('web', spec);
            const snapshot = h.snapshot();
            const offered = h.machines();
            const { outcome, cell } = h.place(servicePolicy(options), job, { seed });

            const wanted = [...Array(spec.instances).keys()].filter((i) => {
              const t = snapshot.task(taskId(job.id, i));
              return t === undefined || ['succeeded', 'failed', 'killed', 'lost'].includes(t.state);
            });
            expect(outcome.placed).toBe(cell.deltas.length);
            expect(outcome.placed).toBeLessThanOrEqual(wanted.length);
            if (outcome.placed < wanted.length) {
              expect([...outcome.ruledOut.values()].reduce((x, y) => x + y, 0)).toBe(offered.length);
            } else {
              expect(outcome.ruledOut.size).toBe(0);
            }

            const evicted = new Set<string>();
            for (const d of cell.deltas) {
              const m = snapshot.machine(d.claim.machineId) as Machine;
              for (const c of spec.constraints) expect(satisfiesConstraint(m, c), `${d.claim.machineId} violates ${JSON.stringify(c)}`).toBe(true);
              expect(d.claim.priority).toBe(spec.priority);
              expect(d.claim.resources).toEqual(spec.task.resources);
              for (const e of d.evicts) {
                expect(options.preemption).toBe(true);
                expect(e.claim.machineId).toBe(d.claim.machineId);
                expect(m.claims.some((c) => c.id === e.claim.id)).toBe(true);
                expect(snapshot.isLive(e.claim)).toBe(true);
                expect(e.claim.priority).toBeLessThan(spec.priority);
                expect(parseTaskId(e.claim.taskId)?.jobId).not.toBe('web');
                expect(evicted.has(e.claim.id)).toBe(false);
                evicted.add(e.claim.id);
              }
            }

            for (const m of offered) {
              const mine = cell.deltas.filter((d) => d.claim.machineId === m.id);
              if (mine.length === 0) continue;
              const kept = m.claims.filter((c) => snapshot.isLive(c) && !evicted.has(c.id));
              const cpu = kept.reduce((n, c) => n + c.resources.cpuMillis, 0) + mine.reduce((n, d) => n + d.claim.resources.cpuMillis, 0);
              const memory = kept.reduce((n, c) => n + c.resources.memoryBytes, 0) + mine.reduce((n, d) => n + d.claim.resources.memoryBytes, 0);
              expect(cpu).toBeLessThanOrEqual(m.capacity.cpuMillis);
              expect(memory).toBeLessThanOrEqual(m.capacity.memoryBytes);
              const instances = kept.filter((c) => parseTaskId(c.taskId)?.jobId === 'web').length + mine.length;
              for (const c of spec.constraints) if (c.operator === 'max-per-machine') expect(instances).toBeLessThanOrEqual(c.limit);
            }

            // Completeness: a task was left unplaced only if no offered machine could take it,
            // not even by evicting every strictly lower-priority claim of other jobs there.
            if (outcome.placed < wanted.length) {
              const r = spec.task.resources;
              for (const m of offered) {
                if (!spec.constraints.every((c) => satisfiesConstraint(m, c))) continue;
                const kept = m.claims.filter((c) => snapshot.isLive(c) && !evicted.has(c.id));
                const mine = cell.deltas.filter((d) => d.claim.machineId === m.id);
                const instances = kept.filter((c) => parseTaskId(c.taskId)?.jobId === 'web').length + mine.length;
                if (spec.constraints.some((c) => c.operator === 'max-per-machine' && instances >= c.limit)) continue;
                let freeCpu = m.capacity.cpuMillis - kept.reduce((n, c) => n + c.resources.cpuMillis, 0) - mine.reduce((n, d) => n + d.claim.resources.cpuMillis, 0);
                let freeMemory = m.capacity.memoryBytes - kept.reduce((n, c) => n + c.resources.memoryBytes, 0) - mine.reduce((n, d) => n + d.claim.resources.memoryBytes, 0);
                if (options.preemption === true) {
                  for (const c of kept) {
                    if (c.priority >= spec.priority || parseTaskId(c.taskId)?.jobId === 'web') continue;
                    freeCpu += c.resources.cpuMillis;
                    freeMemory += c.resources.memoryBytes;
                  }
                }
                expect(r.cpuMillis <= freeCpu && r.memoryBytes <= freeMemory, `${m.id} could have taken a task`).toBe(false);
              }
            }

            if (cell.deltas.length > 0) {
              const result = await h.commit(cell);
              expect(result.conflicted).toEqual([]);
              const after = h.snapshot();
              for (const id of evicted) {
                const victim = cell.deltas.flatMap((d) => d.evicts).find((e) => e.claim.id === id);
                expect(after.task(victim!.claim.taskId)).toMatchObject({ state: 'killed', reason: 'preempted' });
              }
            }
          } finally {
            await h.close();
          }
        },
      ),
      fcParams(120),
    );
  }, 120_000);

  it('spreads instances so that no group has more than one instance more than another when all have room', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(fc.constantFrom('r0', 'r1', 'r2', 'r3'), { nil: undefined }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 20 }),
        optionsArb,
        fc.nat(1000),
        async (racks, instances, options, seed) => {
          const h = await ServiceHarness.start(
            racks.map((rack, i) => {
              const b = machine(`m${i}`).cpu(64_000).memory(256 * GiB);
              if (rack !== undefined) b.attr('rack', rack);
              return b;
            }),
          );
          try {
            const spec = jobSpec('web').service().instances(instances).cpu(100).memory('64Mi').constraint({ operator: 'spread', attribute: 'rack' }).build();
            const { outcome, cell } = h.place(servicePolicy(options), h.job('web', spec), { seed });
            expect(outcome.placed).toBe(instances);
            const perGroup = new Map<string, number>(racks.map((r) => [r ?? '', 0]));
            for (const d of cell.deltas) {
              const rack = racks[Number(d.claim.machineId.slice(1))] ?? '';
              perGroup.set(rack, (perGroup.get(rack) ?? 0) + 1);
            }
            const counts = [...perGroup.values()];
            expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
          } finally {
            await h.close();
          }
        },
      ),
      fcParams(80),
    );
  }, 120_000);
});
