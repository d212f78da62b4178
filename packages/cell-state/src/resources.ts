/**
 * Resource arithmetic and THE resource-fit check. Every fit decision in Omega goes through
 * {@link resourceShortage}: the policies' resource filter (scheduler-core's placement core), the
 * PrivateCell's `claim`, the commit's resource-fit re-check ({@link claimsShortage}) and the
 * loop's "too large for every machine". One function, so the scheduler and the commit can never
 * disagree about whether a claim fits (Nomad's `AllocsFit` lesson: disagreement livelocks plans).
 */
import { InvalidRecordError } from './codec.js';
import { isTerminal, type Claim, type Machine, type Resources, type Task, type TaskId } from './types.js';

export function addResources(a: Resources, b: Resources): Resources {
  return { cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes };
}

export function subtractResources(a: Resources, b: Resources): Resources {
  return { cpuMillis: a.cpuMillis - b.cpuMillis, memoryBytes: a.memoryBytes - b.memoryBytes };
}

/** A resource a request lacks; also the name of the filter users see in `ruledOut`. */
export type Shortage = 'cpu' | 'memory';

/**
 * The fit check: the first resource (`cpu`, then `memory`) of which a request of `cpuMillis` /
 * `memoryBytes` asks more than `freeCpuMillis` / `freeMemoryBytes` leave, or `undefined` when it
 * fits in every resource. Plain numbers, so a scan over typed arrays calls it without allocating.
 * A new resource is added here, and every fit decision follows.
 */
export function resourceShortage(cpuMillis: number, memoryBytes: number, freeCpuMillis: number, freeMemoryBytes: number): Shortage | undefined {
  if (cpuMillis > freeCpuMillis) return 'cpu';
  if (memoryBytes > freeMemoryBytes) return 'memory';
  return undefined;
}

/** `request` fits within `free` in every resource ({@link resourceShortage} finds nothing short). */
export function fitsWithin(request: Resources, free: Resources): boolean {
  return resourceShortage(request.cpuMillis, request.memoryBytes, free.cpuMillis, free.memoryBytes) === undefined;
}

/**
 * Whether `claims` together fit in `capacity` (the commit's check of a machine's claims after a
 * transaction): {@link resourceShortage} of their sum against the capacity.
 */
export function claimsShortage(capacity: Resources, claims: readonly Claim[]): Shortage | undefined {
  let cpuMillis = 0;
  let memoryBytes = 0;
  for (const c of claims) {
    cpuMillis += c.resources.cpuMillis;
    memoryBytes += c.resources.memoryBytes;
  }
  return resourceShortage(cpuMillis, memoryBytes, capacity.cpuMillis, capacity.memoryBytes);
}

/**
 * The commit's re-check of claims tried one after another on one machine: for each candidate in
 * order, whether it fits on `capacity` next to `claims` and the candidates accepted before it.
 * Exactly `claimsShortage(capacity, [...claims, ...accepted, candidate]) === undefined` for each
 * (the same sums, added in the same order, judged by {@link resourceShortage}), but with a
 * running sum: linear in claims plus candidates instead of quadratic.
 */
export function fitInOrder(capacity: Resources, claims: readonly Claim[], candidates: readonly Resources[]): boolean[] {
  let cpuMillis = 0;
  let memoryBytes = 0;
  for (const c of claims) {
    cpuMillis += c.resources.cpuMillis;
    memoryBytes += c.resources.memoryBytes;
  }
  return candidates.map((r) => {
    const cpu = cpuMillis + r.cpuMillis;
    const memory = memoryBytes + r.memoryBytes;
    if (resourceShortage(cpu, memory, capacity.cpuMillis, capacity.memoryBytes) !== undefined) return false;
    cpuMillis = cpu;
    memoryBytes = memory;
    return true;
  });
}

/** What is wrong with some resources: the field below them (`''` for the whole) and the problem. */
export interface ResourcesProblem {
  readonly field: '' | 'cpuMillis' | 'memoryBytes';
  readonly problem: string;
}

/**
 * The first problem of some resources (integers, not negative, within safe range; `positive`
 * also requires at least one above zero: a claim must ask for something), or undefined. Builds
 * no string when there is none: the commit asks it of every claim it is given.
 */
export function resourcesProblem(r: Resources, options: { positive?: boolean } = {}): ResourcesProblem | undefined {
  for (const name of ['cpuMillis', 'memoryBytes'] as const) {
    const value = r[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) return { field: name, problem: `must be an integer, got ${String(value)}` };
    if (value < 0) return { field: name, problem: `must be >= 0, got ${value}` };
  }
  if (options.positive === true && r.cpuMillis === 0 && r.memoryBytes === 0) return { field: '', problem: 'must ask for some cpuMillis or memoryBytes' };
  return undefined;
}

/** Throws {@link InvalidRecordError} naming `field` (and the resource) for {@link resourcesProblem}'s problem. */
export function checkResources(field: string, r: Resources, options: { positive?: boolean } = {}): void {
  const found = resourcesProblem(r, options);
  if (found !== undefined) throw new InvalidRecordError(found.field === '' ? field : `${field}.${found.field}`, found.problem);
}

/** Looks up the current record of a task; `undefined` when not known. */
export type TaskLookup = (id: TaskId) => Task | undefined;

/**
 * Whether a claim still counts against its machine, judged from what `lookup` knows. A claim is
 * dead once its task moved on to a later attempt, or ended at the claim's attempt; both are
 * final, so a view that is behind can only think a dead claim live (never the reverse). Unknown
 * tasks count as live: the view may not have seen the claim's task record yet.
 */
export function isClaimLive(claim: Claim, lookup: TaskLookup): boolean {
  return isClaimLiveGiven(claim, lookup(claim.taskId));
}

/**
 * {@link isClaimLive}'s judgement given what is known of the claim's task (undefined: nothing),
 * for a caller that has looked the task up itself. Reads only its attempt, claim id and state.
 */
export function isClaimLiveGiven(claim: Claim, task: Pick<Task, 'attempt' | 'claimId' | 'state'> | undefined): boolean {
  if (task === undefined) return true;
  if (task.attempt > claim.attempt) return false;
  if (task.attempt === claim.attempt && task.claimId === claim.id && isTerminal(task.state)) return false;
  return true;
}

/** The claims of `machine` that are live according to `lookup`. */
export function liveClaims(machine: Machine, lookup: TaskLookup): Claim[] {
  return machine.claims.filter((c) => isClaimLive(c, lookup));
}

/** Sum of the live claims' resources on `machine`. */
export function usedResources(machine: Machine, lookup: TaskLookup): Resources {
  let cpuMillis = 0;
  let memoryBytes = 0;
  for (const claim of machine.claims) {
    if (!isClaimLive(claim, lookup)) continue;
    cpuMillis += claim.resources.cpuMillis;
    memoryBytes += claim.resources.memoryBytes;
  }
  return { cpuMillis, memoryBytes };
}

/** Capacity minus the live claims (never below zero per resource only if the machine is sound). */
export function freeResources(machine: Machine, lookup: TaskLookup): Resources {
  return subtractResources(machine.capacity, usedResources(machine, lookup));
}
