/**
 * PrivateCell: a scheduler's mutable overlay of a CellSnapshot, where it makes claims while
 * thinking. Nothing here touches the store; `transaction()` turns the claims into a Transaction
 * for {@link Committer.commit}.
 */
import { randomBytes } from 'node:crypto';
import type { CellSnapshot } from './cell-snapshot.js';
import type { ClaimDelta, Eviction, Transaction } from './commit.js';
import { fitsWithin, resourceShortage, type Shortage } from './resources.js';
import {
  acceptsPlacements,
  claimId,
  isReplacedTask,
  isTerminal,
  jobVersion,
  parseTaskId,
  type JobId,
  type Claim,
  type ClaimId,
  type ConflictMode,
  type Machine,
  type MachineId,
  type Resources,
  type TaskId,
  type TransactionMode,
} from './types.js';

/** Makes claim ids unique across processes and restarts: a random prefix plus a counter. */
export function claimIdFactory(): () => ClaimId {
  const prefix = randomBytes(6).toString('hex');
  let next = 0;
  return () => claimId(`${prefix}-${(next++).toString(36)}`);
}

/** What a scheduler asks to place. */
export interface PlacementRequest {
  readonly taskId: TaskId;
  readonly resources: Resources;
  readonly priority: number;
  /** Claims on the same machine to preempt (strictly lower priority, live). */
  readonly evict?: readonly Claim[];
}

/** Why a claim could not be made on the private cell. Values, not exceptions. */
export type ClaimRefusal =
  | { readonly refused: 'unknown-machine' }
  | { readonly refused: 'unschedulable' }
  | { readonly refused: 'task-live'; readonly machineId: MachineId }
  | { readonly refused: 'already-claimed' }
  | { readonly refused: 'no-fit'; readonly short: Shortage }
  | { readonly refused: 'bad-eviction'; readonly why: string };

export type ClaimOutcome = { readonly refused?: undefined; readonly delta: ClaimDelta } | ClaimRefusal;

const NO_CLAIMS: ReadonlySet<ClaimId> = new Set();

export class PrivateCell {
  private readonly deltaList: ClaimDelta[] = [];
  private readonly deltasByMachine = new Map<MachineId, ClaimDelta[]>();
  private readonly claimedTasks = new Set<TaskId>();
  /** Resources this cell's own claims added (positive) or evictions freed (negative), per machine. */
  private readonly delta = new Map<MachineId, { cpuMillis: number; memoryBytes: number; evicted: Set<ClaimId> }>();

  constructor(
    readonly base: CellSnapshot,
    readonly scheduler: string,
    private readonly nextClaimId: () => ClaimId,
  ) {}

  /** Free resources on a machine: the snapshot's, minus this cell's claims, plus its evictions. */
  free(id: MachineId): Resources {
    const free = this.base.free(id);
    const d = this.delta.get(id);
    if (d === undefined) return free;
    return { cpuMillis: free.cpuMillis - d.cpuMillis, memoryBytes: free.memoryBytes - d.memoryBytes };
  }

  /** Whether `resources` fit on the machine now (same check the commit makes). */
  fits(id: MachineId, resources: Resources): boolean {
    return fitsWithin(resources, this.free(id));
  }

  /** Claims this cell has made on a machine (for spread and per-machine limits). */
  claimsOn(id: MachineId): readonly ClaimDelta[] {
    return this.deltasByMachine.get(id) ?? [];
  }

  get deltas(): readonly ClaimDelta[] {
    return this.deltaList;
  }

  /** Claims evicted on a machine by this cell so far. */
  evictedOn(id: MachineId): ReadonlySet<ClaimId> {
    return this.delta.get(id)?.evicted ?? NO_CLAIMS;
  }

