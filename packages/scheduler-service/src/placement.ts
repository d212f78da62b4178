/**
 * One placement call of the service policy: the ranking and selection on top of the shared
 * placement core (scheduler-core's `PlacementState`: the job's compiled filters, static once per
 * call, dynamic per task), and preemption.
 *
 *   machines ──static filters──▶ candidates ──dynamic filters──▶ feasible ──spread tier──▶
 *     ──score──▶ best (Random breaks exact ties) ──▶ PrivateCell.claim
 *   (nothing feasible) ──non-resource filters──▶ preemption plans ──▶ best plan ──▶ claim + evict
 *
 * Everything that does not change between the tasks of one call is computed once: the static
 * filters and spread groups (in the PlacementState), each candidate's capacity, its eligible
 * victims on first use. After each claim only the chosen machine's entries are refreshed, from
 * the PrivateCell itself, so the numbers the filters use are exactly the cell's.
 */
import type { Claim, ClaimId, JobId, Machine, MachineId, PrivateCell, Resources, TaskId } from '@omega/cell-state';
import { atBound, compareTier, PlacementState, tierBound, type PlaceInput, type Random } from '@omega/scheduler-core';
import type { ResolvedServiceOptions } from './options.js';
import { chooseVictims, compareChoices, eligibleVictims, VictimChoice, VictimPool } from './preemption.js';
import { scoreMachine } from './scoring.js';

/** How placing one task ended. */
export type TaskOutcome =
  /** Claimed on the PrivateCell (possibly with evictions). */
  | 'placed'
  /** No machine passes the filters, and preemption (if enabled) found no room either. */
  | 'nowhere'
  /** The PrivateCell refuses the task itself (already live in the snapshot, or already claimed). */
  | 'task-refused';

const EMPTY_SET: ReadonlySet<ClaimId> = new Set();

export class ServicePlacement {
  private readonly cell: PrivateCell;
  private readonly random: Random;
  private readonly job: JobId;
  private readonly request: Resources;
  /** The job's priority as recorded on its claims. */
  private readonly claimPriority: number;
  /** The priority victims must be below: -Infinity (evict nothing) unless an integer. */
  private readonly priority: number;

  /** The shared feasibility state; "position" indexes its candidates. */
  private readonly state: PlacementState;
  private readonly candidates: readonly Machine[];
  private readonly capacityCpu: Float64Array;
  private readonly capacityMemory: Float64Array;
  private readonly bound: Int32Array;
  /** Candidates the PrivateCell refused for reasons of their own (never expected; see exclude). */
  private readonly excluded: Uint8Array;
  private readonly excludedRuledOut = new Map<string, number>();
  /** Machines with evictions in the private cell: only those need `cell.evictedOn`. */
  private readonly evictedMachines = new Set<MachineId>();
  private readonly sampleLimit: number;
  /**
   * Per candidate, built on first use: the claims this job may preempt there, in the order they
   * are taken (a range of the pool), and their total resources (to skip machines where evicting
   * all of them would not do).
   * Depends only on the snapshot, the job and this attempt's evictions, so it survives across
   * tasks; a machine's entry is dropped when this attempt evicts there.
   */
  private readonly victims = new VictimPool();
  /** Where each candidate's range in `victims` starts; -1 until built. */
  private readonly victimStart: Int32Array;
  private readonly victimCount: Int32Array;
  private readonly victimCpu: Float64Array;
  private readonly victimMemory: Float64Array;
  private readonly trial = new VictimChoice();
  private readonly chosen = new VictimChoice();

