/**
 * Property tests (fast-check) every placement policy built on the placement core must pass, run
 * by each policy package against its own policy (as cell-state's contract suites run on both
 * stores):
 *
 * 1. **No constraint is ever violated.** For random machines (racks, zones, missing
 *    attributes), random claims of other jobs and random constraint sets over every operator of
 *    `CONSTRAINT_OPERATORS`, every claim the policy makes satisfies every constraint (checked by
 *    an oracle written here, independently of the filters), fits, and keeps max-per-machine; a
 *    task left unplaced had no machine that passes them all; `ruledOut` then accounts for every
 *    offered machine; and the placement commits whole on the state it was made on.
 * 2. **The filters and the commit agree on fit.** The policy's claims are committed after other
 *    claims landed on the same machines (made on the same snapshot): on every machine, the
 *    number of the policy's claims the commit keeps is exactly the number of successive tasks the
 *    core's filters accept there on the new state. A placement the commit refuses is one the
 *    filters refuse, and the reverse.
 * 3. **Spread balances**: with room everywhere, no group gets more than one instance more than
 *    another.
 *
 * A failing run prints its seed; replay it with `FC_SEED=<seed> FC_PATH=<path>`.
 */
import {
  CONSTRAINT_OPERATORS,
  PrivateCell,
  claimIdFactory,
  jobId,
  parseTaskId,
  taskId,
  type Constraint,
  type ConstraintOperator,
  type JobSpec,
  type Machine,
  type MachineId,
} from '@omega/cell-state';
import { jobSpec, machine } from '@omega/cell-state/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PlacementState } from '../placement-state.js';
import type { PlacementPolicy } from '../policy.js';
import { seededRandom } from '../random.js';
import { PlacementHarness } from './placement-harness.js';

export interface PlacementPropertyOptions {
  /** Runs per property; default 100. */
  readonly numRuns?: number;
  /**
   * Whether the policy may preempt: then "unplaced means no machine could take it" is not
   * checked (a preempting policy's completeness is its own suite's business).
   */
  readonly preempts?: boolean;
}

function fcParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env['FC_SEED'];
  const path = process.env['FC_PATH'];
  return { numRuns, ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }), verbose: 1 };
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const JOB = 'placed';

const machineArb = fc.record({
  cpu: fc.integer({ min: 2, max: 16 }).map((n) => n * 500),
  memoryGi: fc.integer({ min: 1, max: 8 }),
  rack: fc.option(fc.constantFrom('rack-0', 'rack-1', 'rack-2'), { nil: undefined }),
  zone: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
});

const otherClaimArb = fc.record({
  job: fc.constantFrom('x', 'y'),
  index: fc.nat(7),
  machine: fc.nat(7),
  cpu: fc.integer({ min: 1, max: 40 }).map((n) => n * 100),
  memoryMi: fc.integer({ min: 128, max: 4096 }),
});

/** Values include one no machine has (`rack-9`, `c`), and `gpu` is an attribute no machine has. */
const constraintArb: fc.Arbitrary<Constraint> = fc
  .record({
    operator: fc.constantFrom<ConstraintOperator>(...CONSTRAINT_OPERATORS),
    attribute: fc.constantFrom('rack', 'zone', 'gpu'),
    values: fc.subarray(['rack-0', 'rack-1', 'rack-2', 'rack-9', 'a', 'b', 'c'], { maxLength: 3 }),
    limit: fc.integer({ min: 1, max: 3 }),
  })
  .map((c) => (c.operator === 'equals' && c.values.length === 0 ? { ...c, values: ['rack-1'] } : c));

const specArb = fc.record({
  instances: fc.integer({ min: 1, max: 10 }),
  cpu: fc.integer({ min: 1, max: 40 }).map((n) => n * 100),
  memoryMi: fc.integer({ min: 64, max: 4096 }),
  constraints: fc.array(constraintArb, { maxLength: 3 }),
});

const attr = (m: Machine, name: string): string | undefined => (Object.hasOwn(m.attributes, name) ? m.attributes[name] : undefined);

/** The static constraint checks written again, independently of the filters: the properties' oracle. */
export function satisfiesConstraint(m: Machine, c: Constraint): boolean {
  const v = attr(m, c.attribute);
  switch (c.operator) {
    case 'equals':
      return v === c.values[0];
    case 'in':
      return v !== undefined && c.values.includes(v);
    case 'not-in':
      return v === undefined || !c.values.includes(v);
    case 'spread':
      return c.values.length === 0 || c.values.includes(v ?? '');
    case 'max-per-machine':
      return true;
  }
}

