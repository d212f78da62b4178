/**
 * Plan: what submitting a job, or updating one to a new spec, would do on the cell as a snapshot
 * shows it, computed by the code the loop runs and changing nothing (Nomad's `job plan`).
 *
 * ```
 *   candidate spec ──► the snapshot as the loop would see it after the change:
 *   (+ current job)      instances past the new count: stopped (scaled-down)
 *                        a service whose task or constraints changed: its live instances
 *                        stopped for replacement (updated), in steps of update.maxUnavailable
 *                  ──► assessJob: the indices the loop would place
 *                  ──► proposePlacement: the loop's own filters, policy and PrivateCell
 *                  ──► created / replaced (machine), would not fit (per filter, why-pending's
 *                      words), lower-priority tasks preempted
 * ```
 *
 * The plan and the real commit agree when nothing changes in between and the schedulers run the
 * same policy settings: the same fit rules, filters and job progress decide both. Machine choices
 * among equally good ones may differ (they are random per scheduler instance). Replacements are
 * judged with every replaced instance's claim freed at once; the rolling update frees
 * `maxUnavailable` of them per step, so on a nearly full cell a later step can wait longer than
 * the plan suggests.
 */
import {
  SCALED_DOWN_REASON,
  UPDATED_REASON,
  claimIdFactory,
  isClaimLive,
  isTerminal,
  parseTaskId,
  resolveUpdateStrategy,
  samePlacementSpec,
  usedResources,
  type CellSnapshot,
  type Job,
  type JobId,
  type MachineId,
  type Resources,
  type Task,
  type TaskId,
  type TransactionMode,
} from '@omega/cell-state';
import { assessJob, type RestartDefaults } from './job-progress.js';
import { noFitReason, offeredMachines, tooLargeForEveryMachine, tooLargeReason, type FilterCount, type OfferedMachines } from './job-status.js';
import type { PlacementPolicy } from './policy.js';
import { proposePlacement } from './propose.js';
import type { Random } from './random.js';

export interface PlannedTask {
  readonly index: number;
  /** Where it would be placed; absent when it would not fit now. */
  readonly machineId?: MachineId;
}

export interface PlannedStop {
  readonly index: number;
  readonly machineId: MachineId;
  /** `scaled-down` (past the new instance count) or `updated` (replaced by the new spec). */
  readonly reason: string;
}

export interface PlannedPreemption {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly machineId: MachineId;
  readonly priority: number;
}

export interface JobPlan {
  /** Indices that would be placed that are not replacements: new ones, and those still waiting. */
  readonly create: readonly PlannedTask[];
  /** Indices whose running attempt would be replaced by one of the new spec. */
  readonly replace: readonly PlannedTask[];
  /** Live attempts that would be stopped (scaled down, or replaced). */
  readonly stop: readonly PlannedStop[];
  /** Indices that would wait: no machine fits them now. */
  readonly unplaced: readonly number[];
  /** For those: how many machines each filter ruled out, as a job status says it. */
  readonly ruledOut: readonly FilterCount[];
  /** Why-pending in words; empty when everything would be placed. */
  readonly reason: string;
  readonly preempt: readonly PlannedPreemption[];
  /** Replacements per step of the rolling update (its maxUnavailable); 0 when nothing is replaced. */
  readonly replaceStep: number;
}

export interface PlanInput {
  /** The job as it would be stored: for an update, the current job with the new spec. */
  readonly job: Job;
  /** The job as stored now; undefined for a submit. */
  readonly current: Job | undefined;
  readonly snapshot: CellSnapshot;
  /** The policy of the job's kind, as its schedulers run it. */
  readonly policy: PlacementPolicy;
  readonly random: Random;
  readonly nowMs: number;
  readonly defaults: RestartDefaults;
}

/** What the change would do; pure apart from `random`. */
export function planJob(input: PlanInput): JobPlan {
  const { job, current, policy } = input;
  const stops = stopsOf(job, current, input.snapshot);
  const snapshot = stops.length === 0 ? input.snapshot : new StoppedOverlay(input.snapshot, stops, input.nowMs);
  const view = new JobOverlay(snapshot, job);
  const progress = assessJob(job, view, input.nowMs, input.defaults);
  const tasks = progress.toPlace;
  const offered: OfferedMachines = offeredMachines(view);
  const proposal = proposePlacement({ job, tasks, snapshot: view, offered, policy, random: input.random, scheduler: 'plan', claimIds: claimIdFactory() });
  const mode: TransactionMode = job.spec.commitMode === 'default' ? policy.defaultTransactionMode : job.spec.commitMode;
  const gang = mode === 'all-or-nothing';
  const claimed = proposal.cell.deltas;
  const committed = gang && claimed.length < tasks.length ? [] : claimed;
  const machineOf = new Map<number, MachineId>(committed.map((d) => [indexOf(d.claim.taskId), d.claim.machineId]));
  const replaced = new Set(stops.filter((s) => s.reason === UPDATED_REASON).map((s) => s.task.index));
  const planned = (index: number): PlannedTask => {
    const machineId = machineOf.get(index);
    return machineId === undefined ? { index } : { index, machineId };
  };
  const unplaced = tasks.map((t) => t.index).filter((i) => !machineOf.has(i));
  // As the loop does: a task no machine could hold even empty gives the job up, saying so.
  const tooLarge = claimed.length === 0 && tasks.length > 0 ? tooLargeForEveryMachine(view, job.spec.task.resources) : undefined;
  const ruledOut = tooLarge ?? proposal.ruledOut;
  return {
    create: tasks.filter((t) => !replaced.has(t.index)).map((t) => planned(t.index)),
    replace: tasks.filter((t) => replaced.has(t.index)).map((t) => planned(t.index)),
    stop: stops.map((s) => ({ index: s.task.index, machineId: s.task.machineId, reason: s.reason })),
    unplaced,
    ruledOut: unplaced.length > 0 ? ruledOut : [],
    reason: unplaced.length === 0 ? '' : tooLarge !== undefined ? tooLargeReason(tooLarge) : noFitReason(tasks.length, claimed.length, gang, ruledOut, proposal.offered.machines.length),
    preempt: committed.flatMap((d) =>
      d.evicts.map((e) => {
        const jobId = parseTaskId(e.claim.taskId)?.jobId ?? (e.claim.taskId as string as JobId);
        return { taskId: e.claim.taskId, jobId, machineId: e.claim.machineId, priority: e.claim.priority };
      }),
    ),
    replaceStep: replaced.size === 0 ? 0 : resolveUpdateStrategy(job.spec).maxUnavailable,
  };
}

