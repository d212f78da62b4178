/**
 * The contract of `Cell.deleteJob`, run by the cell contract on every store: a finished job goes
 * with its tasks, status, owner and request records, its claims leave every machine, and nothing
 * happens when the job is not the finished job the caller saw.
 */
import { expect, it } from 'vitest';
import { Cell } from '../cell.js';
import type { KvLimits, KvStore } from '../kv.js';
import type { CellMirror } from '../mirror.js';
import { jobId, taskId, type JobId, type MachineId, type TaskId } from '../types.js';
import { jobSpec } from './builders.js';
import { plan } from './plan.js';
import { withLimits } from './with-limits.js';

type Setup = (n: number) => Promise<{ cell: Cell; mirror: CellMirror; ids: MachineId[] }>;

/** What a finished job's deletion needs: the revisions its caller saw. */
export interface FinishedJob {
  readonly jobId: JobId;
  readonly jobRevision: number;
  readonly statusRevision: number;
}

/**
 * Submits a job of `placement.length` tasks, commits task i on machine `placement[i]`, ends every
 * task `succeeded` (or as `state` says), owns it under `lease` if given, and writes its final
 * status. Returns the revisions a janitor would have seen.
 */
export async function finishedJob(
  cell: Cell,
  mirror: CellMirror,
  name: string,
  placement: readonly MachineId[],
  options: { requestId?: string; state?: 'succeeded' | 'failed' | 'killed' } = {},
): Promise<FinishedJob> {
  const id = jobId(name);
  const { job } = await cell.createJob({ id, spec: jobSpec(name).instances(placement.length).build(), ...(options.requestId === undefined ? {} : { requestId: options.requestId }) });
  const result = await cell.committer().commit(plan(mirror.snapshot(), placement.map((m, i): [TaskId, MachineId, number] => [taskId(id, i), m, 100]), 's1').transaction('resource-fit', 'incremental'));
  expect(result.committed).toHaveLength(placement.length);
  for (const d of result.committed) expect(await cell.updateTask(d.claim.taskId, d.claim.id, { state: options.state ?? 'succeeded', finishedAtMs: 1 })).toBe('updated');
  await cell.putJobStatus({ jobId: id, state: options.state ?? 'succeeded', reason: '', ruledOut: [], attempts: 1, scheduler: 's1', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
  const status = (await cell.kv.range({ key: cell.keys.status(id) })).kvs[0];
  await mirror.waitForRevision(await cell.kv.currentRevision());
  return { jobId: id, jobRevision: job.revision, statusRevision: status?.modRevision ?? 0 };
}

/** A job with one task placed on `machine` and not ended: its claim is live. */
export async function placedJob(cell: Cell, mirror: CellMirror, name: string, machine: MachineId): Promise<JobId> {
  const id = jobId(name);
  await cell.createJob({ id, spec: jobSpec(name).build() });
  const result = await cell.committer().commit(plan(mirror.snapshot(), [[taskId(id, 0), machine, 100]], 's1').transaction('resource-fit', 'incremental'));
  expect(result.committed).toHaveLength(1);
  await mirror.waitForRevision(result.revision);
  return id;
}

/** Every key of the cell named after `job` (jobs, tasks, status, owners), and claims of it on machines. */
export async function traces(cell: Cell, job: JobId): Promise<{ keys: string[]; claims: string[] }> {
  const { kvs } = await cell.kv.range({ key: cell.keys.root, prefix: true });
  const keys = kvs.map((kv) => kv.key).filter((k) => !k.startsWith(cell.keys.prefix('requests')) && (k.endsWith(`/${job}`) || k.includes(`/${job}/`)));
  const claims: string[] = [];
  for (const kv of kvs) {
    if (!kv.key.startsWith(cell.keys.prefix('machines'))) continue;
    const m = await cell.getMachine(kv.key.slice(cell.keys.prefix('machines').length) as MachineId);
    for (const c of m?.claims ?? []) if (c.taskId.startsWith(`${job}/`)) claims.push(`${m?.id}:${c.taskId}`);
  }
  return { keys, claims };
}

/** The deleteJob cases; `store` is the store under test, `setup` makes a cell of n machines. */
export function describeJobDeletion(store: () => KvStore, setup: Setup): void {
  it('deleteJob removes a finished job with its tasks, status and owner record, and its claims from every machine', async () => {
    const { cell, mirror, ids } = await setup(2);
    const other = await placedJob(cell, mirror, 'other', ids[1]!);
    const done = await finishedJob(cell, mirror, 'done', [ids[0]!, ids[1]!, ids[1]!], { requestId: 'req-done' });
    const lease = await store().grantLease(10, { autoKeepAlive: true });
    expect(await cell.acquireOwnership(done.jobId, 's1', 'batch', lease)).toBe(true);
    expect((await traces(cell, done.jobId)).claims).toHaveLength(3);

    const result = await cell.deleteJob(done);
    expect(result).toEqual({ outcome: 'deleted', tasks: 3, claimsPruned: 3 });
    expect(await traces(cell, done.jobId)).toEqual({ keys: [], claims: [] });
    // The request record stays until the request retention: a resent submit learns the job is gone.
    expect((await cell.kv.range({ key: cell.keys.request('req-done') })).kvs).toHaveLength(1);
    expect(await cell.getJob(done.jobId)).toBeUndefined();
    // The other job on the same machine keeps everything.
    expect((await traces(cell, other)).claims).toEqual([`${ids[1]}:${other}/0`]);
    expect(await cell.getJob(other)).toBeDefined();
    await lease.revoke();
  });

  it('deleteJob a second time answers gone and writes nothing', async () => {
    const { cell, mirror, ids } = await setup(1);
    const done = await finishedJob(cell, mirror, 'twice', [ids[0]!]);
    expect((await cell.deleteJob(done)).outcome).toBe('deleted');
    const revision = await cell.kv.currentRevision();
    expect(await cell.deleteJob(done)).toEqual({ outcome: 'gone', tasks: 0, claimsPruned: 0 });
    expect(await cell.kv.currentRevision()).toBe(revision);
  });

  it('deleteJob changes nothing when the status or the job moved on since the caller saw them', async () => {
    const { cell, mirror, ids } = await setup(1);
    const done = await finishedJob(cell, mirror, 'moved', [ids[0]!]);
    await cell.putJobStatus({ jobId: done.jobId, state: 'succeeded', reason: 'rewritten', ruledOut: [], attempts: 1, scheduler: 's2', updatedAtMs: 2, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const revision = await cell.kv.currentRevision();
    expect((await cell.deleteJob(done)).outcome).toBe('changed');
    expect((await cell.deleteJob({ ...done, jobRevision: done.jobRevision + 1 })).outcome).toBe('changed');
    expect(await cell.kv.currentRevision()).toBe(revision);
    expect((await traces(cell, done.jobId)).claims).toHaveLength(1);
  });

  it('deleteJob refuses a job whose status is not finished, or with a task not yet ended, and writes nothing', async () => {
    const { cell, mirror, ids } = await setup(1);
    const done = await finishedJob(cell, mirror, 'busy', [ids[0]!]);
    await cell.putJobStatus({ jobId: done.jobId, state: 'running', reason: '', ruledOut: [], attempts: 1, scheduler: 's1', updatedAtMs: 2, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const running = (await cell.kv.range({ key: cell.keys.status(done.jobId) })).kvs[0]!;
    const before = await cell.kv.currentRevision();
    expect((await cell.deleteJob({ ...done, statusRevision: running.modRevision })).outcome).toBe('changed');

    // A status that says finished while a task is still placed (a stale writer) keeps the job too.
    const id = jobId('placed');
    const { job } = await cell.createJob({ id, spec: jobSpec('placed').build() });
    await cell.committer().commit(plan(mirror.snapshot(), [[taskId(id, 0), ids[0]!, 100]]).transaction('resource-fit', 'incremental'));
    await cell.putJobStatus({ jobId: id, state: 'succeeded', reason: '', ruledOut: [], attempts: 1, scheduler: 's1', updatedAtMs: 2, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const status = (await cell.kv.range({ key: cell.keys.status(id) })).kvs[0]!;
    const revision = await cell.kv.currentRevision();
    expect((await cell.deleteJob({ jobId: id, jobRevision: job.revision, statusRevision: status.modRevision })).outcome).toBe('active');
    expect(await cell.kv.currentRevision()).toBe(revision);
    expect(before).toBeLessThan(revision);
    expect(await cell.getJob(done.jobId)).toBeDefined();
    expect((await traces(cell, id)).claims).toHaveLength(1);
  });

  it('deleteJob prunes a claim an earlier attempt left on another machine when the caller names that machine', async () => {
    const { cell, mirror, ids } = await setup(2);
    const id = jobId('retried');
    const { job } = await cell.createJob({ id, spec: jobSpec('retried').build() });
    const first = await cell.committer().commit(plan(mirror.snapshot(), [[taskId(id, 0), ids[0]!, 100]]).transaction('resource-fit', 'incremental'));
    await cell.updateTask(taskId(id, 0), first.committed[0]!.claim.id, { state: 'failed' });
    await mirror.waitForRevision(await cell.kv.currentRevision());
    const second = await cell.committer().commit(plan(mirror.snapshot(), [[taskId(id, 0), ids[1]!, 100]]).transaction('resource-fit', 'incremental'));
    await cell.updateTask(taskId(id, 0), second.committed[0]!.claim.id, { state: 'succeeded' });
    await cell.putJobStatus({ jobId: id, state: 'succeeded', reason: '', ruledOut: [], attempts: 2, scheduler: 's1', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const status = (await cell.kv.range({ key: cell.keys.status(id) })).kvs[0]!;
    expect((await traces(cell, id)).claims.sort()).toEqual([`${ids[0]}:${id}/0`, `${ids[1]}:${id}/0`]);

    const result = await cell.deleteJob({ jobId: id, jobRevision: job.revision, statusRevision: status.modRevision, machines: [ids[0]!] });
    expect(result).toMatchObject({ outcome: 'deleted', claimsPruned: 2 });
    expect(await traces(cell, id)).toEqual({ keys: [], claims: [] });
  });

  it('deleteJob of a job too large for one transaction prunes first, then deletes in chunks, leaving nothing', async () => {
    const { cell, mirror, ids } = await setup(3);
    const placement = [0, 1, 2, 0, 1, 2, 0, 1].map((i) => ids[i]!);
    const other = await placedJob(cell, mirror, 'neighbour', ids[2]!);
    const done = await finishedJob(cell, mirror, 'large', placement, { requestId: 'req-large' });
    const limits: KvLimits = { maxTxnOps: 4, maxRequestBytes: cell.kv.limits.maxRequestBytes };
    const small = new Cell(withLimits(cell.kv, limits), cell.keys.cell);
    const result = await small.deleteJob({ ...done, machines: ids });
    expect(result).toEqual({ outcome: 'deleted', tasks: 8, claimsPruned: 8 });
    expect(await traces(cell, done.jobId)).toEqual({ keys: [], claims: [] });
    expect((await traces(cell, other)).claims).toHaveLength(1);
  });
}
