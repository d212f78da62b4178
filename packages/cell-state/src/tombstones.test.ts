import { describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { CellStateMaps, TOMBSTONE_REVISIONS } from './cell-snapshot.js';
import { encodeAlive } from './codec.js';
import { CellKeys } from './keys.js';
import { MemoryKv } from './memory-kv.js';
import { machineId } from './types.js';
import { freshCellName } from './testing/cell-contract.js';

const alive = encodeAlive({ agent: 'a', startedAtMs: 1, logAddress: '' });

function kvAt(key: string, revision: number, value = alive) {
  return { key, value, createRevision: revision, modRevision: revision, version: 1, lease: '0' };
}

describe('tombstones of deleted keys', () => {
  it('still ignore a replayed put of a deleted key while it is recent, and are forgotten once the state is far past it', () => {
    const keys = new CellKeys('tomb');
    const state = new CellStateMaps(keys);
    const key = keys.alive(machineId('m1'));
    expect(state.apply('put', kvAt(key, 5))).toBe(true);
    expect(state.apply('delete', kvAt(key, 6, new Uint8Array()))).toBe(true);
    state.advance(6);
    expect(state.apply('put', kvAt(key, 5))).toBe(false);
    expect(state.tombstoneCount).toBe(1);
    state.advance(6 + TOMBSTONE_REVISIONS);
    expect(state.tombstoneCount).toBe(0);
    // A key written again after its delete keeps its own revision, not the tombstone's.
    expect(state.apply('put', kvAt(key, 7 + TOMBSTONE_REVISIONS))).toBe(true);
    expect(state.holds('alive', 'm1')).toBe(true);
  });

  it('keep a mirror that follows a cell creating and deleting keys for a long time at a bounded size', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const mirror = cell.mirror();
    await mirror.start();
    try {
      const rounds = TOMBSTONE_REVISIONS; // two revisions a round: twice the window
      for (let i = 0; i < rounds; i++) {
        const key = cell.keys.alive(machineId(`m${i}`));
        await kv.put(key, alive);
        await kv.delete(key);
      }
      await mirror.waitForRevision(await kv.currentRevision());
      expect(mirror.snapshot().alive(machineId(`m${rounds - 1}`))).toBeUndefined();
      // Everything deleted more than the window ago is forgotten: about half the deletions remain.
      expect(mirror.tombstoneCount).toBeLessThanOrEqual(TOMBSTONE_REVISIONS / 2 + 1);
      expect(mirror.tombstoneCount).toBeGreaterThan(0);
    } finally {
      await mirror.stop();
    }
  });
});
