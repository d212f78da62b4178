/**
 * Property tests of the commit (fast-check), run against any KvStore:
 * - invariants 1 and 2 of the design with several concurrent committers, random claims, random
 *   task endings and random interleavings of snapshots and commits;
 * - all-or-nothing is atomic (a failed one changes nothing, not even a sequence number);
 * - incremental results partition the input;
 * - invariant 3: on the same history, resource-fit conflicts ⊆ sequence-numbers conflicts;
 * - multi-job commits (`commitMany`: one PrivateCell's claims for several jobs in one commit)
 *   keep all of the above per job: each job's result partitions its own claims, and a conflict
 *   on one job's machine neither loses nor double-places another job's tasks.
 *
 * A failing run prints its seed; replay it with `FC_SEED=<seed> FC_PATH=<path>`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cell } from '../cell.js';
import { decodeMachine, decodeTask } from '../codec.js';
import type { ClaimDelta, CommitResult, Committer, Transaction } from '../commit.js';
import type { KvStore } from '../kv.js';
import type { CellMirror } from '../mirror.js';
import { PrivateCell, claimIdFactory } from '../private-cell.js';
import { isClaimLive } from '../resources.js';
import { isTerminal, jobId, taskId, type Claim, type ConflictMode, type MachineId, type Task, type TaskId, type TransactionMode } from '../types.js';
import { machine } from './builders.js';
import { freshCellName, type OpenedStore } from './cell-contract.js';

export interface PropertyOptions {
  readonly numRuns: number;
}

function fcParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env['FC_SEED'];
  const path = process.env['FC_PATH'];
  return { numRuns, ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }), verbose: 1 };
}

/** Machine capacities (CPU millis, in steps of 500), `maxLength` machines at most. */
const capacitiesOf = (maxLength: number): fc.Arbitrary<number[]> => fc.array(fc.integer({ min: 2, max: 8 }).map((n) => n * 500), { minLength: 2, maxLength });
const claimPlan = fc.record({ task: fc.nat(11), machine: fc.nat(5), cpu: fc.integer({ min: 1, max: 20 }).map((n) => n * 100) });

type Step =
  | { readonly kind: 'plan'; readonly who: number; readonly claims: { task: number; machine: number; cpu: number }[] }
  | { readonly kind: 'commit'; readonly who: number }
  | { readonly kind: 'end-task'; readonly task: number; readonly state: 'succeeded' | 'failed' | 'lost' }
  | { readonly kind: 'settle' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('plan' as const), who: fc.nat(3), claims: fc.array(claimPlan, { minLength: 1, maxLength: 6 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('commit' as const), who: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('end-task' as const), task: fc.nat(11), state: fc.constantFrom('succeeded' as const, 'failed' as const, 'lost' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('settle' as const) }) },
);

const modes = fc.record({
  conflict: fc.constantFrom<ConflictMode>('sequence-numbers', 'resource-fit'),
  transaction: fc.constantFrom<TransactionMode>('incremental', 'all-or-nothing'),
});

/** Task `i` belongs to one of three jobs, so one plan holds claims of several jobs. */
const JOBS = 3;
const tid = (i: number): TaskId => taskId(jobId(`p${i % JOBS}`), i);

/** A PrivateCell's claims as one incremental transaction per job (what a scheduler placing several jobs at once commits). */
function perJob(pc: PrivateCell, conflictMode: ConflictMode): Transaction[] {
  const byJob = new Map<string, ClaimDelta[]>();
  for (const d of pc.deltas) {
    const job = d.claim.taskId.slice(0, d.claim.taskId.indexOf('/'));
    byJob.set(job, [...(byJob.get(job) ?? []), d]);
  }
  return [...byJob.values()].map((deltas) => ({ deltas, conflictMode, transactionMode: 'incremental', base: pc.base }));
}

