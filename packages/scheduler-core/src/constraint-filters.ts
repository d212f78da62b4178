/**
 * A job's feasibility filters, compiled once per job spec: the one table from constraint operator
 * to filter (every operator of cell-state's `CONSTRAINT_OPERATORS` must have an entry, or this
 * file does not compile) and {@link compileJobFilters}, which both policies call.
 *
 *   spec.constraints ──CONSTRAINT_FILTERS[operator]──▶ static filters   (unknown operator ·
 *                                                      unschedulable · attribute … · spread … over […])
 *                                                   ▶ dynamic filters  (max-per-machine N … · cpu · memory)
 *                                                   ▶ spread rules     (balancing, for the policy's selection)
 *
 * Compiling never throws: a constraint this version cannot interpret (an operator unknown after
 * decoding, `undefined` fields of a foreign record) becomes a filter that rules out every machine
 * under a name that says why, so the job is reported unschedulable instead of crashing the
 * scheduler or being placed against its owner's wishes.
 */
import type { Constraint, ConstraintOperator, JobSpec, Resources } from '@omega/cell-state';
import { equalsFilters, inFilters, notInFilters } from './filter-attribute.js';
import { maxPerMachineFilters } from './filter-max-per-machine.js';
import { resourceFilter } from './filter-resources.js';
import { spreadFilters } from './filter-spread.js';
import {
  INVALID_RESOURCES,
  ruleOutAll,
  schedulableFilter,
  UNKNOWN_OPERATOR,
  type ConstraintFilters,
  type DynamicFilter,
  type SpreadRule,
  type StaticFilter,
} from './filter.js';

/** Every constraint operator's filters. Typed over `ConstraintOperator`: a new operator without filters fails the build. */
export const CONSTRAINT_FILTERS: { readonly [O in ConstraintOperator]: ConstraintFilters } = {
  equals: equalsFilters,
  in: inFilters,
  'not-in': notInFilters,
  spread: spreadFilters,
  'max-per-machine': maxPerMachineFilters,
};

function filtersOf(operator: unknown): ConstraintFilters | undefined {
  return typeof operator === 'string' && Object.hasOwn(CONSTRAINT_FILTERS, operator) ? CONSTRAINT_FILTERS[operator as ConstraintOperator] : undefined;
}

/** The `ruledOut` name of a constraint (whether or not it becomes a filter). Never throws. */
export function constraintName(c: Constraint): string {
  return filtersOf(c.operator)?.name(c) ?? UNKNOWN_OPERATOR;
}

/** A job's filters, as every placement call for the job uses them. Immutable and shared. */
export interface JobFilters {
  /** The task's request; zero when it is not valid (then a static filter rules out everything). */
  readonly request: Resources;
  /**
   * `unknown constraint operator` first when the job has one (so its count is every machine and
   * users see the real reason), then `unschedulable`, then the constraints' static filters in the
   * job's constraint order. Just `invalid task resources` when the request is not valid.
   */
  readonly staticFilters: readonly StaticFilter[];
  /** The constraints' dynamic filters in constraint order (`max-per-machine N`), then the resource fit (`cpu`, `memory`). */
  readonly dynamicFilters: readonly DynamicFilter[];
  /** In the job's constraint order: the first has precedence (lexicographic balancing). */
  readonly spreads: readonly SpreadRule[];
  /** Whether some filter or spread reads the job's live instances per machine. */
  readonly countsInstances: boolean;
}

function validRequest(r: Resources | undefined): r is Resources {
  const ok = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  return r !== undefined && ok(r.cpuMillis) && ok(r.memoryBytes) && (r.cpuMillis > 0 || r.memoryBytes > 0);
}

const ZERO: Resources = Object.freeze({ cpuMillis: 0, memoryBytes: 0 });
const compiled = new WeakMap<object, JobFilters>();

/**
 * The job's filters. Cached per spec object (records are immutable: a changed job is a new
 * object), so a job retried or placed in many calls compiles once and the per-machine checks stay
 * a few comparisons.
 */
export function compileJobFilters(spec: Pick<JobSpec, 'task' | 'constraints'>): JobFilters {
  const cached = compiled.get(spec);
  if (cached !== undefined) return cached;
  const filters = compile(spec);
  compiled.set(spec, filters);
  return filters;
}

function compile(spec: Pick<JobSpec, 'task' | 'constraints'>): JobFilters {
  const request = spec.task?.resources;
  if (!validRequest(request)) {
    // A request that is not valid integers cannot be checked against any machine honestly.
    return { request: ZERO, staticFilters: [ruleOutAll(INVALID_RESOURCES)], dynamicFilters: [resourceFilter], spreads: [], countsInstances: false };
  }
  const staticFilters: StaticFilter[] = [schedulableFilter];
  const dynamicFilters: DynamicFilter[] = [];
  const spreads: SpreadRule[] = [];
  let unknown = false;
  for (const c of spec.constraints ?? []) {
    const filters = filtersOf(c.operator);
    if (filters === undefined) {
      unknown = true;
      continue;
    }
    const out = filters.compile(c, filters.name(c));
    if (out.static !== undefined) staticFilters.push(out.static);
    if (out.dynamic !== undefined) dynamicFilters.push(out.dynamic);
    if (out.spread !== undefined) spreads.push(out.spread);
  }
  const countsInstances = dynamicFilters.length > 0 || spreads.length > 0;
  dynamicFilters.push(resourceFilter);
  if (unknown) staticFilters.unshift(ruleOutAll(UNKNOWN_OPERATOR));
  return { request, staticFilters, dynamicFilters, spreads, countsInstances };
}
