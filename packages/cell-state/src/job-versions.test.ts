import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { InvalidRecordError } from './codec.js';
import { MemoryKv } from './memory-kv.js';
import { createNamespace, setQuota } from './namespace-records.js';
import { describeSpecChange } from './job-versions.js';
import { jobId, machineId, runsCurrentTask, JOB_HISTORY_LIMIT, jobTaskVersion, jobVersion, type JobSpec } from './types.js';
import { jobSpec } from './testing/builders.js';
import { mirroredCell, type MirroredCell } from './testing/mirrored-cell.js';
import { replayingKv } from './testing/replaying-kv.js';
import { cellWithMachines } from './testing/cell-contract.js';
import { finishedJob, traces } from './testing/job-deletion-contract.js';

const id = jobId('web');

function service(instances = 2, command = ['sleep', '100']): JobSpec {
  return jobSpec('web').service().instances(instances).cpu(100).memory('64Mi').command(...command).build();
}

describe('job versions', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  async function submitted(kv = new MemoryKv()): Promise<{ cell: Cell; kv: MemoryKv }> {
    const cell = new Cell(kv, 'test', { now: () => 1_000 });
    await cell.createJob({ id, spec: service() });
    return { cell, kv };
  }

  it('a submitted job is at version 1 and its history lists that version', async () => {
    const { cell } = await submitted();
    const job = await cell.getJob(id);
    expect(jobVersion(job ?? {})).toBe(1);
    const history = await cell.jobHistory(id);
    expect(history.map((v) => [v.version, v.change])).toEqual([[1, 'submitted']]);
  });

  it('an update stores a new version, keeps the old one in the history and says what changed', async () => {
    const { cell } = await submitted();
    const result = await cell.updateJob({ jobId: id, change: { kind: 'spec', spec: service(2, ['sleep', '200']) }, by: 'alice' });
    expect(result.kind).toBe('updated');
    if (result.kind !== 'updated') return;
    expect(jobVersion(result.job)).toBe(2);
    expect(jobTaskVersion(result.job)).toBe(2);
    expect(result.change).toBe('task.command changed');
    const history = await cell.jobHistory(id);
    expect(history.map((v) => [v.version, v.by, v.change])).toEqual([
      [2, 'alice', 'task.command changed'],
      [1, '', 'submitted'],
    ]);
    expect(history[1]?.spec.task.command).toEqual(['sleep', '100']);
  });

  it('a scale changes only the instance count and keeps the task version (no instance is replaced)', async () => {
    const { cell } = await submitted();
    const result = await cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 5 }, by: 'bob' });
    expect(result.kind).toBe('updated');
    if (result.kind !== 'updated') return;
    expect(result.job.spec.instances).toBe(5);
    expect(result.change).toBe('instances 2 -> 5');
    expect(jobTaskVersion(result.job)).toBe(1);
  });

  it('an unchanged spec is a no-op that says so and stores no version', async () => {
    const { cell } = await submitted();
    const result = await cell.updateJob({ jobId: id, change: { kind: 'spec', spec: service() }, by: 'alice' });
    expect(result.kind).toBe('unchanged');
    expect(jobVersion((await cell.getJob(id)) ?? {})).toBe(1);
  });

  it('a change of kind, name or namespace is refused naming the field, and nothing is stored', async () => {
    const { cell } = await submitted();
    const batch = { ...service(), kind: 'batch' as const };
    await expect(cell.updateJob({ jobId: id, change: { kind: 'spec', spec: batch }, by: 'a' })).rejects.toThrow(/job\.kind: cannot change/);
    await expect(cell.updateJob({ jobId: id, change: { kind: 'spec', spec: { ...service(), name: 'other' } }, by: 'a' })).rejects.toThrow(/job\.name: cannot change/);
    await expect(cell.updateJob({ jobId: id, change: { kind: 'spec', spec: { ...service(), namespace: 'team' } }, by: 'a' })).rejects.toThrow(/job\.namespace: cannot change/);
    await expect(cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 0 }, by: 'a' })).rejects.toBeInstanceOf(InvalidRecordError);
    expect(jobVersion((await cell.getJob(id)) ?? {})).toBe(1);
  });

  it('an invalid new spec is refused naming the field', async () => {
    const { cell } = await submitted();
    const bad = { ...service(), update: { maxUnavailable: 1, maxSurge: 1, minHealthyTimeMs: 0, healthyDeadlineMs: 0, autoRollback: false } };
    await expect(cell.updateJob({ jobId: id, change: { kind: 'spec', spec: bad }, by: 'a' })).rejects.toThrow(/job\.update\.maxSurge: must be 0/);
  });

  it('a rollback stores the earlier spec as a new version (the previous one by default)', async () => {
    const { cell } = await submitted();
    await cell.updateJob({ jobId: id, change: { kind: 'spec', spec: service(2, ['v2']) }, by: 'a' });
    await cell.updateJob({ jobId: id, change: { kind: 'spec', spec: service(2, ['v3']) }, by: 'a' });
    const back = await cell.updateJob({ jobId: id, change: { kind: 'rollback' }, by: 'a' });
    expect(back.kind).toBe('updated');
    if (back.kind !== 'updated') return;
    expect(jobVersion(back.job)).toBe(4);
    expect(back.job.spec.task.command).toEqual(['v2']);
    expect(back.change).toBe('rollback to version 2: task.command changed');
    // Instances of version 2 run the spec stored now: a rolling update leaves them alone.
    expect(back.job.sameTaskVersions).toEqual({ from: 2, to: 2 });
    expect(runsCurrentTask(back.job, { version: 2 })).toBe(true);
    expect(runsCurrentTask(back.job, { version: 3 })).toBe(false);
    const first = await cell.updateJob({ jobId: id, change: { kind: 'rollback', toVersion: 1 }, by: 'a' });
    expect(first.kind === 'updated' && first.job.spec.task.command).toEqual(['sleep', '100']);
    const unknown = await cell.updateJob({ jobId: id, change: { kind: 'rollback', toVersion: 42 }, by: 'a' });
    expect(unknown.kind).toBe('unknown-version');
  });

  it('keeps only the last versions in the history', async () => {
    const { cell, kv } = await submitted();
    for (let n = 2; n <= JOB_HISTORY_LIMIT + 5; n++) await cell.updateJob({ jobId: id, change: { kind: 'scale', instances: n + 1 }, by: 'a' });
    const history = await cell.jobHistory(id);
    expect(history.length).toBe(JOB_HISTORY_LIMIT);
    expect(history[0]?.version).toBe(JOB_HISTORY_LIMIT + 5);
    const stored = await kv.range({ key: cell.keys.historyOfJob(id), prefix: true });
    expect(stored.kvs.length).toBe(JOB_HISTORY_LIMIT - 1);
  });

  it('of two updates guarded by the same version, one wins and the other gets a clear conflict', async () => {
    const { cell } = await submitted();
    const [a, b] = await Promise.all([
      cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 3 }, by: 'a', expectedVersion: 1 }),
      cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 4 }, by: 'b', expectedVersion: 1 }),
    ]);
    expect([a.kind, b.kind].sort()).toEqual(['updated', 'version-mismatch']);
    expect(jobVersion((await cell.getJob(id)) ?? {})).toBe(2);
  });

  it('two unguarded updates at once both land, one after the other', async () => {
    const { cell } = await submitted();
    const results = await Promise.all([
      cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 3 }, by: 'a' }),
      cell.updateJob({ jobId: id, change: { kind: 'spec', spec: service(2, ['new']) }, by: 'b' }),
    ]);
    expect(results.map((r) => r.kind)).toEqual(['updated', 'updated']);
    expect(jobVersion((await cell.getJob(id)) ?? {})).toBe(3);
  });

  it('an update whose reply was lost and resent stores one version and answers updated', async () => {
    const inner = new MemoryKv();
    await submitted(inner);
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn' && w.request.compare.length > 0 });
    const cell = new Cell(kv, 'test', { now: () => 2_000 });
    const result = await cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 7 }, by: 'a' });
    expect(counters.replayed).toBeGreaterThan(0);
    expect(result.kind).toBe('updated');
    expect(jobVersion((await cell.getJob(id)) ?? {})).toBe(2);
    expect((await cell.jobHistory(id)).map((v) => v.version)).toEqual([2, 1]);
  });

  it('a job that grows is judged against its namespace quota, one that shrinks is not', async () => {
    const kv = new MemoryKv();
    const mc: MirroredCell = await mirroredCell(kv, 1_000);
    stops.push(() => mc.stop());
    await createNamespace(kv, mc.cell.keys, 'team', 1_000);
    await setQuota(kv, mc.cell.keys, 'team', { cpuMillis: 300, memoryBytes: 0, tasks: 0 }, { snapshotAtLeast: (r) => mc.snapshotAtLeast(r), nowMs: 1_000 });
    const spec = { ...service(2), namespace: 'team' };
    const submitted = await mc.cell.submitJob({ id, spec }, { snapshotAtLeast: (r) => mc.snapshotAtLeast(r) });
    expect(submitted.kind).toBe('admitted');
    const grow = await mc.cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 4 }, by: 'a', snapshotAtLeast: (r) => mc.snapshotAtLeast(r) });
    expect(grow.kind).toBe('over-quota');
    const shrink = await mc.cell.updateJob({ jobId: id, change: { kind: 'scale', instances: 1 }, by: 'a', snapshotAtLeast: (r) => mc.snapshotAtLeast(r) });
    expect(shrink.kind).toBe('updated');
  });

  it('replaces secret env values given with an update, and keeps them (and their names) when none are given', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, 'test', { now: () => 1_000 });
    const sid = jobId('secretive');
    await cell.createJob({ id: sid, spec: { ...service(), name: 'secretive' }, secretEnv: { TOKEN: 'one' } });
    const replaced = await cell.updateJob({ jobId: sid, change: { kind: 'spec', spec: { ...service(), name: 'secretive' }, secretEnv: { TOKEN: 'two' } }, by: 'a' });
    expect(replaced.kind === 'updated' && [replaced.change, replaced.job.spec.task.secretEnvNames]).toEqual(['secret env replaced', ['TOKEN']]);
    expect(await cell.readSecretEnv(sid)).toEqual({ TOKEN: 'two' });
    const kept = await cell.updateJob({ jobId: sid, change: { kind: 'spec', spec: { ...service(), name: 'secretive' } }, by: 'a' });
    expect(kept.kind).toBe('unchanged');
    expect((await cell.getJob(sid))?.spec.task.secretEnvNames).toEqual(['TOKEN']);
  });

  it('deletes the history with the job', async () => {
    const kv = new MemoryKv();
    const { cell, mirror, ids } = await cellWithMachines(kv, 1);
    stops.push(() => mirror.stop());
    const done = await finishedJob(cell, mirror, 'old', [ids[0] ?? machineId('m0')]);
    const updated = await cell.updateJob({ jobId: done.jobId, change: { kind: 'spec', spec: { ...((await cell.getJob(done.jobId))?.spec ?? service()), priority: 5 } }, by: 'a' });
    expect(updated.kind).toBe('updated');
    expect((await kv.range({ key: cell.keys.historyOfJob(done.jobId), prefix: true })).kvs).toHaveLength(1);
    await mirror.waitForRevision(await kv.currentRevision());
    const result = await cell.deleteJob({ ...done, jobRevision: updated.kind === 'updated' ? updated.job.revision : 0 });
    expect(result.outcome).toBe('deleted');
    expect(await traces(cell, done.jobId)).toEqual({ keys: [], claims: [] });
  });

  it('says what changed in one line', () => {
    expect(describeSpecChange(service(2), service(3, ['x']))).toBe('instances 2 -> 3; task.command changed');
    expect(describeSpecChange(service(2), service(2))).toBe('nothing changed');
  });
});
