/**
 * Drain: a machine an operator drains (`omega drain`, its record's `cordon.drainDeadlineMs`) has
 * its tasks moved off by the owners of their jobs, Kubernetes' `kubectl drain` with a budget and
 * Nomad's drain deadline in one:
 *
 * ```
 *   service instance ──► stopped (killed, machine-drained) when its job has room in its budget:
 *                        fewer than its `update.maxUnavailable` (default 1) of its instances
 *                        unavailable (not running, or being stopped); one step per change, so
 *                        the replacement runs elsewhere before the next instance goes
 *   batch task       ──► left to finish; at the deadline stopped (killed, machine-drained)
 *   at the deadline  ──► every task still on the machine is stopped, whatever its budget
 * ```
 *
 * A stopped task is placed again elsewhere (the machine is cordoned, so not here) as a new
 * attempt; job-progress counts `machine-drained` as not the task's fault: neither a failure of
 * the job nor a restart against its `maxRestarts`.
 *
 * Only the owner of a job stops its tasks (one instance decides its budget); a job whose owner
 * is gone is taken over and drained by the next. Writes are `Cell.updateTasks`, guarded by each
 * task's revision and claim, so they never overwrite an attempt that ended or moved meanwhile.
 */
import { DRAINED_REASON, isTerminal, resolveUpdateStrategy, type CellSnapshot, type ClaimId, type Job, type JobId, type MachineId, type Task, type TaskPatch } from '@omega/cell-state';

interface Draining {
  readonly deadlineMs: number;
  /** Claims whose tasks were sent to stop (until the mirror shows them terminal). */
  readonly sent: Set<ClaimId>;
}

export class DrainWatch {
  private readonly draining = new Map<MachineId, Draining>();

  /** @param maxUnavailable how many of a service job's instances may be down at once: its update policy's by default. */
  constructor(private readonly maxUnavailable: (job: Job) => number = (job) => resolveUpdateStrategy(job.spec).maxUnavailable) {}

  /** Machines being drained now. */
  get drainingCount(): number {
    return this.draining.size;
  }

  /** Notes which machines drain. `changed`: ids whose machine record changed; `'all'`: every one. */
  observe(snapshot: CellSnapshot, changed: Iterable<MachineId> | 'all'): void {
    if (changed === 'all') {
      const seen = new Set<MachineId>();
      for (const m of snapshot.machines()) {
        seen.add(m.id);
        this.observeOne(snapshot, m.id);
      }
      for (const id of [...this.draining.keys()]) if (!seen.has(id)) this.draining.delete(id);
      return;
    }
    for (const id of changed) this.observeOne(snapshot, id);
  }

  private observeOne(snapshot: CellSnapshot, id: MachineId): void {
    const deadlineMs = snapshot.machine(id)?.cordon?.drainDeadlineMs ?? 0;
    if (deadlineMs <= 0) {
      this.draining.delete(id);
      return;
    }
    const entry = this.draining.get(id);
    if (entry === undefined || entry.deadlineMs !== deadlineMs) this.draining.set(id, { deadlineMs, sent: entry?.sent ?? new Set() });
  }

  /**
   * The task stops due now on draining machines, for the jobs `owns` says are ours: services'
   * instances within their jobs' budgets, everything once past the deadline. Each once (until
   * the mirror shows it ended).
   */
  due(snapshot: CellSnapshot, nowMs: number, owns: (job: JobId) => boolean): { task: Task; patch: TaskPatch }[] {
    const updates: { task: Task; patch: TaskPatch }[] = [];
    const budgets = new Map<JobId, number>();
    for (const [id, entry] of this.draining) {
      const machine = snapshot.machine(id);
      if (machine === undefined) {
        this.draining.delete(id);
        continue;
      }
      const pastDeadline = nowMs >= entry.deadlineMs;
      const live = new Set<ClaimId>();
      for (const claim of machine.claims) {
        const task = snapshot.task(claim.taskId);
        if (task === undefined || task.claimId !== claim.id || isTerminal(task.state)) continue;
        live.add(claim.id);
        if (entry.sent.has(claim.id) || !owns(task.jobId)) continue;
        const job = snapshot.job(task.jobId);
        if (job === undefined) continue;
        if (!pastDeadline) {
          if (job.spec.kind !== 'service') continue;
          const budget = budgets.get(job.id) ?? this.budget(snapshot, job);
          if (budget <= 0) {
            budgets.set(job.id, 0);
            continue;
          }
          budgets.set(job.id, budget - 1);
        }
        entry.sent.add(claim.id);
        updates.push({ task, patch: { state: 'killed', reason: DRAINED_REASON, finishedAtMs: nowMs } });
      }
      for (const claim of [...entry.sent]) if (!live.has(claim)) entry.sent.delete(claim);
    }
    return updates;
  }

  /** How many more of the job's instances may go down now: maxUnavailable minus those down. */
  private budget(snapshot: CellSnapshot, job: Job): number {
    let available = 0;
    for (const task of snapshot.tasksOf(job.id)) {
      if (task.index >= job.spec.instances || task.state !== 'running') continue;
      if (this.draining.get(task.machineId)?.sent.has(task.claimId) === true) continue;
      available++;
    }
    return this.maxUnavailable(job) - (job.spec.instances - available);
  }

  /** Forgets that stops were sent for these tasks (the send failed; try again). */
  unsend(updates: readonly { task: Task }[]): void {
    for (const { task } of updates) this.draining.get(task.machineId)?.sent.delete(task.claimId);
  }

  /** The next drain deadline still ahead, if any machine drains. */
  nextDeadline(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const entry of this.draining.values()) if (entry.deadlineMs > nowMs) next = Math.min(next ?? Infinity, entry.deadlineMs);
    return next;
  }
}
