/**
 * What the loop tells users about a job (`status/<job>`): which machines it offered, why tasks
 * could not be placed (how many machines each filter ruled out), and the reason strings. Kept
 * apart from the loop so the wording is in one place and testable.
 */
import { acceptsPlacements, resourceShortage, specRequirements, type CellSnapshot, type Deployment, type JobSpec, type JobState, type JobStatus, type Machine, type Resources } from '@omega/cell-state';
import { attributeEquals } from './filter-attribute.js';

/** One line of a status's `ruledOut`: `{filter: 'cpu', machines: 50}`. */
export interface FilterCount {
  readonly filter: string;
  readonly machines: number;
}

/** The machines offered to a policy, and how many the loop itself kept back and why. */
export interface OfferedMachines {
  /** Alive and schedulable, in the snapshot's (registration) order. */
  readonly machines: readonly Machine[];
  /** Filters the loop applied before the policy: `not alive`, `unschedulable`, `cordoned`. */
  readonly withheld: readonly FilterCount[];
}

/** Splits a snapshot's machines into those offered to policies and those withheld. O(machines). */
export function offeredMachines(snapshot: CellSnapshot): OfferedMachines {
  const machines: Machine[] = [];
  let notAlive = 0;
  let unschedulable = 0;
  let cordoned = 0;
  for (const m of snapshot.machines()) {
    if (snapshot.alive(m.id) === undefined) notAlive++;
    else if (!m.schedulable) unschedulable++;
    else if (!acceptsPlacements(m)) cordoned++;
    else machines.push(m);
  }
  const withheld: FilterCount[] = [];
  if (notAlive > 0) withheld.push({ filter: 'not alive', machines: notAlive });
  if (unschedulable > 0) withheld.push({ filter: 'unschedulable', machines: unschedulable });
  if (cordoned > 0) withheld.push({ filter: 'cordoned', machines: cordoned });
  return { machines, withheld };
}

/**
 * The offered machines that meet what the job's task spec requires of a machine (cell-state's
 * `specRequirements`: `network: none` needs `omega.isolation.network-none=true`), the others
 * withheld under the requirement's name, so every policy places only where the agent will run
 * the task. Returns `offered` itself when the spec requires nothing (the common case).
 */
export function offeredForJob(offered: OfferedMachines, spec: Pick<JobSpec, 'task'>): OfferedMachines {
  const requirements = specRequirements(spec);
  if (requirements.length === 0) return offered;
  let machines: readonly Machine[] = offered.machines;
  const withheld = [...offered.withheld];
  for (const r of requirements) {
    const filter = attributeEquals(r.name, r.attribute, r.value);
    const meets = machines.filter((m) => filter.check(m) === undefined);
    if (meets.length < machines.length) withheld.push({ filter: r.name, machines: machines.length - meets.length });
    machines = meets;
  }
  return { machines, withheld };
}

/** The loop's withheld machines, then the policy's filters, largest first (stable for equal counts). */
export function mergeRuledOut(withheld: readonly FilterCount[], policy: ReadonlyMap<string, number>): FilterCount[] {
  const fromPolicy = [...policy].filter(([, n]) => n > 0).map(([filter, machines]) => ({ filter, machines }));
  fromPolicy.sort((a, b) => b.machines - a.machines);
  return [...withheld, ...fromPolicy];
}

/** `cpu: 50 machines, memory: 2 machines`. */
export function formatRuledOut(ruledOut: readonly FilterCount[]): string {
  return ruledOut.map((r) => `${r.filter}: ${r.machines} machine${r.machines === 1 ? '' : 's'}`).join(', ');
}

/** Why an attempt left tasks unplaced, in words. */
export function noFitReason(toPlace: number, claimed: number, gang: boolean, ruledOut: readonly FilterCount[], offered: number): string {
  const head = gang
    ? `all-or-nothing job: only ${claimed} of ${toPlace} tasks fit, so none was placed`
    : `${toPlace - claimed} of ${toPlace} tasks could not be placed`;
  if (offered === 0) return `${head}: no machine is alive and schedulable${ruledOut.length > 0 ? ` (${formatRuledOut(ruledOut)})` : ''}`;
  return ruledOut.length > 0 ? `${head}: ${formatRuledOut(ruledOut)}` : head;
}

/** Why a job whose task no machine could hold is given up (see {@link tooLargeForEveryMachine}). */
export function tooLargeReason(tooLarge: readonly FilterCount[]): string {
  return `a task needs more than any machine has: ${tooLarge.map((f) => `${f.filter} too small on ${f.machines} machines`).join(', ')}`;
}

/**
 * When no registered machine could hold one task even empty: the count of machines too small,
 * each under the first resource it lacks (cpu, then memory). `undefined` when some machine is
 * large enough, or when there are no machines at all (a cell still starting up is not a reason
 * to give up).
 */
export function tooLargeForEveryMachine(snapshot: CellSnapshot, request: Resources): FilterCount[] | undefined {
  let cpu = 0;
  let memory = 0;
  let machines = 0;
  for (const m of snapshot.machines()) {
    machines++;
    const short = resourceShortage(request.cpuMillis, request.memoryBytes, m.capacity.cpuMillis, m.capacity.memoryBytes);
    if (short === 'cpu') cpu++;
    else if (short === 'memory') memory++;
    else return undefined;
  }
  if (machines === 0) return undefined;
  const out: FilterCount[] = [];
  if (cpu > 0) out.push({ filter: 'cpu', machines: cpu });
  if (memory > 0) out.push({ filter: 'memory', machines: memory });
  return out;
}

/** The fields of a status record the loop chooses; the rest come from the job's book entry. */
export interface StatusWords {
  readonly state: JobState;
  readonly reason: string;
  readonly ruledOut: readonly FilterCount[];
}

/** A key that changes exactly when a status would say something different (to skip rewrites). */
export function statusKey(words: StatusWords): string {
  return `${words.state}\u0000${words.reason}\u0000${formatRuledOut(words.ruledOut)}`;
}

/** A key that changes exactly when a rolling update's state would say something different. */
export function deploymentKey(d: Deployment | undefined): string {
  return d === undefined ? '' : `\u0000${d.version}/${d.state}/${d.healthy}/${d.updated}/${d.total}/${d.progressAtMs}/${d.lastGoodVersion}/${d.reason}`;
}

/** The key of a stored status, so a new owner does not rewrite what its predecessor wrote. */
export function storedStatusKey(status: JobStatus | undefined): string {
  return status === undefined ? '' : statusKey(status) + deploymentKey(status.deployment);
}

/** How the reason of an abandoned job's `unschedulable` status starts (see JobActions.abandon). */
export const ABANDONED_REASON_PREFIXES: readonly string[] = ['abandoned after ', 'a task needs more than any machine has'];

/**
 * Whether a status says its owner gave the job up (as opposed to `unschedulable` while still
 * retrying). For benchmarks counting abandoned jobs (BENCH.md) from the stored statuses.
 */
export function isAbandonedStatus(status: Pick<JobStatus, 'state' | 'reason'> | undefined): boolean {
  return status?.state === 'unschedulable' && ABANDONED_REASON_PREFIXES.some((p) => status.reason.startsWith(p));
}

/** Job states after which no scheduler works on the job again. */
export function isFinished(state: JobState | undefined): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'killed';
}