  /**
   * Claims `request` on `machineId`. Checks that the task has no live placement in the snapshot
   * and is not already claimed here, that the machine accepts placements (schedulable, not cordoned), that evictions are valid,
   * and that the resources fit after them.
   */
  claim(machineId: MachineId, request: PlacementRequest): ClaimOutcome {
    const machine = this.base.machine(machineId);
    if (machine === undefined) return { refused: 'unknown-machine' };
    if (!acceptsPlacements(machine)) return { refused: 'unschedulable' };
    if (this.claimedTasks.has(request.taskId)) return { refused: 'already-claimed' };
    const current = this.base.task(request.taskId);
    if (current !== undefined && !isTerminal(current.state)) return { refused: 'task-live', machineId: current.machineId };

    const evictions: Eviction[] = [];
    let freed = { cpuMillis: 0, memoryBytes: 0 };
    for (const victim of request.evict ?? []) {
      const why = this.checkEviction(machine, victim, request.priority);
      if (why !== undefined) return { refused: 'bad-eviction', why };
      evictions.push({ claim: victim, taskRevision: this.base.task(victim.taskId)?.revision ?? 0 });
      freed = { cpuMillis: freed.cpuMillis + victim.resources.cpuMillis, memoryBytes: freed.memoryBytes + victim.resources.memoryBytes };
    }
    const free = this.free(machineId);
    const short = resourceShortage(request.resources.cpuMillis, request.resources.memoryBytes, free.cpuMillis + freed.cpuMillis, free.memoryBytes + freed.memoryBytes);
    if (short !== undefined) return { refused: 'no-fit', short };

    const claim: Claim = {
      id: this.nextClaimId(),
      taskId: request.taskId,
      machineId,
      attempt: (current?.attempt ?? 0) + 1,
      resources: request.resources,
      priority: request.priority,
      scheduler: this.scheduler,
    };
    const delta: ClaimDelta = {
      claim,
      machineSeq: machine.seq,
      taskRevision: current?.revision ?? 0,
      // A rolling update's replacement is a new attempt, not a restart.
      restarts: current === undefined ? 0 : current.restarts + (isReplacedTask(current) ? 0 : 1),
      // The job's version in this snapshot: what the attempt will run.
      version: jobVersion(this.base.job(parseTaskId(request.taskId)?.jobId ?? ('' as JobId)) ?? {}),
      evicts: evictions,
    };
    this.deltaList.push(delta);
    const onMachine = this.deltasByMachine.get(machineId);
    if (onMachine === undefined) this.deltasByMachine.set(machineId, [delta]);
    else onMachine.push(delta);
    this.claimedTasks.add(request.taskId);
    const d = this.delta.get(machineId) ?? { cpuMillis: 0, memoryBytes: 0, evicted: new Set<ClaimId>() };
    d.cpuMillis += request.resources.cpuMillis - freed.cpuMillis;
    d.memoryBytes += request.resources.memoryBytes - freed.memoryBytes;
    for (const e of evictions) d.evicted.add(e.claim.id);
    this.delta.set(machineId, d);
    return { delta };
  }

  private checkEviction(machine: Machine, victim: Claim, priority: number): string | undefined {
    if (victim.machineId !== machine.id) return `claim ${victim.id} is on machine ${victim.machineId}, not ${machine.id}`;
    if (!machine.claims.some((c) => c.id === victim.id)) return `claim ${victim.id} is not on machine ${machine.id}`;
    if (!this.base.isLive(victim)) return `claim ${victim.id} is not live`;
    if (victim.priority >= priority) return `claim ${victim.id} has priority ${victim.priority}, not lower than ${priority}`;
    if (this.delta.get(machine.id)?.evicted.has(victim.id) === true) return `claim ${victim.id} is already evicted`;
    return undefined;
  }

  /** The claims made so far as a transaction against this cell's snapshot. */
  transaction(conflictMode: ConflictMode, transactionMode: TransactionMode): Transaction {
    return { deltas: [...this.deltaList], conflictMode, transactionMode, base: this.base };
  }
}
