/**
 * The cell contract: commit semantics, mirror and records, run against any KvStore. The same
 * suite runs on MemoryKv (unit) and on a real etcd (integration), so both mean the same thing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../cell.js';
import { InvalidRecordError } from '../codec.js';
import { InvalidTransactionError, TransactionTooLargeError, type ClaimDelta, type Committer } from '../commit.js';
import type { KvStore } from '../kv.js';
import type { CellMirror } from '../mirror.js';
import { PrivateCell, claimIdFactory } from '../private-cell.js';
import { usedResources } from '../resources.js';
import { jobId, machineId, taskId, type ConflictMode, type MachineId, type TaskId, type TransactionMode } from '../types.js';
import { jobSpec, machine } from './builders.js';
import { describeJobDeletion } from './job-deletion-contract.js';
import { plan } from './plan.js';
import { withLimits } from './with-limits.js';

// Still exported from here, where the testing entry has always found them.
export { plan, withLimits };

export interface OpenedStore {
  readonly kv: KvStore;
  close(): Promise<void>;
}

let cellCounter = 0;
/** A fresh cell name per test, so tests sharing one etcd never see each other. */
export function freshCellName(): string {
  return `t${process.pid}-${Date.now().toString(36)}-${cellCounter++}`;
}

/** A cell with `n` machines (4 CPU, 8 GiB each) and a started mirror. */
export async function cellWithMachines(kv: KvStore, n: number, cpu = 4000): Promise<{ cell: Cell; mirror: CellMirror; ids: MachineId[] }> {
  const cell = new Cell(kv, freshCellName());
  const ids: MachineId[] = [];
  for (let i = 0; i < n; i++) {
    const reg = machine(`m${i}`).cpu(cpu).memory('8Gi').attr('rack', `r${i % 2}`).build();
    await cell.registerMachine(reg);
    ids.push(reg.id);
  }
  const mirror = cell.mirror();
  await mirror.start();
  return { cell, mirror, ids };
}

const nextClaim = claimIdFactory();

async function commitPlan(committer: Committer, pc: PrivateCell, c: ConflictMode, t: TransactionMode) {
  return committer.commit(pc.transaction(c, t));
}

const tid = (job: string, i: number): TaskId => taskId(jobId(job), i);