type MachineSpec = { readonly cpu: number; readonly memoryGi: number; readonly rack: string | undefined; readonly zone: string | undefined };

async function harnessOf(machines: readonly MachineSpec[]): Promise<PlacementHarness> {
  return PlacementHarness.start(
    machines.map((m, i) => {
      const b = machine(`m${i}`).cpu(m.cpu).memory(m.memoryGi * GiB);
      if (m.rack !== undefined) b.attr('rack', m.rack);
      if (m.zone !== undefined) b.attr('zone', m.zone);
      return b;
    }),
  );
}

/** Claims for other jobs on a PrivateCell of the harness's snapshot: whatever of `claims` fits. */
function otherClaims(h: PlacementHarness, claims: readonly { job: string; index: number; machine: number; cpu: number; memoryMi: number }[], machines: number): PrivateCell {
  const pc = new PrivateCell(h.snapshot(), 'others', claimIdFactory());
  for (const o of claims) {
    pc.claim(`m${o.machine % machines}` as MachineId, { taskId: taskId(jobId(o.job), o.index), resources: { cpuMillis: o.cpu, memoryBytes: o.memoryMi * MiB }, priority: 0 });
  }
  return pc;
}

function specOf(kind: PlacementPolicy['kind'], s: { instances: number; cpu: number; memoryMi: number; constraints: readonly Constraint[] }): JobSpec {
  const b = jobSpec(JOB).instances(s.instances).cpu(s.cpu).memory(s.memoryMi * MiB);
  if (kind === 'service') b.service();
  for (const c of s.constraints) b.constraint(c);
  return b.build();
}

