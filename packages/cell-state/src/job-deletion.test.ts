import { describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { MemoryKv } from './memory-kv.js';
import { cellWithMachines, withLimits } from './testing/cell-contract.js';
import { finishedJob, placedJob, traces } from './testing/job-deletion-contract.js';
import { keysWritten, replayingKv } from './testing/replaying-kv.js';

describe('Cell.deleteJob through a store that loses replies', () => {
  it('a delete whose reply was lost and which was sent again has one effect', async () => {
    const inner = new MemoryKv();
    const { cell, mirror, ids } = await cellWithMachines(inner, 2);
    const other = await placedJob(cell, mirror, 'other', ids[0]!);
    const done = await finishedJob(cell, mirror, 'done', [ids[0]!, ids[1]!], { requestId: 'req' });
    const before = await inner.currentRevision();
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn' && keysWritten(w.request).length > 0 });
    const replayed = new Cell(kv, cell.keys.cell);

    const result = await replayed.deleteJob(done);
    // The resend found its guards failed: the caller sees the job gone, deleted by its own first send.
    expect(result.outcome).toBe('gone');
    expect(counters.replayed).toBe(1);
    expect(await inner.currentRevision()).toBe(before + 1);
    expect(await traces(cell, done.jobId)).toEqual({ keys: [], claims: [] });
    expect((await traces(cell, other)).claims).toEqual([`${ids[0]}:${other}/0`]);
    await mirror.stop();
  });

  it('a delete split over several transactions, every one sent twice, still has one effect', async () => {
    const inner = new MemoryKv();
    const { cell, mirror, ids } = await cellWithMachines(inner, 3);
    const other = await placedJob(cell, mirror, 'other', ids[2]!);
    const done = await finishedJob(cell, mirror, 'large', [0, 1, 2, 0, 1, 2].map((i) => ids[i]!));
    const { kv } = replayingKv(withLimits(inner, { maxTxnOps: 4, maxRequestBytes: inner.limits.maxRequestBytes }), {
      replay: (w) => w.type === 'txn' && keysWritten(w.request).length > 0,
    });
    const result = await new Cell(kv, cell.keys.cell).deleteJob({ ...done, machines: ids });
    expect(['deleted', 'gone']).toContain(result.outcome);
    expect(await traces(cell, done.jobId)).toEqual({ keys: [], claims: [] });
    expect((await traces(cell, other)).claims).toEqual([`${ids[2]}:${other}/0`]);
    const machine = await cell.getMachine(ids[2]!);
    expect(machine?.claims).toHaveLength(1);
    await mirror.stop();
  });
});