  constructor(
    input: PlaceInput,
    private readonly options: ResolvedServiceOptions,
  ) {
    this.cell = input.cell;
    this.random = input.random;
    this.job = input.job.id;
    const spec = input.job.spec;
    this.claimPriority = spec.priority;
    this.priority = Number.isSafeInteger(spec.priority) ? spec.priority : -Infinity;

    // Anti-affinity scoring reads the job's instances per machine even without a constraint.
    this.state = new PlacementState(input, { countInstances: true });
    this.request = this.state.filters.request;
    this.candidates = this.state.candidates;
    const n = this.candidates.length;
    this.capacityCpu = new Float64Array(n);
    this.capacityMemory = new Float64Array(n);
    this.victimCpu = new Float64Array(n);
    this.victimMemory = new Float64Array(n);
    this.victimStart = new Int32Array(n).fill(-1);
    this.victimCount = new Int32Array(n);
    this.excluded = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const machine = this.candidates[i] as Machine;
      this.capacityCpu[i] = machine.capacity.cpuMillis;
      this.capacityMemory[i] = machine.capacity.memoryBytes;
    }
    for (const d of this.cell.deltas) if (d.evicts.length > 0) this.evictedMachines.add(d.claim.machineId);
    this.bound = new Int32Array(this.state.spreads.length);
    this.sampleLimit = options.sampleSize > 0 && n > options.sampleAbove ? options.sampleSize : Infinity;
  }

  /**
   * Places one task: the best feasible machine, else (when enabled) the best preemption plan.
   * Bounded: a machine the PrivateCell refuses is excluded for the rest of the call and the task
   * tried again, at most once per candidate.
   */
  placeTask(taskId: TaskId): TaskOutcome {
    for (;;) {
      let position = this.selectFeasible();
      let victims: readonly Claim[] | undefined;
      if (position < 0 && this.options.preemption) {
        const choice = this.selectPreemption();
        if (choice !== undefined) {
          position = choice.position;
          victims = choice.victims;
        }
      }
      if (position < 0) return 'nowhere';
      const machine = this.candidates[position] as Machine;
      const out = this.cell.claim(machine.id, { taskId, resources: this.request, priority: this.claimPriority, ...(victims === undefined ? {} : { evict: victims }) });
      if (out.refused === undefined) {
        this.record(position, victims !== undefined && victims.length > 0);
        return 'placed';
      }
      if (out.refused === 'task-live' || out.refused === 'already-claimed') return 'task-refused';
      // The filters read the same numbers the cell checks, so this means the machine record
      // disagrees with the input (e.g. unschedulable in the snapshot): stop offering it.
      this.exclude(position, `refused ${out.refused}`);
    }
  }

  /**
   * Machines ruled out per filter for the last task scanned, each machine counted once, under the
   * first filter (in pipeline order) that ruled it out. Only meaningful after `placeTask`
   * returned `nowhere` (then every candidate was scanned, none skipped by sampling).
   */
  ruledOut(): Map<string, number> {
    return this.state.ruledOut(this.excludedRuledOut);
  }

  // ---- the per-task scan ----------------------------------------------------------------

  private score(position: number, freeCpuAfter: number, freeMemoryAfter: number): number {
    return scoreMachine(
      this.options.scoring,
      this.capacityCpu[position] as number,
      this.capacityMemory[position] as number,
      freeCpuAfter,
      freeMemoryAfter,
      this.state.instances(position),
      this.options.antiAffinityPenalty,
    );
  }

  /**
   * The best feasible candidate's position, or -1. Keeps the best by spread tier, then score,
   * with exact score ties resolved by reservoir sampling (each tied machine equally likely, no
   * allocation). With sampling on, stops after `sampleSize` feasible machines at the best tier
   * any candidate could have, which keeps spread exact and makes only the score approximate; the
   * candidates are then visited from a random start with a random stride coprime to their count,
   * so each task's sample is spread over the whole list (machines register rack by rack, and a
   * contiguous window would be a rack or two) and still visits each machine once.
   */
  private selectFeasible(): number {
    const state = this.state;
    const n = this.candidates.length;
    state.resetCounts();
    if (n === 0) return -1;
    const cpu = this.request.cpuMillis;
    const memory = this.request.memoryBytes;
    const spreads = state.spreads;
    if (spreads.length > 0) tierBound(spreads, this.bound);
    const sampling = this.sampleLimit !== Infinity;
    const stride = sampling ? coprimeStride(n, this.random) : 1;
    let i = this.random.int(n) - stride;
    let best = -1;
    let bestScore = -Infinity;
    let ties = 0;
    let sampled = 0;
    for (let k = 0; k < n; k++) {
      i += stride;
      if (i >= n) i -= n;
      if (this.excluded[i] === 1) continue;
      if (!state.feasible(i)) continue;
      const tier = best < 0 ? -1 : compareTier(spreads, i, best);
      if (tier > 0) continue;
      const s = this.score(i, state.freeCpu(i) - cpu, state.freeMemory(i) - memory);
      if (tier < 0 || s > bestScore) {
        best = i;
        bestScore = s;
        ties = 1;
      } else if (s === bestScore && this.random.int(++ties) === 0) {
        best = i;
      }
      if (sampling && (spreads.length === 0 || atBound(spreads, this.bound, i)) && ++sampled >= this.sampleLimit) break;
    }
    return best;
  }

  /**
   * The best machine to preempt on, among candidates that pass every filter except resources:
   * best spread tier first (preemption must not undo spreading), then the cheapest victims
   * (`compareChoices`), then the score after evictions, then Random among exact ties. Scans every
   * candidate (no sampling): it only runs when nothing fits anywhere, where the choice of victims
   * matters more than speed. Allocates only for the winner and for each machine's victim list,
   * once per call.
   */
  private selectPreemption(): { position: number; victims: Claim[] } | undefined {
    const state = this.state;
    const n = this.candidates.length;
    const spreads = state.spreads;
    const cpu = this.request.cpuMillis;
    const memory = this.request.memoryBytes;
    const trial = this.trial;
    const chosen = this.chosen;
    let best = -1;
    let bestScore = -Infinity;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      if (this.excluded[i] === 1 || !state.feasibleExceptResources(i)) continue;
      const tier = best < 0 ? -1 : compareTier(spreads, i, best);
      if (tier > 0) continue;
      const needCpu = cpu - state.freeCpu(i);
      const needMemory = memory - state.freeMemory(i);
      if (this.victimStart[i] === -1) this.buildVictims(i);
      if ((this.victimCpu[i] as number) < needCpu || (this.victimMemory[i] as number) < needMemory) continue;
      if (!chooseVictims(this.victims, this.victimStart[i] as number, this.victimCount[i] as number, needCpu, needMemory, trial)) continue;
      const cost = tier < 0 ? -1 : compareChoices(trial, chosen);
      if (cost > 0) continue;
      const s = this.score(i, trial.freedCpu - needCpu, trial.freedMemory - needMemory);
      if (cost < 0 || s > bestScore) {
        ties = 1;
      } else if (s !== bestScore || this.random.int(++ties) !== 0) {
        continue;
      }
      best = i;
      bestScore = s;
      chosen.copyFrom(trial);
    }
    return best < 0 ? undefined : { position: best, victims: chosen.victims(this.victims) };
  }

  /** Puts the claims this job may preempt on the candidate at `position` in the pool. */
  private buildVictims(position: number): void {
    const machine = this.candidates[position] as Machine;
    const evicted = this.evictedMachines.has(machine.id) ? this.cell.evictedOn(machine.id) : EMPTY_SET;
    const eligible = eligibleVictims(machine, this.priority, this.job, this.state.snapshot, evicted);
    let cpu = 0;
    let memory = 0;
    for (const c of eligible) {
      cpu += c.resources.cpuMillis;
      memory += c.resources.memoryBytes;
    }
    this.victimStart[position] = this.victims.append(eligible, machine);
    this.victimCount[position] = eligible.length;
    this.victimCpu[position] = cpu;
    this.victimMemory[position] = memory;
  }

  // ---- keeping the indexes current --------------------------------------------------------

  /** After a claim on the candidate at `position`: the state re-reads it from the cell. */
  private record(position: number, evicted: boolean): void {
    this.state.record(position);
    if (evicted) {
      this.evictedMachines.add((this.candidates[position] as Machine).id);
      this.victimStart[position] = -1;
    }
  }

  private exclude(position: number, name: string): void {
    this.excluded[position] = 1;
    this.excludedRuledOut.set(name, (this.excludedRuledOut.get(name) ?? 0) + 1);
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** A random step in [1, n) coprime to n (1 when n < 3), so `start + k * step mod n` is a permutation. */
function coprimeStride(n: number, random: Random): number {
  if (n < 3) return 1;
  let stride = 1 + random.int(n - 1);
  while (gcd(stride, n) !== 1) stride = stride === n - 1 ? 1 : stride + 1;
  return stride;
}
