/**
 * Where a job's instances live right now: the per-attempt index behind `max-per-machine`,
 * spread and anti-affinity. Built once per placement call, then kept current by the policy as it
 * claims, so no filter ever scans claims per machine per task.
 */
import { isTerminal, type CellSnapshot, type ClaimId, type JobId, type MachineId, type PrivateCell, type TaskId } from '@omega/cell-state';

/** Whether `task` is one of `job`'s tasks (`<job>/<index>`, job ids contain no `/`). */
export function isTaskOf(task: TaskId, job: JobId): boolean {
  return task.length > job.length + 1 && task.charCodeAt(job.length) === 47 /* '/' */ && task.startsWith(job) && task.indexOf('/', job.length + 1) === -1;
}

/**
 * Live instances of `job` per machine: the job's claims the snapshot counts as live
 * (`snapshot.isLive`), plus the claims `cell` already holds for the job, minus any of them the
 * cell evicts. Machines without instances are absent.
 *
 * Found through the job's task records rather than by scanning every machine's claims: a live
 * claim always has its task record (the commit writes both in one transaction), and the record
 * names the claim and machine, so this costs O(tasks of the job), not O(claims in the cell).
 */
export function liveInstances(snapshot: CellSnapshot, cell: PrivateCell, job: JobId): Map<MachineId, number> {
  const counts = new Map<MachineId, number>();
  const bump = (id: MachineId, by: number): void => {
    const n = (counts.get(id) ?? 0) + by;
    if (n > 0) counts.set(id, n);
    else counts.delete(id);
  };
  const evicted = new Set<ClaimId>();
  for (const d of cell.deltas) for (const e of d.evicts) evicted.add(e.claim.id);

  for (const task of snapshot.tasksOf(job)) {
    if (isTerminal(task.state)) continue;
    const machine = snapshot.machine(task.machineId);
    const claim = machine?.claims.find((c) => c.id === task.claimId);
    if (claim === undefined || evicted.has(claim.id) || !snapshot.isLive(claim)) continue;
    bump(claim.machineId, 1);
  }
  for (const d of cell.deltas) if (isTaskOf(d.claim.taskId, job) && !evicted.has(d.claim.id)) bump(d.claim.machineId, 1);
  return counts;
}
