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
 * by randomized first fit; the simulator here does too. "Fits" means passes the shared placement
 * core's filters (scheduler-core's `PlacementState`): the job's constraints as the service
 * policy reads them, and the resource fit the commit re-checks with. Priorities act through the
 * loop's job order; the batch policy never preempts. Incremental by default; all-or-nothing
 * (gang) when the job asks, which the loop enforces (it commits a gang only when every task got
 * a claim).
 */
import type { Machine, TransactionMode } from '@omega/cell-state';
import { atBound, compareTier, PlacementState, tierBound, type PlaceInput, type PlaceOutcome, type PlacementPolicy } from '@omega/scheduler-core';

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
 * Places `input.tasks` in order, each on a machine that passes every filter of the shared
 * placement core (the job's constraints, then max-per-machine and the resource fit: see
 * scheduler-core's `PlacementState`), chosen by `choice`; with spread constraints, on the
 * feasible machine in the emptiest spread groups instead (first found from a random start).
 * Stops at the first task that fits nowhere: a job's tasks are identical and the cell only filled
 * up since, so every later task would fail the same way. `ruledOut` is that task's breakdown over
 * the offered machines, each counted once under the first filter that ruled it out; empty when
 * every task was placed.
 */
export function placeBatch(input: PlaceInput, choice: BatchChoice): PlaceOutcome {
  const state = new PlacementState(input);
  const request = state.filters.request;
  const priority = input.job.spec.priority;
  const n = Math.max(1, state.candidates.length);
  const bound = new Int32Array(state.spreads.length);
  let cursor = choice === 'pack' ? input.random.int(n) : 0;
  let placed = 0;
  for (const task of input.tasks) {
    state.resetCounts();
    let at: number | undefined;
    if (state.spreads.length > 0) at = spreadFit(state, input.random.int(n), bound);
    else if (choice === 'power-of-two') at = twoChoices(state, input.random.int(n), input.random.int(n));
    else {
      at = firstFit(state, choice === 'pack' ? cursor : input.random.int(n));
      if (at !== undefined) cursor = at;
    }
    if (at === undefined) return { placed, ruledOut: state.ruledOut() };
    const out = input.cell.claim((state.candidates[at] as Machine).id, { taskId: task.taskId, resources: request, priority });
    // A refusal here is about the task (already live or claimed), not the machine: the filters
    // judge the machine with the cell's own numbers and fit check. Go on.
    if (out.refused === undefined) {
      placed++;
      state.record(at);
    }
  }
  return { placed, ruledOut: NOTHING_RULED_OUT };
}

/** The first feasible candidate from `start` (wrapping around), other than `skip`. */
function firstFit(state: PlacementState, start: number, skip?: number): number | undefined {
  const n = state.candidates.length;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    if (i !== skip && state.feasible(i)) return i;
  }
  return undefined;
}

/** Two feasible candidates from two random starts; the one with more free CPU (the first on a tie). */
function twoChoices(state: PlacementState, startA: number, startB: number): number | undefined {
  const a = firstFit(state, startA);
  if (a === undefined) return undefined;
  const b = firstFit(state, startB, a);
  if (b === undefined) return a;
  return state.freeCpu(b) > state.freeCpu(a) ? b : a;
}

/**
 * The feasible candidate in the emptiest spread groups (lexicographic over the job's spread
 * constraints), the first such from `start`; stops as soon as one is at the best tier any
 * candidate could have. A full scan at worst: spread jobs pay for balance.
 */
function spreadFit(state: PlacementState, start: number, bound: Int32Array): number | undefined {
  const spreads = state.spreads;
  tierBound(spreads, bound);
  const n = state.candidates.length;
  let best: number | undefined;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    if (!state.feasible(i)) continue;
    if (best === undefined || compareTier(spreads, i, best) < 0) best = i;
    if (atBound(spreads, bound, i)) break;
  }
  return best;
}
