/**
 * The two small interfaces every feasibility filter implements, for both policies (batch and
 * service). A filter has a name (what users see in a job's `ruledOut`: `attribute zone in [a]`,
 * `cpu`, `max-per-machine 1`) and a check that says pass or gives its reason.
 *
 *   machines ──static filters (once per call)──▶ candidates ──dynamic filters (per task)──▶ feasible
 *
 * - A **static** filter depends only on the machine record and the job's spec (attribute
 *   equals / in / not-in, the value list of a spread, schedulable), so a placement call runs it
 *   once per machine.
 * - A **dynamic** filter depends on what this attempt has claimed so far (resource fit,
 *   max-per-machine), so it runs per task on the call's {@link PlacementView}, which is kept
 *   current after every claim.
 *
 * Adding a constraint is one filter file (its name, its compile step and its check) plus its spec
 * field; `job-filters.ts` lists it under its operator. Filters are compiled once per job spec and
 * shared by every call for that spec, so they hold no per-call state.
 */
import { acceptsPlacements, type Constraint, type Machine } from '@omega/cell-state';

/** A filter that depends only on the machine record (and the job spec it was compiled from). */
export interface StaticFilter {
  readonly name: string;
  /** `undefined` when the machine passes; otherwise the reason (this filter's name). Must not allocate. */
  check(machine: Machine): string | undefined;
}

/** What a dynamic filter may read about the candidate at a position in one placement call. */
export interface PlacementView {
  /** Free millicores on the candidate now: the PrivateCell's numbers, including this attempt's claims. */
  freeCpu(position: number): number;
  /** Free bytes of memory on the candidate now, like {@link freeCpu}. */
  freeMemory(position: number): number;
  /** Live instances of the job on the candidate: the snapshot's plus this attempt's claims. */
  instances(position: number): number;
}

/** Returned by {@link DynamicFilter.check} when the candidate passes. */
export const PASS = -1;

/** A filter that depends on this attempt's claims: checked per task, per candidate. */
export interface DynamicFilter {
  /** The reasons it can give (`ruledOut` names), fixed at compile time. */
  readonly reasons: readonly string[];
  /**
   * Whether it judges room (cpu, memory): preemption may make room by evicting lower-priority
   * claims, so it looks for machines passing every filter except these.
   */
  readonly resources: boolean;
  /**
   * Whether the task's request of `cpuMillis` / `memoryBytes` may go on the candidate at
   * `position`: {@link PASS}, or the index in `reasons` of why not. Must not allocate: it runs
   * per candidate per task.
   */
  check(view: PlacementView, position: number, cpuMillis: number, memoryBytes: number): number;
}

/** A `spread` constraint: balance the job's instances over the values of `attribute`. */
export interface SpreadRule {
  readonly attribute: string;
  /** When present, only machines with one of these values are eligible (and balanced over). */
  readonly values: ReadonlySet<string> | undefined;
}

/** What one constraint contributes to its job's filters. */
export interface CompiledConstraint {
  readonly static?: StaticFilter;
  readonly dynamic?: DynamicFilter;
  readonly spread?: SpreadRule;
}

/** How one constraint operator becomes filters: one entry per operator, in its filter file. */
export interface ConstraintFilters {
  /** The `ruledOut` name of a constraint: short, stable, derived only from the constraint. Never throws. */
  name(c: Constraint): string;
  /** The constraint's filters; `name` is `name(c)`. Never throws, even on a foreign record. */
  compile(c: Constraint, name: string): CompiledConstraint;
}

/** Name of the filter for machines marked unschedulable. */
export const UNSCHEDULABLE = 'unschedulable';
/** Name of the filter a constraint with an operator this version does not know becomes. */
export const UNKNOWN_OPERATOR = 'unknown constraint operator';
/** Name of the filter for a job whose task resources are not valid integers. */
export const INVALID_RESOURCES = 'invalid task resources';

/** Name of the filter for machines an operator cordoned. */
export const CORDONED = 'cordoned';

/**
 * Machines that accept no new claims (cell-state's `acceptsPlacements`: unschedulable, or
 * cordoned). The loop withholds them already under the same names; this keeps a policy honest
 * alone, and agrees with what `PrivateCell.claim` and the commit refuse.
 */
export const schedulableFilter: StaticFilter = {
  name: UNSCHEDULABLE,
  check: (m) => (acceptsPlacements(m) ? undefined : m.schedulable ? CORDONED : UNSCHEDULABLE),
};

/** A filter that rules out every machine under `name` (the job cannot be interpreted). */
export function ruleOutAll(name: string): StaticFilter {
  return { name, check: () => name };
}

/** The first static filter that rules the machine out, or `undefined` when it passes them all. */
export function firstFailing(filters: readonly StaticFilter[], machine: Machine): string | undefined {
  for (const f of filters) {
    const reason = f.check(machine);
    if (reason !== undefined) return reason;
  }
  return undefined;
}