export function describeCellContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`cell contract: ${name}`, () => {
    let store: OpenedStore;
    const mirrors: CellMirror[] = [];
    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      for (const m of mirrors) await m.stop();
      await store.close();
    });
    const setup = async (n: number, cpu?: number) => {
      const s = await cellWithMachines(store.kv, n, cpu);
      mirrors.push(s.mirror);
      return s;
    };

    it('commits claims on several machines and records them on the machines and tasks', async () => {
      const { cell, mirror, ids } = await setup(3);
      const pc = plan(mirror.snapshot(), [
        [tid('a', 0), ids[0]!],
        [tid('a', 1), ids[1]!],
        [tid('a', 2), ids[1]!],
      ]);
      const result = await commitPlan(cell.committer(), pc, 'resource-fit', 'incremental');
      expect(result.committed).toHaveLength(3);
      expect(result.conflicted).toHaveLength(0);
      await mirror.waitForRevision(result.revision);
      const snap = mirror.snapshot();
      expect(snap.machine(ids[1]!)?.claims.map((c) => c.taskId).sort()).toEqual([tid('a', 1), tid('a', 2)]);
      expect(snap.task(tid('a', 0))).toMatchObject({ state: 'placed', machineId: ids[0], attempt: 1, scheduler: 's1' });
      expect(snap.used(ids[1]!)).toEqual({ cpuMillis: 2000, memoryBytes: 2000 * 1024 ** 2 });
    });

    it('under sequence-numbers, a claim on a machine changed since the snapshot conflicts and the others commit', async () => {
      const { cell, mirror, ids } = await setup(2);
      const base = mirror.snapshot();
      const other = await commitPlan(cell.committer(), plan(base, [[tid('x', 0), ids[0]!]], 's2'), 'sequence-numbers', 'incremental');
      expect(other.committed).toHaveLength(1);
      const mine = await commitPlan(cell.committer(), plan(base, [[tid('y', 0), ids[0]!], [tid('y', 1), ids[1]!]]), 'sequence-numbers', 'incremental');
      expect(mine.committed.map((d) => d.claim.taskId)).toEqual([tid('y', 1)]);
      expect(mine.conflicted.map((c) => [c.delta.claim.taskId, c.reason])).toEqual([[tid('y', 0), 'machine-changed']]);
    });

    it('under resource-fit, a claim on a changed machine that still fits commits after a counted spurious retry', async () => {
      const { cell, mirror, ids } = await setup(1);
      const base = mirror.snapshot();
      await commitPlan(cell.committer(), plan(base, [[tid('x', 0), ids[0]!]], 's2'), 'resource-fit', 'incremental');
      const committer = cell.committer();
      const mine = await commitPlan(committer, plan(base, [[tid('y', 0), ids[0]!]]), 'resource-fit', 'incremental');
      expect(mine.committed).toHaveLength(1);
      expect(mine.spuriousRetries).toBe(1);
      expect(committer.counters).toMatchObject({ transactions: 1, transactionsFailed: 0, claimsCommitted: 1, spuriousRetries: 1 });
      const m = await cell.getMachine(ids[0]!);
      expect(m?.claims.map((c) => c.taskId).sort()).toEqual([tid('x', 0), tid('y', 0)]);
    });

    it('under resource-fit, only the claims that no longer fit conflict', async () => {
      const { cell, mirror, ids } = await setup(1);
      const base = mirror.snapshot();
      await commitPlan(cell.committer(), plan(base, [[tid('x', 0), ids[0]!, 3000]], 's2'), 'resource-fit', 'incremental');
      const committer = cell.committer();
      const mine = await commitPlan(committer, plan(base, [[tid('y', 0), ids[0]!, 1000], [tid('y', 1), ids[0]!, 1000]]), 'resource-fit', 'incremental');
      expect(mine.committed.map((d) => d.claim.taskId)).toEqual([tid('y', 0)]);
      expect(mine.conflicted.map((c) => [c.delta.claim.taskId, c.reason])).toEqual([[tid('y', 1), 'no-fit']]);
      expect(committer.counters).toMatchObject({ transactions: 1, transactionsFailed: 1, claimsCommitted: 1, claimsConflicted: 1 });
      const m = await cell.getMachine(ids[0]!);
      expect(usedResources(m!, () => undefined).cpuMillis).toBe(4000);
    });

    it('a failed all-or-nothing commit writes nothing and bumps no sequence number', async () => {
      const { cell, mirror, ids } = await setup(3);
      const base = mirror.snapshot();
      const other = await commitPlan(cell.committer(), plan(base, [[tid('x', 0), ids[2]!, 4000]], 's2'), 'resource-fit', 'incremental');
      await mirror.waitForRevision(other.revision);
      const before = mirror.snapshot();
      const gang = plan(base, [[tid('g', 0), ids[0]!], [tid('g', 1), ids[1]!], [tid('g', 2), ids[2]!]]);
      const result = await commitPlan(cell.committer(), gang, 'resource-fit', 'all-or-nothing');
      expect(result.committed).toHaveLength(0);
      expect(result.conflicted.map((c) => c.reason).sort()).toEqual(['gang', 'gang', 'no-fit']);
      for (const id of ids) expect((await cell.getMachine(id))?.seq).toBe(before.machine(id)?.seq);
      for (let i = 0; i < 3; i++) expect(await cell.getTask(tid('g', i))).toBeUndefined();
    });

    it('an all-or-nothing commit whose machines changed but still fit commits whole', async () => {
      const { cell, mirror, ids } = await setup(2);
      const base = mirror.snapshot();
      await commitPlan(cell.committer(), plan(base, [[tid('x', 0), ids[0]!]], 's2'), 'resource-fit', 'incremental');
      const result = await commitPlan(cell.committer(), plan(base, [[tid('g', 0), ids[0]!], [tid('g', 1), ids[1]!]]), 'resource-fit', 'all-or-nothing');
      expect(result.committed).toHaveLength(2);
      expect(result.spuriousRetries).toBeGreaterThanOrEqual(1);
    });

    it('under sequence-numbers, an all-or-nothing commit fails whole when one machine changed', async () => {
      const { cell, mirror, ids } = await setup(2);
      const base = mirror.snapshot();
      await commitPlan(cell.committer(), plan(base, [[tid('x', 0), ids[0]!]], 's2'), 'resource-fit', 'incremental');
      const result = await commitPlan(cell.committer(), plan(base, [[tid('g', 0), ids[0]!], [tid('g', 1), ids[1]!]]), 'sequence-numbers', 'all-or-nothing');
      expect(result.committed).toHaveLength(0);
      expect(result.conflicted.map((c) => c.reason).sort()).toEqual(['gang', 'machine-changed']);
    });

    it('a commit sent twice (lost reply) places its task once and reports it committed both times', async () => {
      const { cell, mirror, ids } = await setup(2);
      const pc = plan(mirror.snapshot(), [[tid('a', 0), ids[0]!], [tid('a', 1), ids[1]!]]);
      const tx = pc.transaction('resource-fit', 'incremental');
      const first = await cell.committer().commit(tx);
      const again = await cell.committer().commit(tx);
      expect(first.committed).toHaveLength(2);
      expect(again.committed).toHaveLength(2);
      for (const id of ids) expect((await cell.getMachine(id))?.claims).toHaveLength(1);
      const gang = await cell.committer().commit(pc.transaction('sequence-numbers', 'all-or-nothing'));
      expect(gang.committed).toHaveLength(2);
    });

    it('two schedulers placing the same task on different machines: exactly one placement commits', async () => {
      const { cell, mirror, ids } = await setup(2);
      const base = mirror.snapshot();
      const [a, b] = await Promise.all([
        commitPlan(cell.committer(), plan(base, [[tid('t', 0), ids[0]!]], 's1'), 'resource-fit', 'incremental'),
        commitPlan(cell.committer(), plan(base, [[tid('t', 0), ids[1]!]], 's2'), 'resource-fit', 'incremental'),
      ]);
      expect(a.committed.length + b.committed.length).toBe(1);
      expect([...a.conflicted, ...b.conflicted].map((c) => c.reason)).toEqual(['task-changed']);
      const task = await cell.getTask(tid('t', 0));
      const placedOn = [a, b].find((r) => r.committed.length === 1)!.committed[0]!.claim.machineId;
      expect(task?.machineId).toBe(placedOn);
    });

    it('preemption removes the victim claim and kills its task in the same transaction', async () => {
      const { cell, mirror, ids } = await setup(1);
      const low = await commitPlan(cell.committer(), plan(mirror.snapshot(), [[tid('low', 0), ids[0]!, 4000]]), 'resource-fit', 'incremental');
      await mirror.waitForRevision(low.revision);
      const snap = mirror.snapshot();
      const victim = snap.machine(ids[0]!)!.claims[0]!;
      const pc = new PrivateCell(snap, 'svc', nextClaim);
      expect(pc.claim(ids[0]!, { taskId: tid('high', 0), resources: { cpuMillis: 2000, memoryBytes: 1024 }, priority: 10 }).refused).toBe('no-fit');
      expect(pc.claim(ids[0]!, { taskId: tid('high', 0), resources: { cpuMillis: 2000, memoryBytes: 1024 }, priority: 0, evict: [victim] }).refused).toBe('bad-eviction');
      const out = pc.claim(ids[0]!, { taskId: tid('high', 0), resources: { cpuMillis: 2000, memoryBytes: 1024 }, priority: 10, evict: [victim] });
      expect(out.refused).toBeUndefined();
      const result = await cell.committer().commit(pc.transaction('resource-fit', 'incremental'));
      expect(result.committed).toHaveLength(1);
      expect(await cell.getTask(tid('low', 0))).toMatchObject({ state: 'killed', reason: 'preempted' });
      expect((await cell.getMachine(ids[0]!))?.claims.map((c) => c.taskId)).toEqual([tid('high', 0)]);
    });

    it('a claim whose task ended stops counting and is pruned by the next commit on its machine', async () => {
      const { cell, mirror, ids } = await setup(1);
      const r = await commitPlan(cell.committer(), plan(mirror.snapshot(), [[tid('done', 0), ids[0]!, 4000]]), 'resource-fit', 'incremental');
      const claim = r.committed[0]!.claim;
      expect(await cell.updateTask(tid('done', 0), claim.id, { state: 'succeeded', exitCode: 0 })).toBe('updated');
      expect(await cell.updateTask(tid('done', 0), 'someone-else', { state: 'failed' })).toBe('stale');
      const rev = await store.kv.currentRevision();
      await mirror.waitForRevision(rev);
      const snap = mirror.snapshot();
      expect(snap.free(ids[0]!).cpuMillis).toBe(4000);
      await commitPlan(cell.committer(), plan(snap, [[tid('next', 0), ids[0]!, 4000]]), 'sequence-numbers', 'incremental');
      expect((await cell.getMachine(ids[0]!))?.claims.map((c) => c.taskId)).toEqual([tid('next', 0)]);
      expect((await cell.getTask(tid('done', 0)))?.state).toBe('succeeded');
    });

    it('a task that ended is placed again as its next attempt, and its old claim never counts again', async () => {
      const { cell, mirror, ids } = await setup(1);
      const r = await commitPlan(cell.committer(), plan(mirror.snapshot(), [[tid('r', 0), ids[0]!, 3000]]), 'resource-fit', 'incremental');
      await cell.updateTask(tid('r', 0), r.committed[0]!.claim.id, { state: 'failed', exitCode: 1 });
      await mirror.waitForRevision(await store.kv.currentRevision());
      const again = await commitPlan(cell.committer(), plan(mirror.snapshot(), [[tid('r', 0), ids[0]!, 3000]]), 'resource-fit', 'incremental');
      expect(again.committed[0]!.claim.attempt).toBe(2);
      expect(await cell.getTask(tid('r', 0))).toMatchObject({ attempt: 2, restarts: 1, state: 'placed' });
    });

    it("a task's message is final with its reason, and its next attempt starts without one", async () => {
      const { cell, mirror, ids } = await setup(1);
      const id = tid('msg', 0);
      const r = await commitPlan(cell.committer(), plan(mirror.snapshot(), [[id, ids[0]!, 1000]]), 'resource-fit', 'incremental');
      const claim = r.committed[0]!.claim.id;
      expect(await cell.getTask(id)).toMatchObject({ state: 'placed', reason: '', message: '' });
      const why = 'could not start the task: exec /nonexistent/binary: No such file or directory';
      await cell.updateTask(id, claim, { state: 'failed', reason: 'start-failed', message: why, finishedAtMs: 5 });
      // A late report, batched or not, adds how the process ended but neither a reason nor words of its own.
      expect(await cell.updateTasks([{ task: (await cell.getTask(id))!, patch: { state: 'killed', reason: 'job-killed', message: 'stopped by the agent', exitCode: 127 } }])).toEqual(['updated']);
      await cell.updateTask(id, claim, { reason: 'nonzero-exit', message: '' });
      expect(await cell.getTask(id)).toMatchObject({ state: 'failed', reason: 'start-failed', message: why, exitCode: 127 });
      await mirror.waitForRevision(await store.kv.currentRevision());
      await commitPlan(cell.committer(), plan(mirror.snapshot(), [[id, ids[0]!, 1000]]), 'resource-fit', 'incremental');
      expect(await cell.getTask(id)).toMatchObject({ attempt: 2, state: 'placed', reason: '', message: '' });
    });

    it('splits an incremental transaction larger than the server allows and commits all of it', async () => {
      const { cell, mirror, ids } = await setup(1, 1_000_000);
      const limited = withLimits(store.kv, { maxTxnOps: 8, maxRequestBytes: store.kv.limits.maxRequestBytes });
      const many = Array.from({ length: 20 }, (_, i) => [tid('big', i), ids[0]!, 10] as [TaskId, MachineId, number]);
      const committer = new Cell(limited, cell.keys.cell).committer();
      const result = await committer.commit(plan(mirror.snapshot(), many).transaction('resource-fit', 'incremental'));
      expect(result.committed).toHaveLength(20);
      expect(result.roundTrips).toBeGreaterThanOrEqual(3);
      expect((await cell.getMachine(ids[0]!))?.claims).toHaveLength(20);
      await expect(committer.commit(plan(mirror.snapshot(), Array.from({ length: 20 }, (_, i) => [tid('gang', i), ids[0]!, 10] as [TaskId, MachineId, number])).transaction('resource-fit', 'all-or-nothing'))).rejects.toThrow(TransactionTooLargeError);
    });

    it('refuses bad input with an error naming the problem and writes nothing', async () => {
      const { cell, mirror, ids } = await setup(1);
      const committer = cell.committer();
      const snap = mirror.snapshot();
      const revision = await store.kv.currentRevision();
      await expect(committer.commit({ deltas: [], conflictMode: 'resource-fit', transactionMode: 'incremental', base: snap })).rejects.toThrow(/transaction is empty/);
      const good = plan(snap, [[tid('v', 0), ids[0]!]]).transaction('resource-fit', 'incremental');
      const delta = good.deltas[0]!;
      const withClaim = (claim: Partial<ClaimDelta['claim']>) => ({ ...good, deltas: [{ ...delta, claim: { ...delta.claim, ...claim } }] });
      await expect(committer.commit(withClaim({ resources: { cpuMillis: -1, memoryBytes: 1 } }))).rejects.toThrow(/^deltas\[0\]\.claim\.resources\.cpuMillis: must be >= 0/);
      await expect(committer.commit(withClaim({ resources: { cpuMillis: 0, memoryBytes: 0 } }))).rejects.toThrow(/^deltas\[0\]\.claim\.resources: must ask for some/);
      const again = plan(snap, [[tid('v', 0), ids[0]!]]).transaction('resource-fit', 'incremental');
      await expect(committer.commitMany([good, again])).rejects.toThrow(/^transactions\[1\]\.deltas\[0\]\.claim\.taskId: task v\/0 appears twice/);
      await expect(committer.commit(withClaim({ resources: { cpuMillis: 0.5, memoryBytes: 1 } }))).rejects.toThrow(/cpuMillis: must be an integer/);
      await expect(committer.commit(withClaim({ machineId: machineId('nowhere') }))).rejects.toThrow(InvalidTransactionError);
      await expect(committer.commit(withClaim({ machineId: machineId('nowhere') }))).rejects.toThrow(/unknown machine "nowhere"/);
      await expect(committer.commit({ ...good, conflictMode: 'optimistic' as ConflictMode })).rejects.toThrow(/conflictMode: must be one of/);
      await expect(cell.registerMachine({ id: machineId('huge'), capacity: { cpuMillis: 1, memoryBytes: 1 }, attributes: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`a${i}`, 'x'.repeat(250)])) })).rejects.toThrow(InvalidRecordError);
      await expect(cell.registerMachine({ id: machineId('../etc'), capacity: { cpuMillis: 1, memoryBytes: 1 } })).rejects.toThrow(/machine.id/);
      await expect(cell.registerMachine({ id: machineId('neg'), capacity: { cpuMillis: -5, memoryBytes: 1 } })).rejects.toThrow(/machine.capacity.cpuMillis/);
      await expect(cell.createJob({ id: jobId('j1'), spec: { ...jobSpec('Bad_Name').build() } })).rejects.toThrow(/job.name: must be a DNS label/);
      expect(await store.kv.currentRevision()).toBe(revision);
    });

    it('creates a job once per request id and refuses a second job with the same id', async () => {
      const { cell } = await setup(0);
      const spec = jobSpec('hello').instances(2).build();
      const first = await cell.createJob({ id: jobId('j-1'), spec, requestId: 'req-1' });
      const again = await cell.createJob({ id: jobId('j-2'), spec, requestId: 'req-1' });
      expect(first.created).toBe(true);
      expect(again).toMatchObject({ created: false, job: { id: 'j-1' } });
      expect(await cell.getJob(jobId('j-2'))).toBeUndefined();
      await expect(cell.createJob({ id: jobId('j-1'), spec })).rejects.toThrow(/already exists/);
      expect((await cell.setJobDesired(jobId('j-1'), 'killed'))?.desired).toBe('killed');
      expect((await cell.getJob(jobId('j-1')))?.spec).toEqual(spec);
    });

    it('a machine re-registering keeps its claims; a heartbeat key disappears when its lease is revoked', async () => {
      const { cell, mirror, ids } = await setup(1);
      await commitPlan(cell.committer(), plan(mirror.snapshot(), [[tid('keep', 0), ids[0]!]]), 'resource-fit', 'incremental');
      const again = await cell.registerMachine(machine('m0').cpu(8000).memory('8Gi').build());
      expect(again.claims).toHaveLength(1);
      expect(again.capacity.cpuMillis).toBe(8000);
      const unsched = await cell.setSchedulable(ids[0]!, false, 'draining');
      expect(unsched).toMatchObject({ schedulable: false, unschedulableReason: 'draining' });
      expect(unsched.claims).toHaveLength(1);
      const hb = await cell.startHeartbeat(ids[0]!, { ttlSeconds: 5, agent: 'test' });
      await mirror.waitForRevision(await store.kv.currentRevision());
      expect(mirror.snapshot().alive(ids[0]!)).toMatchObject({ agent: 'test', lease: hb.lease.id });
      await hb.stop();
      await mirror.waitForRevision(await store.kv.currentRevision());
      expect(mirror.snapshot().alive(ids[0]!)).toBeUndefined();
      const pc = new PrivateCell(mirror.snapshot(), 's', nextClaim);
      expect(pc.claim(ids[0]!, { taskId: tid('u', 0), resources: { cpuMillis: 1, memoryBytes: 1 }, priority: 0 }).refused).toBe('unschedulable');
    });

    it('a cordon stops new claims, survives the agent re-registering, and lifts with uncordon', async () => {
      const { cell, mirror, ids } = await setup(2);
      const before = mirror.snapshot();
      const cordoned = await cell.cordonMachine(ids[0]!, { reason: 'disk swap' });
      expect(cordoned.cordon).toMatchObject({ reason: 'disk swap', drainDeadlineMs: 0 });
      // A plan made before the cordon conflicts at commit: the commit checks the record as it is now.
      const stale = await commitPlan(cell.committer(), plan(before, [[tid('late', 0), ids[0]!], [tid('late', 1), ids[1]!]]), 'resource-fit', 'incremental');
      expect(stale.conflicted.map((c) => c.reason)).toEqual(['machine-unschedulable']);
      expect(stale.committed.map((d) => d.claim.machineId)).toEqual([ids[1]]);
      const again = await cell.registerMachine(machine('m0').cpu(4000).memory('8Gi').build());
      expect(again.cordon?.reason).toBe('disk swap');
      const drained = await cell.cordonMachine(ids[0]!, { reason: 'retire', drainDeadlineMs: 5_000 });
      expect(drained.cordon).toEqual({ reason: 'retire', sinceMs: cordoned.cordon?.sinceMs, drainDeadlineMs: 5_000 });
      await mirror.waitForRevision(drained.seq);
      expect(new PrivateCell(mirror.snapshot(), 's', nextClaim).claim(ids[0]!, { taskId: tid('u', 0), resources: { cpuMillis: 1, memoryBytes: 1 }, priority: 0 }).refused).toBe('unschedulable');
      const lifted = await cell.uncordonMachine(ids[0]!);
      expect(lifted.cordon).toBeUndefined();
      expect((await cell.uncordonMachine(ids[0]!)).seq).toBe(lifted.seq);
      await expect(cell.cordonMachine(machineId('nowhere'), { reason: '' })).rejects.toThrow(/machineId: unknown machine "nowhere"/);
    });

    it('batched task updates apply where the caller was current and fall back to a fresh read elsewhere', async () => {
      const { cell, mirror, ids } = await setup(1);
      const r = await commitPlan(cell.committer(), plan(mirror.snapshot(), [[tid('b', 0), ids[0]!], [tid('b', 1), ids[0]!], [tid('b', 2), ids[0]!]]), 'resource-fit', 'incremental');
      await mirror.waitForRevision(r.revision);
      const snap = mirror.snapshot();
      const [t0, t1, t2] = [0, 1, 2].map((i) => snap.task(tid('b', i))!);
      // Someone else moves task 1 on (it ends) before the batch lands.
      await cell.updateTask(t1!.id, t1!.claimId, { state: 'failed', exitCode: 2 });
      const outcomes = await cell.updateTasks([
        { task: t0!, patch: { state: 'running', pid: 42 } },
        { task: t1!, patch: { state: 'running', pid: 43 } },
        { task: t2!, patch: { state: 'succeeded', exitCode: 0 } },
      ]);
      expect(outcomes).toEqual(['updated', 'updated', 'updated']);
      expect(await cell.getTask(t0!.id)).toMatchObject({ state: 'running', pid: 42 });
      expect(await cell.getTask(t1!.id)).toMatchObject({ state: 'failed', exitCode: 2, pid: 43 });
      // A terminal record keeps its state, reason and first reported outcome.
      await cell.updateTask(t1!.id, t1!.claimId, { state: 'succeeded', reason: 'nonzero-exit', signal: 'SIGKILL', exitCode: 0 });
      expect(await cell.getTask(t1!.id)).toMatchObject({ state: 'failed', reason: '', signal: '', exitCode: 2 });
      // A task killed by the scheduler still gets how its process ended from the agent, once.
      await cell.updateTask(t0!.id, t0!.claimId, { state: 'killed', reason: 'job-killed' });
      await cell.updateTask(t0!.id, t0!.claimId, { signal: 'SIGTERM', finishedAtMs: 5 });
      await cell.updateTask(t0!.id, t0!.claimId, { signal: 'SIGKILL', finishedAtMs: 9 });
      expect(await cell.getTask(t0!.id)).toMatchObject({ state: 'killed', reason: 'job-killed', signal: 'SIGTERM', finishedAtMs: 5 });
      expect(await cell.getTask(t2!.id)).toMatchObject({ state: 'succeeded', exitCode: 0 });
    });

    it('ownership is taken once and released only by its holder', async () => {
      const { cell, mirror } = await setup(0);
      const l1 = await store.kv.grantLease(10, { autoKeepAlive: true });
      const l2 = await store.kv.grantLease(10, { autoKeepAlive: true });
      expect(await cell.acquireOwnership(jobId('j'), 'b1', 'batch', l1)).toBe(true);
      expect(await cell.acquireOwnership(jobId('j'), 'b2', 'batch', l2)).toBe(false);
      await cell.releaseOwnership(jobId('j'), l2);
      await mirror.waitForRevision(await store.kv.currentRevision());
      expect(mirror.snapshot().owner(jobId('j'))?.scheduler).toBe('b1');
      await l1.revoke();
      expect(await cell.acquireOwnership(jobId('j'), 'b2', 'batch', l2)).toBe(true);
      await l2.revoke();
    });

    it('takes several jobs in one call, each on its own: one held by another instance stays theirs, a repeat by the holder counts as taken', async () => {
      const { cell, mirror } = await setup(0);
      const l1 = await store.kv.grantLease(10, { autoKeepAlive: true });
      const l2 = await store.kv.grantLease(10, { autoKeepAlive: true });
      expect(await cell.acquireOwnership(jobId('theirs'), 'b2', 'batch', l2)).toBe(true);
      const ids = [jobId('a'), jobId('theirs'), jobId('b')];
      expect(await cell.acquireOwnerships(ids, 'b1', 'batch', l1)).toEqual([true, false, true]);
      expect(await cell.acquireOwnerships(ids, 'b1', 'batch', l1)).toEqual([true, false, true]);
      // More jobs than one transaction takes.
      const many = Array.from({ length: 70 }, (_, i) => jobId(`m${i}`));
      expect((await cell.acquireOwnerships(many, 'b1', 'batch', l1)).every((taken) => taken)).toBe(true);
      await mirror.waitForRevision(await store.kv.currentRevision());
      const snapshot = mirror.snapshot();
      expect([snapshot.owner(jobId('a'))?.scheduler, snapshot.owner(jobId('theirs'))?.scheduler, snapshot.owner(jobId('m69'))?.scheduler]).toEqual(['b1', 'b2', 'b1']);
      await cell.releaseOwnership(jobId('a'), l1);
      await cell.releaseOwnership(jobId('theirs'), l1);
      await mirror.waitForRevision(await store.kv.currentRevision());
      expect(mirror.snapshot().owner(jobId('a'))).toBeUndefined();
      expect(mirror.snapshot().owner(jobId('theirs'))?.scheduler).toBe('b2');
      await l1.revoke();
      await l2.revoke();
    });

    describeJobDeletion(() => store.kv, setup);
  });
}
