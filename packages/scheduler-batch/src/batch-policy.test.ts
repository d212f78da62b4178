import { PrivateCell, claimIdFactory, jobId, taskId, type CellSnapshot, type Job, type JobSpec } from '@omega/cell-state';
import { offeredMachines, seededRandom } from '@omega/scheduler-core';
import { SchedulerHarness, jobSpec, machine } from '@omega/scheduler-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { batchPolicy, placeBatch, type BatchChoice } from './batch-policy.js';
import { batchHarness } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

function jobOf(spec: JobSpec, id = 'j'): Job {
  return { id: jobId(id), spec, desired: 'running', submittedAtMs: 0, requestId: '', revision: 1 };
}

/** Runs the policy once on a fresh PrivateCell of `snapshot`; returns the machines chosen, in task order. */
function place(snapshot: CellSnapshot, spec: JobSpec, choice: BatchChoice, seed: number) {
  const job = jobOf(spec);
  const cell = new PrivateCell(snapshot, 'test', claimIdFactory());
  const tasks = Array.from({ length: spec.instances }, (_, index) => ({ taskId: taskId(job.id, index), index }));
  const outcome = placeBatch({ job, tasks, cell, snapshot, machines: offeredMachines(snapshot).machines, random: seededRandom(seed) }, choice);
  return { outcome, machines: cell.deltas.map((d) => d.claim.machineId as string) };
}

/** A cell whose machines have the given CPU (millicores; 1 = nothing fits) and 16 GiB each. */
async function cellWithFree(free: readonly number[]): Promise<CellSnapshot> {
  h = await SchedulerHarness.open({ machines: free.map((f, i) => machine(`m${i}`).cpu(Math.max(1, f)).memory('16Gi')) });
  return h.snapshot();
}

describe('randomized first fit', () => {
  it('takes the first machine that fits from a random offset, so different seeds start in different places', async () => {
    const snapshot = await cellWithFree([4000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) firsts.add(place(snapshot, jobSpec('a').build(), 'first-fit', seed).machines[0] as string);
    expect(firsts.size).toBeGreaterThan(3);
    // Same seed, same choices.
    expect(place(snapshot, jobSpec('a').instances(5).build(), 'first-fit', 7)).toEqual(place(snapshot, jobSpec('a').instances(5).build(), 'first-fit', 7));
  });

  it('skips machines without room and wraps around the list', async () => {
    const snapshot = await cellWithFree([0, 0, 500, 0, 0, 0]);
    for (let seed = 1; seed <= 10; seed++) expect(place(snapshot, jobSpec('a').cpu(500).build(), 'first-fit', seed).machines).toEqual(['m2']);
  });

  it('stops at the first task that fits nowhere and counts each machine under the first resource it lacks', async () => {
    h = await SchedulerHarness.open({ machines: [machine('m0').cpu(1000).memory('8Gi'), machine('m1').cpu(8000).memory('1Gi'), machine('m2').cpu(1000).memory('1Gi')] });
    const snapshot = await h.snapshot();
    const { outcome, machines } = place(snapshot, jobSpec('a').instances(3).cpu(1000).memory('1Gi').build(), 'first-fit', 3);
    expect(outcome.placed).toBe(3);
    expect(machines.sort()).toEqual(['m0', 'm1', 'm2']);
    const more = place(snapshot, jobSpec('b').instances(5).cpu(1000).memory('2Gi').build(), 'first-fit', 3);
    expect(more.outcome.placed).toBe(1);
    expect(more.machines).toEqual(['m0']);
    expect([...more.outcome.ruledOut]).toEqual([
      ['cpu', 1],
      ['memory', 2],
    ]);
  });
});

describe('pack', () => {
  it('fills the machine it starts on before moving to the next one, wrapping around the list', async () => {
    const snapshot = await cellWithFree([4000, 4000, 4000, 4000, 4000, 4000]);
    const { outcome, machines } = place(snapshot, jobSpec('a').instances(10).cpu(1000).build(), 'pack', 5);
    expect(outcome.placed).toBe(10);
    const start = Number((machines[0] as string).slice(1));
    const expected = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2].map((k) => `m${(start + k) % 6}`);
    expect(machines).toEqual(expected);
  });

  it('starts each job at a random machine and skips machines without room', async () => {
    const snapshot = await cellWithFree([4000, 0, 4000, 0, 4000, 0, 4000, 0]);
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const { machines } = place(snapshot, jobSpec('a').instances(2).cpu(1000).build(), 'pack', seed);
      expect(new Set(machines).size).toBe(1);
      firsts.add(machines[0] as string);
    }
    expect([...firsts].sort()).toEqual(['m0', 'm2', 'm4', 'm6']);
  });

  it('is the default choice', async () => {
    const snapshot = await cellWithFree([4000, 4000, 4000, 4000]);
    const job = jobOf(jobSpec('a').instances(4).cpu(1000).build());
    const cell = new PrivateCell(snapshot, 'test', claimIdFactory());
    const tasks = Array.from({ length: 4 }, (_, index) => ({ taskId: taskId(job.id, index), index }));
    batchPolicy().place({ job, tasks, cell, snapshot, machines: offeredMachines(snapshot).machines, random: seededRandom(9) });
    expect(new Set(cell.deltas.map((d) => d.claim.machineId)).size).toBe(1);
  });
});

