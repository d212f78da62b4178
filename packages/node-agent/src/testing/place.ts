/**
 * Placing tasks in tests without a scheduler: claims made on a PrivateCell of the mirror's
 * snapshot and committed like a scheduler would (resource-fit, incremental).
 */
import { claimIdFactory, PrivateCell, type Cell, type CellMirror, type Claim, type CommitResult, type MachineId, type Resources, type TaskId } from '@omega/cell-state';

export interface Placement {
  readonly taskId: TaskId;
  readonly machineId: MachineId;
  readonly resources: Resources;
  readonly priority?: number;
  /** Claims on the same machine to preempt (lower priority). */
  readonly evict?: readonly Claim[];
}

const nextClaimId = claimIdFactory();

/**
 * Commits the placements in one transaction and waits until the mirror shows them. Throws if
 * any claim is refused or conflicts: tests place on machines they know have room.
 */
export async function placeTasks(cell: Cell, mirror: CellMirror, placements: readonly Placement[], scheduler = 'test-scheduler'): Promise<CommitResult> {
  const pc = new PrivateCell(mirror.snapshot(), scheduler, nextClaimId);
  for (const p of placements) {
    const out = pc.claim(p.machineId, { taskId: p.taskId, resources: p.resources, priority: p.priority ?? 0, ...(p.evict === undefined ? {} : { evict: p.evict }) });
    if (out.refused !== undefined) throw new Error(`placement of ${p.taskId} on ${p.machineId} refused: ${JSON.stringify(out)}`);
  }
  const result = await cell.committer().commit(pc.transaction('resource-fit', 'incremental'));
  if (result.conflicted.length > 0) throw new Error(`placement conflicted: ${JSON.stringify(result.conflicted.map((c) => [c.delta.claim.taskId, c.reason]))}`);
  await mirror.waitForRevision(result.revision);
  return result;
}

/** Polls `condition` every 20 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
