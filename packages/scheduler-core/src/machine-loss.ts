/**
 * Machine loss: a machine whose `alive/<id>` key is absent from the snapshot (its agent's lease
 * expired, or it never heartbeated) for longer than a grace period, measured on the scheduler's
 * clock from when this instance first saw it absent, has its placed and running tasks marked
 * `lost` (reason `machine-lost`). Their claims then stop counting (a terminal task's claim is
 * dead), so the machine's resources are free again for the records, and the jobs' owners replace
 * the tasks by their restart rules.
 *
 * Every scheduler instance does this for every machine, whoever owns the jobs (the owner may be
 * gone too). That is safe: `Cell.updateTasks` is guarded by each task's revision and claim id,
 * so instances racing each other, or the agent, never overwrite a later attempt or an ending.
 * The grace absorbs heartbeat hiccups; the machine is not offered to policies meanwhile.
 */
import { isTerminal, type CellSnapshot, type ClaimId, type MachineId, type Task, type TaskPatch } from '@omega/cell-state';

interface Missing {
  /** When this instance first saw the machine without its alive key. */
  readonly sinceMs: number;
  /** No live task left on it at the last look; looked at again only when the machine record changes. */
  settled: boolean;
  /** Claims whose tasks were already sent as lost (waiting for the mirror to show them terminal). */
  readonly sent: Set<ClaimId>;
}

export class MachineLossWatch {
  private readonly missing = new Map<MachineId, Missing>();

  constructor(private readonly graceMs: number) {}

  /** Machines absent for now (not alive), whether or not past their grace. */
  get missingCount(): number {
    return this.missing.size;
  }

  /**
   * Notes which machines are alive. `changed` lists machine ids whose machine or alive key
   * changed since the last call; `'all'` re-reads every machine (first call, or after a re-list).
   */
  observe(snapshot: CellSnapshot, changed: Iterable<MachineId> | 'all', nowMs: number): void {
    if (changed === 'all') {
      const seen = new Set<MachineId>();
      for (const m of snapshot.machines()) {
        seen.add(m.id);
        this.observeOne(snapshot, m.id, nowMs);
      }
      for (const id of [...this.missing.keys()]) if (!seen.has(id)) this.missing.delete(id);
      return;
    }
    for (const id of changed) this.observeOne(snapshot, id, nowMs);
  }

  private observeOne(snapshot: CellSnapshot, id: MachineId, nowMs: number): void {
    if (snapshot.machine(id) === undefined || snapshot.alive(id) !== undefined) {
      this.missing.delete(id);
      return;
    }
    const entry = this.missing.get(id);
    if (entry === undefined) this.missing.set(id, { sinceMs: nowMs, settled: false, sent: new Set() });
    else entry.settled = false;
  }

  /**
   * The task updates due now: every non-terminal task holding a live claim on a machine absent
   * for at least the grace period, once each (until the mirror shows the outcome).
   */
  due(snapshot: CellSnapshot, nowMs: number): { task: Task; patch: TaskPatch }[] {
    const updates: { task: Task; patch: TaskPatch }[] = [];
    for (const [id, entry] of this.missing) {
      if (entry.settled || nowMs < entry.sinceMs + this.graceMs) continue;
      const machine = snapshot.machine(id);
      if (machine === undefined) {
        this.missing.delete(id);
        continue;
      }
      let live = 0;
      for (const claim of machine.claims) {
        const task = snapshot.task(claim.taskId);
        if (task === undefined || task.claimId !== claim.id || isTerminal(task.state)) continue;
        live++;
        if (entry.sent.has(claim.id)) continue;
        entry.sent.add(claim.id);
        updates.push({ task, patch: { state: 'lost', reason: 'machine-lost', finishedAtMs: nowMs } });
      }
      if (live === 0) {
        entry.settled = true;
        entry.sent.clear();
      }
    }
    return updates;
  }

  /** Forgets that updates were sent for these tasks' claims (the send failed; try again). */
  unsend(updates: readonly { task: Task }[]): void {
    for (const { task } of updates) this.missing.get(task.machineId)?.sent.delete(task.claimId);
  }

  /** The next time a missing machine's grace runs out, if any is still within it. */
  nextDeadline(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const entry of this.missing.values()) {
      const at = entry.sinceMs + this.graceMs;
      if (!entry.settled && at > nowMs) next = Math.min(next ?? Infinity, at);
    }
    return next;
  }
}