describe('power-of-two choices', () => {
  it('takes the feasible machine with more free CPU of the two it samples', async () => {
    const snapshot = await cellWithFree([0, 1000, 0, 0, 3000, 0]);
    for (let seed = 1; seed <= 10; seed++) expect(place(snapshot, jobSpec('a').cpu(500).build(), 'power-of-two', seed).machines).toEqual(['m4']);
  });

  it('still places on the only feasible machine', async () => {
    const snapshot = await cellWithFree([0, 0, 0, 700]);
    expect(place(snapshot, jobSpec('a').cpu(500).build(), 'power-of-two', 1).machines).toEqual(['m3']);
  });
});

describe('the batch policy in the loop', () => {
  it('refuses an unknown choice at construction, naming the option', () => {
    expect(() => batchPolicy({ choice: 'best-fit' as BatchChoice })).toThrow(/^choice: must be one of first-fit, power-of-two, pack/);
  });

  it('places a gang job whole when it fits and not at all when it does not', async () => {
    ({ harness: h } = await batchHarness(1, { machines: 3, scheduler: { settings: { maxAttemptsWithoutProgress: 2 } } }));
    const fits = await h.submit(jobSpec('gang').instances(12).cpu(1000).gang());
    const tooMany = await h.submit(jobSpec('gang').instances(2).cpu(1000).gang());
    await h.runUntilIdle();
    expect((await h.tasks(fits)).length).toBe(12);
    expect(await h.tasks(tooMany)).toEqual([]);
    expect((await h.snapshot()).status(tooMany)?.reason).toMatch(/all-or-nothing job: only 0 of 2 tasks fit/);
  });

  it('lets three competing instances with think time place a burst of jobs without over-committing, retrying their conflicts', async () => {
    const { harness, schedulers } = await batchHarness(3, {
      machines: Array.from({ length: 16 }, (_, i) => machine(`m${i}`).cpu(2000).memory('8Gi')),
      scheduler: { settings: { thinkTimeJobMs: 100, thinkTimeTaskMs: 5 } },
    });
    h = harness;
    for (let i = 0; i < 30; i++) await h.submit(jobSpec('burst').instances(1 + (i % 3)).cpu(500).priority(i % 2));
    await h.runUntilIdle();
    expect(await h.violations()).toEqual([]);
    const failed = schedulers.reduce((n, s) => n + s.metrics().transactionsFailed, 0);
    const committed = schedulers.reduce((n, s) => n + s.metrics().claimsCommitted, 0);
    expect(failed).toBeGreaterThan(0);
    expect(committed).toBe(30 + 30);
    const snapshot = await h.snapshot();
    expect([...snapshot.jobs()].every((j) => snapshot.status(j.id)?.state === 'running')).toBe(true);
  });
});