/** Commits `pc` as one transaction, or (batched, incremental) as one transaction per job through commitMany; checks the partitions. */
async function commitPlan(committer: Committer, pc: PrivateCell, conflictMode: ConflictMode, transactionMode: TransactionMode, batched: boolean): Promise<CommitResult[]> {
  if (!batched || transactionMode !== 'incremental') {
    const result = await committer.commit(pc.transaction(conflictMode, transactionMode));
    checkPartition(result, pc.deltas.length, transactionMode);
    return [result];
  }
  const txs = perJob(pc, conflictMode);
  const results = await committer.commitMany(txs);
  expect(results.length).toBe(txs.length);
  results.forEach((r, i) => {
    const own = new Set(txs[i]!.deltas);
    checkPartition(r, own.size, 'incremental');
    for (const d of [...r.committed, ...r.conflicted.map((c) => c.delta)]) expect(own.has(d), `claim ${d.claim.id} reported in another job's result`).toBe(true);
  });
  return results;
}

/** Reads every machine and task of the cell straight from the store. */
async function readCell(kv: KvStore, cell: Cell): Promise<{ machines: Map<MachineId, ReturnType<typeof decodeMachine>>; tasks: Map<TaskId, Task> }> {
  const machines = new Map<MachineId, ReturnType<typeof decodeMachine>>();
  for (const kv1 of (await kv.range({ key: cell.keys.prefix('machines'), prefix: true })).kvs) {
    const m = decodeMachine(kv1.value, kv1.modRevision);
    machines.set(m.id, m);
  }
  const tasks = new Map<TaskId, Task>();
  for (const kv1 of (await kv.range({ key: cell.keys.prefix('tasks'), prefix: true })).kvs) {
    const t = decodeTask(kv1.value, kv1.modRevision);
    tasks.set(t.id, t);
  }
  return { machines, tasks };
}

/** Invariants 1 and 2 on the cell as stored now. */
async function checkInvariants(kv: KvStore, cell: Cell): Promise<void> {
  const { machines, tasks } = await readCell(kv, cell);
  const lookup = (id: TaskId) => tasks.get(id);
  const liveByTask = new Map<TaskId, Claim[]>();
  const claimIds = new Set<string>();
  for (const m of machines.values()) {
    let cpu = 0;
    let mem = 0;
    for (const c of m.claims) {
      expect(claimIds.has(c.id), `claim ${c.id} appears twice`).toBe(false);
      claimIds.add(c.id);
      if (!isClaimLive(c, lookup)) continue;
      cpu += c.resources.cpuMillis;
      mem += c.resources.memoryBytes;
      liveByTask.set(c.taskId, [...(liveByTask.get(c.taskId) ?? []), c]);
    }
    expect(cpu, `machine ${m.id} cpu over-committed`).toBeLessThanOrEqual(m.capacity.cpuMillis);
    expect(mem, `machine ${m.id} memory over-committed`).toBeLessThanOrEqual(m.capacity.memoryBytes);
  }
  // No live claim is ever dropped: every task that is placed or running has its claim on its machine.
  for (const t of tasks.values()) {
    if (isTerminal(t.state)) continue;
    const onMachine = machines.get(t.machineId)?.claims.some((c) => c.id === t.claimId) === true;
    expect(onMachine, `task ${t.id} (${t.state}) lost its claim ${t.claimId} on ${t.machineId}`).toBe(true);
  }
  for (const [task, claims] of liveByTask) {
    expect(claims.length, `task ${task} has ${claims.length} live claims`).toBeLessThanOrEqual(1);
    // The live claim is the one the task record names.
    const record = tasks.get(task);
    if (record !== undefined && !isTerminal(record.state)) expect(claims[0]?.id).toBe(record.claimId);
  }
}

