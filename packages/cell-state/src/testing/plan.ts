/**
 * A private cell with the given claims already made: how the contract suites build the
 * transactions they commit. Its own module so that each contract suite can import it without
 * importing another suite.
 */
import type { CellSnapshot } from '../cell-snapshot.js';
import { PrivateCell, claimIdFactory } from '../private-cell.js';
import type { MachineId, TaskId } from '../types.js';

const nextClaim = claimIdFactory();

/**
 * Claims `tasks` (task id → machine, optional CPU in millicores, default 1000, with as many MiB of
 * memory) on a private cell of `snapshot`; throws when the private cell refuses one, since a
 * contract test that meant to plan a fitting claim is wrong if it does not fit.
 */
export function plan(snapshot: CellSnapshot, claims: readonly [TaskId, MachineId, number?][], scheduler = 's1'): PrivateCell {
  const pc = new PrivateCell(snapshot, scheduler, nextClaim);
  for (const [task, m, cpu] of claims) {
    const out = pc.claim(m, { taskId: task, resources: { cpuMillis: cpu ?? 1000, memoryBytes: (cpu ?? 1000) * 1024 ** 2 }, priority: 0 });
    if (out.refused !== undefined) throw new Error(`test plan refused: ${JSON.stringify(out)}`);
  }
  return pc;
}
