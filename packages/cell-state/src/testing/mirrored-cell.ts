/**
 * A Cell on a store with a started mirror of it, and the `snapshotAtLeast` that Cell.submitJob
 * and setQuota take (what the API's CellReader gives them in production). `stop()` stops the
 * mirror; call it in afterEach.
 */
import { Cell } from '../cell.js';
import type { CellSnapshot } from '../cell-snapshot.js';
import type { KvStore } from '../kv.js';

export interface MirroredCell {
  readonly cell: Cell;
  snapshotAtLeast(revision: number): Promise<CellSnapshot>;
  stop(): Promise<void>;
}

export async function mirroredCell(kv: KvStore, nowMs: number): Promise<MirroredCell> {
  const cell = new Cell(kv, 'test', { now: () => nowMs });
  const mirror = cell.mirror();
  await mirror.start();
  return {
    cell,
    snapshotAtLeast: async (revision) => {
      await mirror.waitForRevision(revision, 5_000);
      return mirror.snapshot();
    },
    stop: () => mirror.stop(),
  };
}