function checkPartition(result: CommitResult, planned: number, mode: TransactionMode): void {
  const seen = new Set([...result.committed.map((d) => d.claim.id), ...result.conflicted.map((c) => c.delta.claim.id)]);
  expect(result.committed.length + result.conflicted.length).toBe(planned);
  expect(seen.size).toBe(planned);
  if (mode === 'all-or-nothing') expect(result.committed.length === 0 || result.conflicted.length === 0).toBe(true);
}

async function newCell(kv: KvStore, capacities: readonly number[]): Promise<{ cell: Cell; mirror: CellMirror; ids: MachineId[] }> {
  const cell = new Cell(kv, freshCellName());
  const ids: MachineId[] = [];
  for (const [i, cpu] of capacities.entries()) {
    const reg = machine(`m${i}`).cpu(cpu).memory('64Gi').build();
    await cell.registerMachine(reg);
    ids.push(reg.id);
  }
  const mirror = cell.mirror();
  await mirror.start();
  return { cell, mirror, ids };
}

type ClaimPlan = { task: number; machine: number; cpu: number };

/**
 * A fresh cell where my claims (`mine`, planned on the first snapshot) meet interference: other
 * claims planned on the same snapshot and committed first. Returns my PrivateCell uncommitted.
 */
async function interfered(kv: KvStore, capacities: readonly number[], interference: readonly ClaimPlan[], mine: readonly ClaimPlan[]) {
  const { cell, mirror, ids } = await newCell(kv, capacities);
  const base = mirror.snapshot();
  const claimOn = (pc: PrivateCell, plans: readonly ClaimPlan[], offset: number): void => {
    for (const p of plans) pc.claim(ids[p.machine % ids.length]!, { taskId: tid(p.task + offset), resources: { cpuMillis: p.cpu, memoryBytes: 1024 }, priority: 0 });
  };
  const other = new PrivateCell(base, 'other', claimIdFactory());
  claimOn(other, interference, 100);
  const pc = new PrivateCell(base, 'me', claimIdFactory());
  claimOn(pc, mine, 0);
  if (pc.deltas.length > 0 && other.deltas.length > 0) await cell.committer().commit(other.transaction('resource-fit', 'incremental'));
  return { cell, mirror, pc };
}

