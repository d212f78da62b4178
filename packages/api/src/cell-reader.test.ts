import { Cell, MemoryKv } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { CellReader } from './cell-reader.js';

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

async function reader(kv: MemoryKv): Promise<CellReader> {
  const cell = new Cell(kv, 'test');
  const mirror = cell.mirror();
  await mirror.start();
  stop = () => mirror.stop();
  // A budget far beyond the marker's wait, so only a reader that never catches up fails.
  return new CellReader(cell, mirror, { storeTimeoutMs: 2_000 });
}

describe('CellReader.fresh', () => {
  it('answers on an idle cell after writes outside the cell prefix moved etcd revision past the mirror', async () => {
    const kv = new MemoryKv();
    const cells = await reader(kv);
    const before = cells.mirror.revision;
    // A token write and another cell's writes: the cell's watch never delivers them.
    await kv.put('/omega-auth/test/tokens/ci', new Uint8Array([1]));
    await kv.put('/omega/other/jobs/x', new Uint8Array([1]));
    const snapshot = await cells.fresh();
    expect(snapshot.revision).toBeGreaterThan(before + 1);
    // The marker is one key of no kind: it is written once however often it is needed.
    await kv.put('/omega/other/jobs/y', new Uint8Array([1]));
    await cells.fresh();
    expect((await kv.range({ key: '/omega/test/', prefix: true })).kvs.map((entry) => entry.key)).toEqual(['/omega/test/sync']);
  });

  it('does not write the marker when the mirror keeps up by itself', async () => {
    const kv = new MemoryKv();
    const cells = await reader(kv);
    await kv.put('/omega/test/jobs/a', new Uint8Array([1]));
    await cells.fresh();
    expect((await kv.range({ key: '/omega/test/sync' })).kvs).toEqual([]);
  });
});
