import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { encodeTask } from './codec.js';
import { MemoryKv } from './memory-kv.js';
import type { CellMirror } from './mirror.js';
import { describeExcess, jobDemand, namespaceUsage, quotaExcess, usageByNamespace } from './quota.js';
import { jobSpec, type JobSpecBuilder } from './testing/builders.js';
import { claimId, jobId, machineId, type JobId, type Task, type TaskState } from './types.js';

const MiB = 1024 ** 2;

/** A cell on a MemoryKv with a started mirror; tasks and statuses are written as records directly. */
async function openCell() {
  const cell = new Cell(new MemoryKv(), 'test');
  const mirror = cell.mirror();
  await mirror.start();
  mirrors.push(mirror);
  const snapshot = async () => {
    const { revision } = await cell.kv.range({ key: cell.keys.root });
    await mirror.waitForRevision(revision);
    return mirror.snapshot();
  };
  const job = async (id: string, spec: JobSpecBuilder) => (await cell.createJob({ id: jobId(id), spec: spec.build() })).job;
  const task = async (job: JobId, index: number, state: TaskState, reason = '') => {
    const t: Omit<Task, 'revision' | 'id'> = {
      jobId: job,
      index,
      attempt: 1,
      claimId: claimId(`c-${job}-${index}`),
      machineId: machineId('m1'),
      scheduler: 's',
      state,
      reason,
      message: '',
      signal: '',
      pid: 0,
      placedAtMs: 1,
      startedAtMs: 0,
      finishedAtMs: 0,
      cpuSeconds: 0,
      peakMemoryBytes: 0,
      resources: { cpuMillis: 100, memoryBytes: MiB },
      priority: 0,
      restarts: 0,
      notBeforeMs: 0,
    };
    await cell.kv.put(cell.keys.task(`${job}/${index}` as Task['id']), encodeTask(t));
  };
  return { cell, snapshot, job, task };
}

const mirrors: CellMirror[] = [];
afterEach(async () => {
  for (const m of mirrors.splice(0)) await m.stop();
});

const spec = (name: string) => jobSpec(name).namespace('a').cpu(100).memory(MiB);

describe('namespaceUsage', () => {
  it('counts every instance of a job never placed, and nothing of other namespaces', async () => {
    const c = await openCell();
    await c.job('web', spec('web').instances(3));
    await c.job('other', jobSpec('other').namespace('b').instances(5));
    expect(namespaceUsage(await c.snapshot(), 'a')).toEqual({ cpuMillis: 300, memoryBytes: 3 * MiB, tasks: 3 });
    expect(namespaceUsage(await c.snapshot(), 'nobody')).toEqual({ cpuMillis: 0, memoryBytes: 0, tasks: 0 });
  });

  it('stops counting a batch task that succeeded or failed for good, keeps counting the live ones', async () => {
    const c = await openCell();
    const job = await c.job('batch', spec('batch').instances(4));
    await c.task(job.id, 0, 'succeeded');
    await c.task(job.id, 1, 'failed');
    await c.task(job.id, 2, 'running');
    expect(namespaceUsage(await c.snapshot(), 'a').tasks).toBe(2);
  });

  it('keeps counting a service task that ended and will be restarted, and a lost one', async () => {
    const c = await openCell();
    const job = await c.job('svc', spec('svc').service().instances(3));
    await c.task(job.id, 0, 'failed');
    await c.task(job.id, 1, 'lost', 'machine-lost');
    await c.task(job.id, 2, 'killed', 'preempted');
    expect(namespaceUsage(await c.snapshot(), 'a').tasks).toBe(3);
  });

  it('counts a killed job only while its tasks still run, and its never-placed tasks not at all', async () => {
    const c = await openCell();
    const job = await c.job('k', spec('k').instances(3));
    await c.task(job.id, 0, 'running');
    await c.cell.setJobDesired(job.id, 'killed');
    expect(namespaceUsage(await c.snapshot(), 'a').tasks).toBe(1);
    await c.task(job.id, 0, 'killed');
    expect(namespaceUsage(await c.snapshot(), 'a').tasks).toBe(0);
  });

  it('counts nothing of a job its scheduler marked ended once none of its tasks is live', async () => {
    const c = await openCell();
    const job = await c.job('done', spec('done').service().instances(2).restart({ kind: 'on-failure', maxRestarts: 1 }));
    await c.task(job.id, 0, 'failed');
    await c.task(job.id, 1, 'failed');
    expect(namespaceUsage(await c.snapshot(), 'a').tasks).toBe(2);
    await c.cell.putJobStatus({ jobId: job.id, state: 'failed', reason: 'x', ruledOut: [], attempts: 1, scheduler: 's', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    expect(namespaceUsage(await c.snapshot(), 'a').tasks).toBe(0);
  });

  it('adds up per namespace in one pass the same as one namespace at a time', async () => {
    const c = await openCell();
    await c.job('x', spec('x').instances(2));
    await c.job('y', jobSpec('y').namespace('b').cpu(250).instances(4));
    const snapshot = await c.snapshot();
    const all = usageByNamespace(snapshot);
    expect(all.get('a')).toEqual(namespaceUsage(snapshot, 'a'));
    expect(all.get('b')).toEqual(namespaceUsage(snapshot, 'b'));
  });
});

describe('quotaExcess', () => {
  const quota = { cpuMillis: 10_000, memoryBytes: 0, tasks: 20 };

  it('names the first resource over its limit, with what was asked, the use and the quota', () => {
    const excess = quotaExcess('a', quota, { cpuMillis: 8000, memoryBytes: 10 ** 12, tasks: 8 }, jobDemand(jobSpec('j').cpu(1000).instances(3).build()));
    expect(excess).toEqual({ namespace: 'a', resource: 'cpu', requested: 3000, used: 8000, quota: 10_000 });
    expect(describeExcess(excess!)).toBe('namespace "a": cpu 3000m requested + 8000m in use exceeds the quota of 10000m');
  });

  it('treats a field of 0 as no limit and allows exactly reaching the quota', () => {
    expect(quotaExcess('a', quota, { cpuMillis: 7000, memoryBytes: 10 ** 15, tasks: 17 }, { cpuMillis: 3000, memoryBytes: 1, tasks: 3 })).toBeUndefined();
    expect(quotaExcess('a', quota, { cpuMillis: 0, memoryBytes: 0, tasks: 20 }, { cpuMillis: 0, memoryBytes: 0, tasks: 1 })).toMatchObject({ resource: 'tasks' });
  });

  it('says a quota is below use without a request', () => {
    const excess = quotaExcess('a', { cpuMillis: 0, memoryBytes: 512 * MiB, tasks: 0 }, { cpuMillis: 1, memoryBytes: 1024 * MiB, tasks: 1 });
    expect(describeExcess(excess!, 'below-use')).toBe('namespace "a": memory quota of 512Mi is below the 1Gi in use');
  });
});