/** Registers the placement properties for the policy `make` builds (a fresh one per run). */
export function describePlacementProperties(name: string, make: () => PlacementPolicy, options: PlacementPropertyOptions = {}): void {
  const numRuns = options.numRuns ?? 100;

  describe(`${name}: placement core properties`, () => {
    it('never violates a constraint, places only what fits, leaves a task unplaced only when no machine could take it, and commits whole', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(machineArb, { minLength: 1, maxLength: 8 }), fc.array(otherClaimArb, { maxLength: 12 }), specArb, fc.nat(1000), async (machines, others, s, seed) => {
          const h = await harnessOf(machines);
          try {
            const occupied = otherClaims(h, others, machines.length);
            if (occupied.deltas.length > 0) await h.commit(occupied);
            const policy = make();
            const spec = specOf(policy.kind, s);
            const job = h.job(JOB, spec);
            const snapshot = h.snapshot();
            const offered = h.machines();
            const { outcome, cell } = h.place(policy, job, { seed });

            expect(outcome.placed).toBe(cell.deltas.length);
            const perMachine = new Map<MachineId, number>();
            for (const d of cell.deltas) {
              const m = snapshot.machine(d.claim.machineId) as Machine;
              for (const c of spec.constraints) expect(satisfiesConstraint(m, c), `${m.id} violates ${JSON.stringify(c)}`).toBe(true);
              expect(d.claim.resources).toEqual(spec.task.resources);
              perMachine.set(m.id, (perMachine.get(m.id) ?? 0) + 1);
            }
            for (const [id, mine] of perMachine) {
              const m = snapshot.machine(id) as Machine;
              const live = m.claims.filter((c) => snapshot.isLive(c));
              const r = spec.task.resources;
              expect(live.reduce((n, c) => n + c.resources.cpuMillis, 0) + mine * r.cpuMillis).toBeLessThanOrEqual(m.capacity.cpuMillis);
              expect(live.reduce((n, c) => n + c.resources.memoryBytes, 0) + mine * r.memoryBytes).toBeLessThanOrEqual(m.capacity.memoryBytes);
              const ofJob = live.filter((c) => parseTaskId(c.taskId)?.jobId === JOB).length + mine;
              for (const c of spec.constraints) if (c.operator === 'max-per-machine') expect(ofJob).toBeLessThanOrEqual(c.limit);
            }

            const wanted = spec.instances;
            if (outcome.placed < wanted) {
              expect([...outcome.ruledOut.values()].reduce((x, y) => x + y, 0)).toBe(offered.length);
              if (options.preempts !== true) {
                const r = spec.task.resources;
                for (const m of offered) {
                  if (!spec.constraints.every((c) => satisfiesConstraint(m, c))) continue;
                  const mine = perMachine.get(m.id) ?? 0;
                  if (spec.constraints.some((c) => c.operator === 'max-per-machine' && mine >= c.limit)) continue;
                  const free = snapshot.free(m.id);
                  const fits = r.cpuMillis * (mine + 1) <= free.cpuMillis && r.memoryBytes * (mine + 1) <= free.memoryBytes;
                  expect(fits, `${m.id} could have taken a task`).toBe(false);
                }
              }
            } else {
              expect(outcome.ruledOut.size).toBe(0);
            }

            if (cell.deltas.length > 0) {
              const result = await h.commit(cell);
              expect(result.conflicted).toEqual([]);
            }
          } finally {
            await h.close();
          }
        }),
        fcParams(numRuns),
      );
    }, 120_000);

    it('keeps, on every machine, exactly as many of its claims at commit as the filters accept there on the new state', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(machineArb, { minLength: 1, maxLength: 6 }),
          fc.array(otherClaimArb, { minLength: 1, maxLength: 12 }),
          specArb.map((s) => ({ ...s, constraints: [] })),
          fc.nat(1000),
          async (machines, others, s, seed) => {
            const h = await harnessOf(machines);
            try {
              const policy = make();
              const spec = specOf(policy.kind, s);
              const job = h.job(JOB, spec);
              // Both made on the same snapshot; the other claims commit first.
              const interfering = otherClaims(h, others, machines.length);
              const { cell } = h.place(policy, job, { seed });
              if (interfering.deltas.length > 0) await h.commit(interfering);
              if (cell.deltas.length === 0) return;
              const wantedOn = new Map<MachineId, number>();
              for (const d of cell.deltas) wantedOn.set(d.claim.machineId, (wantedOn.get(d.claim.machineId) ?? 0) + 1);

              // The filters on the state the commit will see (the interfering claims in): how many
              // of the policy's tasks they accept on each machine, one after another.
              const current = h.snapshot();
              const acceptedOn = new Map<MachineId, number>();
              for (const [id, wanted] of wantedOn) {
                const probeCell = new PrivateCell(current, 'probe', claimIdFactory());
                const state = new PlacementState({ job, tasks: [], cell: probeCell, snapshot: current, machines: [current.machine(id) as Machine], random: seededRandom(1) });
                let accepted = 0;
                while (accepted < wanted && state.candidates.length === 1 && state.feasible(0)) {
                  const out = probeCell.claim(id, { taskId: taskId(jobId('probe'), accepted), resources: spec.task.resources, priority: spec.priority });
                  expect(out.refused, 'the filters accept what PrivateCell.claim refuses').toBeUndefined();
                  state.record(0);
                  accepted++;
                }
                acceptedOn.set(id, accepted);
              }

              const result = await h.commit(cell);
              for (const c of result.conflicted) expect(c.reason).toBe('no-fit');
              const keptOn = new Map<MachineId, number>();
              for (const d of result.committed) keptOn.set(d.claim.machineId, (keptOn.get(d.claim.machineId) ?? 0) + 1);
              for (const [id, wanted] of wantedOn) {
                const kept = keptOn.get(id) ?? 0;
                expect(kept, `machine ${id}: the commit kept ${kept} of ${wanted}, the filters accept ${acceptedOn.get(id)}`).toBe(acceptedOn.get(id));
              }
            } finally {
              await h.close();
            }
          },
        ),
        fcParams(numRuns),
      );
    }, 120_000);

    it('spreads instances so that no group has more than one instance more than another when all have room', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.option(fc.constantFrom('rack-0', 'rack-1', 'rack-2', 'rack-3'), { nil: undefined }), { minLength: 1, maxLength: 12 }),
          fc.integer({ min: 1, max: 20 }),
          fc.nat(1000),
          async (racks, instances, seed) => {
            const h = await PlacementHarness.start(
              racks.map((rack, i) => {
                const b = machine(`m${i}`).cpu(64_000).memory(256 * GiB);
                if (rack !== undefined) b.attr('rack', rack);
                return b;
              }),
            );
            try {
              const policy = make();
              const spec = specOf(policy.kind, { instances, cpu: 100, memoryMi: 64, constraints: [{ operator: 'spread', attribute: 'rack', values: [], limit: 0 }] });
              const { outcome, cell } = h.place(policy, h.job(JOB, spec), { seed });
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
        fcParams(numRuns),
      );
    }, 120_000);
  });
}
