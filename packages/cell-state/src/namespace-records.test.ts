import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { InvalidRecordError } from './codec.js';
import type { KvStore } from './kv.js';
import { MemoryKv } from './memory-kv.js';
import { createNamespace, readNamespace, setQuota, snapshotNamespace, type SetQuotaOptions } from './namespace-records.js';
import { describeExcess } from './quota.js';
import { jobSpec, mirroredCell, replayingKv, type MirroredCell } from './testing/index.js';
import { jobId } from './types.js';

const opened: MirroredCell[] = [];
afterEach(async () => {
  for (const m of opened.splice(0)) await m.stop();
});

/** A Cell on `kv` with a mirror for its quota checks, and the options it needs. */
async function cellOn(kv: KvStore): Promise<{ cell: Cell; options: SetQuotaOptions }> {
  const mirrored = await mirroredCell(kv, 5);
  opened.push(mirrored);
  return { cell: mirrored.cell, options: { snapshotAtLeast: mirrored.snapshotAtLeast, nowMs: 5 } };
}

const quota = (cpuMillis: number, tasks = 0) => ({ cpuMillis, memoryBytes: 0, tasks });

describe('createNamespace', () => {
  it('creates once and answers an existing namespace as it is, "default" included', async () => {
    const kv = new MemoryKv();
    const { cell } = await cellOn(kv);
    expect(await createNamespace(kv, cell.keys, 'team-a', 7)).toMatchObject({ created: true, namespace: { name: 'team-a', createdAtMs: 7, admissions: 0 } });
    expect(await createNamespace(kv, cell.keys, 'team-a', 9)).toMatchObject({ created: false, namespace: { createdAtMs: 7 } });
    expect(await createNamespace(kv, cell.keys, 'default', 9)).toMatchObject({ created: false, namespace: { name: 'default', revision: 0 } });
    expect((await kv.range({ key: cell.keys.namespace('default') })).kvs).toHaveLength(0);
  });

  it('leaves one record when its write is resent after it applied', async () => {
    const inner = new MemoryKv();
    const { kv } = replayingKv(inner, { replay: (w) => w.type === 'txn' });
    const { cell } = await cellOn(inner);
    expect(await createNamespace(kv, cell.keys, 'team-a', 7)).toMatchObject({ namespace: { name: 'team-a', createdAtMs: 7 } });
    expect((await inner.range({ key: cell.keys.prefix('namespaces'), prefix: true })).kvs).toHaveLength(1);
  });

  it('names the field of a name that is not a DNS label and writes nothing', async () => {
    const kv = new MemoryKv();
    const { cell } = await cellOn(kv);
    await expect(createNamespace(kv, cell.keys, 'Team_A', 1)).rejects.toThrow(/^name: must be a DNS label/);
    expect((await kv.range({ key: cell.keys.prefix('namespaces'), prefix: true })).kvs).toHaveLength(0);
  });
});

describe('setQuota', () => {
  it('refuses a quota below the current use, naming the resource and the use, and writes nothing', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    await cell.submitJob({ id: jobId('j'), spec: jobSpec('j').namespace('a').cpu(500).instances(3).build() }, options);
    const before = await readNamespace(kv, cell.keys, 'a');
    const result = await setQuota(kv, cell.keys, 'a', quota(0, 2), options);
    expect(result.kind).toBe('below-use');
    if (result.kind !== 'below-use') return;
    expect(describeExcess(result.excess, 'below-use')).toBe('namespace "a": tasks quota of 2 is below the 3 in use');
    expect(await readNamespace(kv, cell.keys, 'a')).toEqual(before);
    expect(await setQuota(kv, cell.keys, 'a', quota(1500, 3), options)).toMatchObject({ kind: 'set', used: { cpuMillis: 1500, tasks: 3 }, namespace: { quota: quota(1500, 3) } });
  });

  it('removes the quota when every field is 0', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    await setQuota(kv, cell.keys, 'a', quota(100), options);
    expect((await readNamespace(kv, cell.keys, 'a'))?.quota).toEqual(quota(100));
    await setQuota(kv, cell.keys, 'a', quota(0), options);
    expect((await readNamespace(kv, cell.keys, 'a'))?.quota).toBeUndefined();
  });

  it('answers an unknown namespace as such and names a negative field', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    expect(await setQuota(kv, cell.keys, 'nope', quota(1), options)).toEqual({ kind: 'unknown-namespace', namespace: 'nope' });
    await createNamespace(kv, cell.keys, 'a', 1);
    await expect(setQuota(kv, cell.keys, 'a', { cpuMillis: -1, memoryBytes: 0, tasks: 0 }, options)).rejects.toThrow(InvalidRecordError);
    await expect(setQuota(kv, cell.keys, 'a', { cpuMillis: 0, memoryBytes: 1.5, tasks: 0 }, options)).rejects.toThrow(/^quota\.memoryBytes: must be a whole number/);
    expect((await readNamespace(kv, cell.keys, 'a'))?.quota).toBeUndefined();
  });

  it('puts a quota on "default" by creating its record, after which default submits are guarded by it', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await cell.submitJob({ id: jobId('d1'), spec: jobSpec('d').cpu(600).build() }, options);
    expect(await setQuota(kv, cell.keys, 'default', quota(1000), options)).toMatchObject({ kind: 'set', used: { cpuMillis: 600 } });
    expect(await cell.submitJob({ id: jobId('d2'), spec: jobSpec('d').cpu(600).build() }, options)).toMatchObject({ kind: 'over-quota', excess: { namespace: 'default', resource: 'cpu' } });
    expect(await cell.submitJob({ id: jobId('d3'), spec: jobSpec('d').cpu(400).build() }, options)).toMatchObject({ kind: 'admitted' });
    expect(await readNamespace(kv, cell.keys, 'default')).toMatchObject({ admissions: 1, quota: quota(1000) });
  });

  it('judges again when a submit was admitted between its snapshot and its write', async () => {
    const kv = new MemoryKv();
    const mine = await cellOn(kv);
    const theirs = await cellOn(kv);
    await createNamespace(kv, mine.cell.keys, 'a', 1);
    let interleaved = false;
    const result = await setQuota(kv, mine.cell.keys, 'a', quota(1000), {
      ...mine.options,
      snapshotAtLeast: async (revision) => {
        const stale = await mine.options.snapshotAtLeast(revision);
        if (!interleaved) {
          interleaved = true;
          await theirs.cell.submitJob({ id: jobId('j'), spec: jobSpec('j').namespace('a').cpu(1500).build() }, theirs.options);
        }
        return stale;
      },
    });
    expect(result).toMatchObject({ kind: 'below-use', conflicts: 1, excess: { resource: 'cpu', used: 1500, quota: 1000 } });
    expect((await readNamespace(kv, mine.cell.keys, 'a'))?.quota).toBeUndefined();
  });

  it('shows namespaces through the mirror, "default" without a record too', async () => {
    const kv = new MemoryKv();
    const { cell, options } = await cellOn(kv);
    await createNamespace(kv, cell.keys, 'a', 1);
    await setQuota(kv, cell.keys, 'a', quota(100), options);
    const { revision } = await kv.range({ key: cell.keys.root });
    const snapshot = await options.snapshotAtLeast(revision);
    expect(snapshotNamespace(snapshot, 'a')).toMatchObject({ name: 'a', quota: quota(100) });
    expect(snapshotNamespace(snapshot, 'default')).toMatchObject({ name: 'default', revision: 0 });
    expect(snapshotNamespace(snapshot, 'b')).toBeUndefined();
    expect([...snapshot.namespaces()].map((n) => n.name)).toEqual(['a']);
  });
});