function indexOf(id: TaskId): number {
  return parseTaskId(id)?.index ?? -1;
}

interface Stop {
  readonly task: Task;
  readonly reason: typeof SCALED_DOWN_REASON | typeof UPDATED_REASON;
}

/** The live attempts the change stops before the loop places anything. */
function stopsOf(job: Job, current: Job | undefined, snapshot: CellSnapshot): Stop[] {
  if (current === undefined) return [];
  const replaces = job.spec.kind === 'service' && !samePlacementSpec(current.spec, job.spec);
  const out: Stop[] = [];
  for (const task of snapshot.tasksOf(job.id)) {
    if (isTerminal(task.state)) continue;
    if (task.index >= job.spec.instances) out.push({ task, reason: SCALED_DOWN_REASON });
    else if (replaces) out.push({ task, reason: UPDATED_REASON });
  }
  return out.sort((a, b) => a.task.index - b.task.index);
}

/** A snapshot that answers everything from `base`, except what its subclass overrides. */
abstract class SnapshotView implements CellSnapshot {
  constructor(protected readonly base: CellSnapshot) {}
  get revision(): number {
    return this.base.revision;
  }
  get machineCount(): number {
    return this.base.machineCount;
  }
  get jobCount(): number {
    return this.base.jobCount;
  }
  machine(id: MachineId) {
    return this.base.machine(id);
  }
  machines() {
    return this.base.machines();
  }
  task(id: TaskId): Task | undefined {
    return this.base.task(id);
  }
  tasksOf(job: JobId): IterableIterator<Task> {
    return this.base.tasksOf(job);
  }
  job(id: JobId): Job | undefined {
    return this.base.job(id);
  }
  jobs() {
    return this.base.jobs();
  }
  status(job: JobId) {
    return this.base.status(job);
  }
  owner(job: JobId) {
    return this.base.owner(job);
  }
  owners() {
    return this.base.owners();
  }
  alive(id: MachineId) {
    return this.base.alive(id);
  }
  aliveMachines() {
    return this.base.aliveMachines();
  }
  schedulerStats() {
    return this.base.schedulerStats();
  }
  namespace(name: string) {
    return this.base.namespace(name);
  }
  namespaces() {
    return this.base.namespaces();
  }
  isLive(claim: Parameters<CellSnapshot['isLive']>[0]): boolean {
    return this.base.isLive(claim);
  }
  used(id: MachineId): Resources {
    return this.base.used(id);
  }
  free(id: MachineId): Resources {
    return this.base.free(id);
  }
}

/** The snapshot with the candidate job in place of (or beside) the stored one. */
class JobOverlay extends SnapshotView {
  constructor(base: CellSnapshot, private readonly candidate: Job) {
    super(base);
  }
  override job(id: JobId): Job | undefined {
    return id === this.candidate.id ? this.candidate : this.base.job(id);
  }
}

/** The snapshot with some live attempts ended as the loop would end them (their claims freed). */
class StoppedOverlay extends SnapshotView {
  private readonly ended = new Map<TaskId, Task>();
  private readonly machines_ = new Set<MachineId>();
  private readonly usedCache = new Map<MachineId, Resources>();

  constructor(base: CellSnapshot, stops: readonly Stop[], nowMs: number) {
    super(base);
    for (const { task, reason } of stops) {
      this.ended.set(task.id, { ...task, state: 'killed', reason, finishedAtMs: nowMs });
      this.machines_.add(task.machineId);
    }
  }
  override task(id: TaskId): Task | undefined {
    return this.ended.get(id) ?? this.base.task(id);
  }
  override *tasksOf(job: JobId): IterableIterator<Task> {
    for (const task of this.base.tasksOf(job)) yield this.ended.get(task.id) ?? task;
  }
  override isLive(claim: Parameters<CellSnapshot['isLive']>[0]): boolean {
    return isClaimLive(claim, (id) => this.task(id));
  }
  override used(id: MachineId): Resources {
    if (!this.machines_.has(id)) return this.base.used(id);
    let used = this.usedCache.get(id);
    const machine = this.base.machine(id);
    if (used === undefined && machine !== undefined) {
      used = usedResources(machine, (t) => this.task(t));
      this.usedCache.set(id, used);
    }
    return used ?? this.base.used(id);
  }
  override free(id: MachineId): Resources {
    if (!this.machines_.has(id)) return this.base.free(id);
    const machine = this.base.machine(id);
    if (machine === undefined) return this.base.free(id);
    const used = this.used(id);
    return { cpuMillis: machine.capacity.cpuMillis - used.cpuMillis, memoryBytes: machine.capacity.memoryBytes - used.memoryBytes };
  }
}