export function describeCommitProperties(name: string, open: () => Promise<OpenedStore>, options: PropertyOptions): void {
  describe(`commit properties: ${name}`, () => {
    it('no machine is over-committed and no task has two live claims, for any interleaving of concurrent committers', async () => {
      const store = await open();
      try {
        await fc.assert(
          fc.asyncProperty(
            capacitiesOf(6),
            fc.array(modes, { minLength: 4, maxLength: 4 }),
            fc.array(step, { minLength: 5, maxLength: 30 }),
            fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
            async (capacities, committerModes, steps, batched) => {
              const { cell, mirror, ids } = await newCell(store.kv, capacities);
              const ids2 = claimIdFactory();
              const committers = committerModes.map((m, i) => ({
                ...m,
                batched: batched[i] === true,
                committer: cell.committer({ latest: () => mirror.snapshot() }),
                name: `s${i}`,
                plan: undefined as PrivateCell | undefined,
              }));
              const inFlight: Promise<void>[] = [];
              try {
                for (const s of steps) {
                  if (s.kind === 'plan') {
                    const c = committers[s.who]!;
                    const pc = new PrivateCell(mirror.snapshot(), c.name, ids2);
                    for (const p of s.claims) {
                      const m = ids[p.machine % ids.length]!;
                      pc.claim(m, { taskId: tid(p.task), resources: { cpuMillis: p.cpu, memoryBytes: 1024 }, priority: 0 });
                    }
                    c.plan = pc.deltas.length > 0 ? pc : undefined;
                  } else if (s.kind === 'commit') {
                    const c = committers[s.who]!;
                    const pc = c.plan;
                    if (pc === undefined) continue;
                    c.plan = undefined;
                    inFlight.push(commitPlan(c.committer, pc, c.conflict, c.transaction, c.batched).then(() => undefined));
                  } else if (s.kind === 'end-task') {
                    const t = await cell.getTask(tid(s.task));
                    if (t !== undefined && !isTerminal(t.state)) await cell.updateTask(t.id, t.claimId, { state: s.state });
                  } else {
                    await Promise.all(inFlight.splice(0));
                    await mirror.waitForRevision(await store.kv.currentRevision());
                    await checkInvariants(store.kv, cell);
                  }
                }
                await Promise.all(inFlight.splice(0));
                await checkInvariants(store.kv, cell);
              } finally {
                await Promise.allSettled(inFlight);
                await mirror.stop();
              }
            },
          ),
          fcParams(options.numRuns),
        );
      } finally {
        await store.close();
      }
    });

    it('an all-or-nothing commit applies whole or changes nothing at all, and incremental results partition the input', async () => {
      const store = await open();
      try {
        await fc.assert(
          fc.asyncProperty(
            capacitiesOf(5),
            fc.array(claimPlan, { minLength: 0, maxLength: 8 }),
            fc.array(claimPlan, { minLength: 1, maxLength: 8 }),
            modes,
            async (capacities, interference, mine, mode) => {
              const { cell, mirror, pc } = await interfered(store.kv, capacities, interference, mine);
              try {
                if (pc.deltas.length === 0) return;
                const before = await readCell(store.kv, cell);
                const revision = await store.kv.currentRevision();
                const result = await cell.committer().commit(pc.transaction(mode.conflict, mode.transaction));
                checkPartition(result, pc.deltas.length, mode.transaction);
                const after = await readCell(store.kv, cell);
                if (result.committed.length === 0) {
                  expect(await store.kv.currentRevision()).toBe(revision);
                  for (const [id, m] of before.machines) expect(after.machines.get(id)?.seq).toBe(m.seq);
                  expect(after.tasks.size).toBe(before.tasks.size);
                } else {
                  for (const d of result.committed) expect(after.tasks.get(d.claim.taskId)?.claimId).toBe(d.claim.id);
                }
                for (const c of result.conflicted) expect(after.tasks.get(c.delta.claim.taskId)?.claimId).not.toBe(c.delta.claim.id);
                await checkInvariants(store.kv, cell);
              } finally {
                await mirror.stop();
              }
            },
          ),
          fcParams(options.numRuns),
        );
      } finally {
        await store.close();
      }
    });

    it('on the same history, every resource-fit conflict is also a sequence-numbers conflict', async () => {
      const store = await open();
      try {
        await fc.assert(
          fc.asyncProperty(
            capacitiesOf(5),
            fc.array(claimPlan, { minLength: 0, maxLength: 8 }),
            fc.array(claimPlan, { minLength: 1, maxLength: 8 }),
            fc.constantFrom<TransactionMode>('incremental', 'all-or-nothing'),
            async (capacities, interference, mine, transactionMode) => {
              // Two cells with the same history; the last commit differs only in its conflict mode.
              const conflicts: Record<ConflictMode, Set<TaskId>> = { 'sequence-numbers': new Set(), 'resource-fit': new Set() };
              for (const mode of ['sequence-numbers', 'resource-fit'] as const) {
                const { cell, mirror, pc } = await interfered(store.kv, capacities, interference, mine);
                try {
                  if (pc.deltas.length === 0) return;
                  const result = await cell.committer().commit(pc.transaction(mode, transactionMode));
                  for (const c of result.conflicted) conflicts[mode].add(c.delta.claim.taskId);
                } finally {
                  await mirror.stop();
                }
              }
              for (const t of conflicts['resource-fit']) expect(conflicts['sequence-numbers'].has(t), `task ${t} conflicts only under resource-fit`).toBe(true);
            },
          ),
          fcParams(options.numRuns),
        );
      } finally {
        await store.close();
      }
    });

    it('a commit of several jobs at once judges every claim as one incremental transaction of them all would, and reports it in its own job', async () => {
      const store = await open();
      try {
        await fc.assert(
          fc.asyncProperty(
            capacitiesOf(5),
            fc.array(claimPlan, { minLength: 0, maxLength: 8 }),
            fc.array(claimPlan, { minLength: 2, maxLength: 10 }),
            fc.constantFrom<ConflictMode>('sequence-numbers', 'resource-fit'),
            async (capacities, interference, mine, conflictMode) => {
              // Two cells with the same history; the last commit is one transaction or one per job.
              const outcome: { committed: Set<TaskId>; conflicted: Set<TaskId> }[] = [];
              for (const batched of [false, true]) {
                const { cell, mirror, pc } = await interfered(store.kv, capacities, interference, mine);
                try {
                  if (pc.deltas.length === 0) return;
                  const committer = cell.committer();
                  const txs = perJob(pc, conflictMode);
                  // The same claims in the same order (job by job), as one transaction or one per job.
                  const results = batched ? await committer.commitMany(txs) : [await committer.commit({ ...pc.transaction(conflictMode, 'incremental'), deltas: txs.flatMap((t) => t.deltas) })];
                  results.forEach((r, i) => checkPartition(r, batched ? txs[i]!.deltas.length : pc.deltas.length, 'incremental'));
                  expect(committer.counters.transactions).toBe(results.length);
                  expect(committer.counters.transactionsFailed).toBe(results.filter((r) => r.conflicted.length > 0).length);
                  const after = await readCell(store.kv, cell);
                  for (const r of results) {
                    for (const d of r.committed) expect(after.tasks.get(d.claim.taskId)?.claimId).toBe(d.claim.id);
                    for (const c of r.conflicted) expect(after.tasks.get(c.delta.claim.taskId)?.claimId).not.toBe(c.delta.claim.id);
                  }
                  outcome.push({
                    committed: new Set(results.flatMap((r) => r.committed.map((d) => d.claim.taskId))),
                    conflicted: new Set(results.flatMap((r) => r.conflicted.map((c) => c.delta.claim.taskId))),
                  });
                  await checkInvariants(store.kv, cell);
                } finally {
                  await mirror.stop();
                }
              }
              expect([...outcome[1]!.committed].sort()).toEqual([...outcome[0]!.committed].sort());
              expect([...outcome[1]!.conflicted].sort()).toEqual([...outcome[0]!.conflicted].sort());
            },
          ),
          fcParams(options.numRuns),
        );
      } finally {
        await store.close();
      }
    });

    it('a multi-job commit refuses an all-or-nothing transaction, mixed bases or mixed conflict modes and writes nothing', async () => {
      const store = await open();
      try {
        const { cell, mirror, pc } = await interfered(store.kv, [2000, 2000], [], [
          { task: 0, machine: 0, cpu: 100 },
          { task: 1, machine: 1, cpu: 100 },
        ]);
        try {
          const [a, b] = perJob(pc, 'resource-fit') as [Transaction, Transaction];
          const revision = await store.kv.currentRevision();
          const committer = cell.committer();
          await expect(committer.commitMany([a, { ...b, transactionMode: 'all-or-nothing' }])).rejects.toThrow(/transactions\[1\]\.transactionMode/);
          await expect(committer.commitMany([a, { ...b, conflictMode: 'sequence-numbers' }])).rejects.toThrow(/transactions\[1\]\.conflictMode/);
          await expect(committer.commitMany([a, { ...b, base: Object.create(b.base) as Transaction["base"] }])).rejects.toThrow(/transactions\[1\]\.base/);
          await expect(committer.commitMany([a, a])).rejects.toThrow(/appears twice/);
          await expect(committer.commitMany([])).rejects.toThrow(/transactions/);
          expect(await store.kv.currentRevision()).toBe(revision);
          expect(committer.counters.transactions).toBe(0);
        } finally {
          await mirror.stop();
        }
      } finally {
        await store.close();
      }
    });
  });
}