describe('constraints', () => {
  /** Six machines over two racks and two zones, 8 cores each. */
  async function racked(): Promise<CellSnapshot> {
    h = await SchedulerHarness.open({
      machines: Array.from({ length: 6 }, (_, i) =>
        machine(`m${i}`)
          .cpu(8000)
          .memory('16Gi')
          .attr('rack', `rack-${i % 2}`)
          .attr('zone', i < 3 ? 'a' : 'b'),
      ),
    });
    return h.snapshot();
  }

  it('places every task only on machines whose attribute matches, with every choice', async () => {
    const snapshot = await racked();
    for (const choice of ['pack', 'first-fit', 'power-of-two'] as const) {
      for (let seed = 1; seed <= 10; seed++) {
        const spec = jobSpec('a').instances(6).cpu(1000).constraint({ operator: 'equals', attribute: 'rack', values: ['rack-1'] }).build();
        const { outcome, machines } = place(snapshot, spec, choice, seed);
        expect(outcome.placed).toBe(6);
        for (const m of machines) expect(['m1', 'm3', 'm5']).toContain(m);
      }
    }
  });

  it('honours in, not-in and max-per-machine together', async () => {
    const snapshot = await racked();
    const spec = jobSpec('a')
      .instances(4)
      .cpu(1000)
      .constraint({ operator: 'in', attribute: 'zone', values: ['a'] })
      .constraint({ operator: 'not-in', attribute: 'rack', values: ['rack-1'] })
      .constraint({ operator: 'max-per-machine', limit: 2 })
      .build();
    const { outcome, machines } = place(snapshot, spec, 'pack', 4);
    // zone a and not rack-1: m0 and m2, two each; the fifth task would have nowhere to go.
    expect(outcome.placed).toBe(4);
    expect(machines.sort()).toEqual(['m0', 'm0', 'm2', 'm2']);
    const more = place(snapshot, { ...spec, instances: 5 }, 'pack', 4);
    expect(more.outcome.placed).toBe(4);
    expect(new Map(more.outcome.ruledOut)).toEqual(
      new Map([
        ['attribute zone in [a]', 3],
        ['attribute rack not-in [rack-1]', 1],
        ['max-per-machine 2', 2],
      ]),
    );
  });

  it('reports a constraint no machine meets as the filter that ruled every machine out', async () => {
    const snapshot = await racked();
    const spec = jobSpec('a').instances(2).constraint({ operator: 'equals', attribute: 'rack', values: ['rack-9'] }).build();
    const { outcome, machines } = place(snapshot, spec, 'pack', 1);
    expect(outcome.placed).toBe(0);
    expect(machines).toEqual([]);
    expect([...outcome.ruledOut]).toEqual([['attribute rack equals rack-9', 6]]);
  });

  it('spreads over the racks: each task goes to the rack with fewer of the job', async () => {
    const snapshot = await racked();
    for (let seed = 1; seed <= 10; seed++) {
      const spec = jobSpec('a').instances(6).cpu(1000).constraint({ operator: 'spread', attribute: 'rack' }).build();
      const { outcome, machines } = place(snapshot, spec, 'pack', seed);
      expect(outcome.placed).toBe(6);
      const perRack = machines.map((m) => Number(m.slice(1)) % 2);
      expect(perRack.filter((r) => r === 0).length).toBe(3);
      // Balanced at every step, not only at the end.
      for (let k = 2; k <= 6; k += 2) expect(perRack.slice(0, k).filter((r) => r === 0).length).toBe(k / 2);
    }
  });

  it('keeps a job whose constraint no machine meets pending in the loop, with the filter in its status', async () => {
    const { harness } = await batchHarness(1, { machines: [machine('m0').attr('rack', 'rack-0'), machine('m1').attr('rack', 'rack-1')] });
    h = harness;
    const ok = await h.submit(jobSpec('ok').instances(3).cpu(100).constraint({ operator: 'equals', attribute: 'rack', values: ['rack-1'] }));
    const nowhere = await h.submit(jobSpec('nowhere').constraint({ operator: 'equals', attribute: 'rack', values: ['rack-9'] }));
    await h.runUntilIdle();
    const snapshot = await h.snapshot();
    const placedOn = [...snapshot.tasksOf(ok)].map((t) => t.machineId as string);
    expect(placedOn).toEqual(['m1', 'm1', 'm1']);
    expect([...snapshot.tasksOf(nowhere)]).toEqual([]);
    expect(snapshot.status(nowhere)?.ruledOut).toEqual([{ filter: 'attribute rack equals rack-9', machines: 2 }]);
  });
});
