/**
 * Job versions against a real etcd: two writers updating one job at once through their own
 * clients (as two API servers would), a guarded pair where one wins and the other is told, and
 * the history kept outside what mirrors hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, jobId, jobVersion, startEtcd, type JobSpec, type RunningEtcd } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';

let etcd: RunningEtcd;
const clients: EtcdKv[] = [];
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  for (const kv of clients) await kv.close();
  await etcd?.stop();
});

function cell(): Cell {
  const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  clients.push(kv);
  return new Cell(kv, 'versions');
}

const spec = (command: string, instances = 2): JobSpec => jobSpec('web').service().instances(instances).cpu(100).memory('64Mi').command(command).build();

describe('job versions on etcd', () => {
  it('of two updates guarded by the same version through two clients, exactly one lands', async () => {
    const [a, b] = [cell(), cell()];
    const id = jobId('guarded');
    await a.createJob({ id, spec: spec('v1') });
    const results = await Promise.all([
      a.updateJob({ jobId: id, change: { kind: 'spec', spec: spec('a') }, by: 'a', expectedVersion: 1 }),
      b.updateJob({ jobId: id, change: { kind: 'spec', spec: spec('b') }, by: 'b', expectedVersion: 1 }),
    ]);
    expect(results.map((r) => r.kind).sort()).toEqual(['updated', 'version-mismatch']);
    const job = await a.getJob(id);
    expect(jobVersion(job ?? {})).toBe(2);
    const winner = results.find((r) => r.kind === 'updated');
    expect(job?.spec.task.command).toEqual(winner?.kind === 'updated' ? winner.job.spec.task.command : []);
  });

  it('many unguarded updates at once through several clients all land, each as its own version, in one history', async () => {
    const writers = [cell(), cell(), cell()];
    const id = jobId('busy');
    await writers[0]?.createJob({ id, spec: spec('v1', 1) });
    const results = await Promise.all(writers.flatMap((w, i) => [2, 3].map((n) => w.updateJob({ jobId: id, change: { kind: 'scale', instances: n * 10 + i }, by: `w${i}` }))));
    expect(results.every((r) => r.kind === 'updated')).toBe(true);
    const history = await (writers[0] as Cell).jobHistory(id);
    expect(history.map((v) => v.version)).toEqual([7, 6, 5, 4, 3, 2, 1]);
    // A mirror never holds history records: they are not of any kind it knows.
    const mirror = (writers[0] as Cell).mirror();
    await mirror.start();
    expect(mirror.snapshot().job(id)?.version).toBe(7);
    await mirror.stop();
  });
});
