import { Cell, CellKeys, MemoryKv, jobId, type JobStatus } from '@omega/cell-state';
import { freshCellName } from '@omega/cell-state/testing';
import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { StatusWrites } from './status-writes.js';

const status = (id: string, state: JobStatus['state']): Omit<JobStatus, 'revision'> => ({ jobId: jobId(id), state, reason: '', ruledOut: [], attempts: 1, scheduler: 's', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });

async function setup() {
  const kv = new MemoryKv();
  const name = freshCellName();
  return { kv, cell: new Cell(kv, name), keys: new CellKeys(name) };
}

describe('StatusWrites', () => {
  it('writes the statuses of several jobs asked for in one turn in one request', async () => {
    const { kv, cell, keys } = await setup();
    const writes = new StatusWrites(cell, systemClock);
    const before = kv.counters.roundTrips;
    await Promise.all(['a', 'b', 'c'].map((id) => writes.put(status(id, 'running'))));
    expect(kv.counters.roundTrips - before).toBe(1);
    for (const id of ['a', 'b', 'c']) expect((await kv.range({ key: keys.status(jobId(id)) })).kvs).toHaveLength(1);
  });

  it('writes a job asked for twice in order, the later status last, and releases its owner with the final one', async () => {
    const { kv, cell, keys } = await setup();
    const lease = await kv.grantLease(30);
    expect(await cell.acquireOwnership(jobId('a'), 's', 'batch', lease)).toBe(true);
    const writes = new StatusWrites(cell, systemClock);
    const before = kv.counters.roundTrips;
    await Promise.all([writes.put(status('a', 'running')), writes.put(status('a', 'succeeded'), lease), writes.put(status('b', 'running'))]);
    expect(kv.counters.roundTrips - before).toBe(2);
    const [record] = (await kv.range({ key: keys.status(jobId('a')) })).kvs;
    expect(record).toBeDefined();
    expect((await kv.range({ key: keys.owner(jobId('a')) })).kvs).toHaveLength(0);
    const a = (await kv.range({ key: keys.status(jobId('a')) })).kvs[0];
    const b = (await kv.range({ key: keys.status(jobId('b')) })).kvs[0];
    // The final status went in the second request: a later revision than b's.
    expect(a?.modRevision ?? 0).toBeGreaterThan(b?.modRevision ?? 0);
  });

  it('rejects every put of a request that failed and writes the next ones', async () => {
    const { kv, cell, keys } = await setup();
    const writes = new StatusWrites(cell, systemClock);
    const original = kv.txn.bind(kv);
    let fail = true;
    kv.txn = async (request) => {
      if (fail) {
        fail = false;
        throw new Error('store unavailable');
      }
      return original(request);
    };
    const results = await Promise.allSettled([writes.put(status('a', 'running')), writes.put(status('b', 'running'))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await writes.put(status('a', 'running'));
    expect((await kv.range({ key: keys.status(jobId('a')) })).kvs).toHaveLength(1);
  });
});
