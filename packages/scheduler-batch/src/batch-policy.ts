/**
 * The batch policy: cheap placement, as Omega's batch scheduler does it. Each task goes on a
 * machine found by
 * - **randomized first fit**: start at a random offset in the offered machine list and
 *   take the first machine where the task fits; or
 * - **power-of-two choices**: find two feasible machines that way (two random starts) and take the
 *   one with more free CPU, which balances load at the price of a second scan; or
 * - **pack** (default): one random start per job, then each task on the first machine that fits from where
 *   the previous task went, so a job fills a few machines instead of touching one per task (bin
 *   packing, as Nomad's default). Its commits write a few machine records instead of hundreds,
 *   collide with other schedulers' commits far less often, and leave whole machines free.
 *
 * The random start spreads concurrent schedulers over the cell (plain first fit would send them
 * all to the same machines and make them conflict). The Omega paper's simulator places every task
 * by randomized first fit; the simulator here does too. Fit is judged by `PrivateCell.fits`, the
 * same code the commit re-checks with. Priorities act through the loop's job order; the batch
 * policy never preempts. Incremental by default; all-or-nothing (gang) when the job asks, which
 * the loop enforces (it commits a gang only when every task got a claim).
 */
import type { Machine, MachineId, Resources, TransactionMode } from '@omega/cell-state';
import type { PlaceInput, PlaceOutcome, PlacementPolicy } from '@omega/scheduler-core';

export type BatchChoice = 'first-fit' | 'power-of-two' | 'pack';
export const BATCH_CHOICES: readonly BatchChoice[] = ['first-fit', 'power-of-two', 'pack'];

export interface BatchPolicyOptions {
  /** How a machine is chosen among those that fit. Default `pack`. */
  readonly choice?: BatchChoice;
  /** Transaction mode for jobs whose commit mode is `default`. Default `incremental`. */
  readonly defaultTransactionMode?: TransactionMode;
}

/** A batch option was invalid; `option` names it. */
export class BatchOptionsError extends Error {
  constructor(
    readonly option: string,
    problem: string,
  ) {
    super(`${option}: ${problem}`);
    this.name = 'BatchOptionsError';
  }
}

const NOTHING_RULED_OUT: ReadonlyMap<string, number> = new Map();

/**
 * Builds the batch policy. Options are checked here, so a bad one fails at startup with
 * {@link BatchOptionsError}. The policy is synchronous, keeps no state between calls, draws
 * randomness only from `input.random` and claims only on `input.cell`.
 */
export function batchPolicy(options: BatchPolicyOptions = {}): PlacementPolicy {
  const choice = options.choice ?? 'pack';
  if (!BATCH_CHOICES.includes(choice)) throw new BatchOptionsError('choice', `must be one of ${BATCH_CHOICES.join(', ')}, got ${JSON.stringify(choice)}`);
  const mode = options.defaultTransactionMode ?? 'incremental';
  if (mode !== 'incremental' && mode !== 'all-or-nothing') {
    throw new BatchOptionsError('defaultTransactionMode', `must be incremental or all-or-nothing, got ${JSON.stringify(mode)}`);
  }
  return { kind: 'batch', defaultTransactionMode: mode, place: (input) => placeBatch(input, choice) };
}

/**
 * Places `input.tasks` in order. Stops at the first task that fits nowhere: a job's tasks are
 * identical and the cell only filled up since, so every later task would fail the same way.
 * `ruledOut` is that task's breakdown over the offered machines, each counted once under the
 * first resource it lacks (`cpu`, then `memory`); empty when every task was placed.
 */
export function placeBatch(input: PlaceInput, choice: BatchChoice): PlaceOutcome {
  const request = input.job.spec.task.resources;
  const priority = input.job.spec.priority;
  const n = Math.max(1, input.machines.length);
  let cursor = choice === 'pack' ? input.random.int(n) : 0;
  let placed = 0;
  for (const task of input.tasks) {
    let target: MachineId | undefined;
    if (choice === 'power-of-two') target = twoChoices(input, request);
    else {
      const at = firstFit(input, request, choice === 'pack' ? cursor : input.random.int(n));
      if (at !== undefined) {
        cursor = at;
        target = (input.machines[at] as Machine).id;
      }
    }
    if (target === undefined) return { placed, ruledOut: ruledOut(input, request) };
    const out = input.cell.claim(target, { taskId: task.taskId, resources: request, priority });
    // A refusal here is about the task (already live or claimed), not the machine: go on.
    if (out.refused === undefined) placed++;
  }
  return { placed, ruledOut: NOTHING_RULED_OUT };
}

/** The index of the first machine from `start` (wrapping around) where `request` fits, other than `skip`. */
function firstFit(input: PlaceInput, request: Resources, start: number, skip?: MachineId): number | undefined {
  const machines = input.machines;
  const n = machines.length;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const m = machines[i] as Machine;
    if (m.id !== skip && input.cell.fits(m.id, request)) return i;
  }
  return undefined;
}

/** Two feasible machines from two random starts; the one with more free CPU (the first on a tie). */
function twoChoices(input: PlaceInput, request: Resources): MachineId | undefined {
  const n = Math.max(1, input.machines.length);
  const a = firstFit(input, request, input.random.int(n));
  if (a === undefined) return undefined;
  const first = (input.machines[a] as Machine).id;
  const b = firstFit(input, request, input.random.int(n), first);
  if (b === undefined) return first;
  const second = (input.machines[b] as Machine).id;
  return input.cell.free(second).cpuMillis > input.cell.free(first).cpuMillis ? second : first;
}

function ruledOut(input: PlaceInput, request: Resources): ReadonlyMap<string, number> {
  let cpu = 0;
  let memory = 0;
  for (const m of input.machines) {
    const free = input.cell.free(m.id);
    if (request.cpuMillis > free.cpuMillis) cpu++;
    else if (request.memoryBytes > free.memoryBytes) memory++;
  }
  const out = new Map<string, number>();
  if (cpu > 0) out.set('cpu', cpu);
  if (memory > 0) out.set('memory', memory);
  return out;
}
