/**
 * Feasibility filters: small named predicates a machine must pass to receive a task.
 *
 * Two kinds, because they change at different rates:
 * - static filters depend only on the machine record and the job's constraints (attribute
 *   `equals` / `in` / `not-in`, the value list of a `spread`, unknown operators, schedulable), so
 *   the policy runs them once per call over all machines;
 * - dynamic filters (`max-per-machine N`, `cpu`, `memory`) depend on what this attempt already
 *   claimed, so they run per task, on plain per-attempt counters (see policy.ts).
 *
 * A filter's `name` is what users see in `ruledOut` (`attribute zone in [a,b]`, `cpu`, ...):
 * keep names short, stable, and derived only from the constraint so equal constraints of
 * different jobs read the same.
 */
import type { Constraint, Machine } from '@omega/cell-state';

/** A filter that depends only on the machine record. */
export interface StaticFilter {
  readonly name: string;
  /** Whether the machine may receive the job's tasks. Must not allocate: runs once per machine. */
  readonly passes: (machine: Machine) => boolean;
}

/** `max-per-machine`: at most `limit` live instances of the job on one machine. */
export interface MaxPerMachineFilter {
  readonly name: string;
  readonly limit: number;
}

/** A `spread` constraint: balance the job's instances over the values of `attribute`. */
export interface SpreadRule {
  readonly attribute: string;
  /** When present, only machines with one of these values are eligible (and balanced over). */
  readonly values: ReadonlySet<string> | undefined;
}

/** The job's constraints compiled for placement. */
export interface CompiledConstraints {
  /**
   * `unknown constraint operator` first when the job has one, then `unschedulable`, then the
   * attribute filters in the job's constraint order.
   */
  readonly staticFilters: readonly StaticFilter[];
  readonly maxPerMachine: readonly MaxPerMachineFilter[];
  /** In the job's constraint order: the first has precedence (lexicographic balancing). */
  readonly spreads: readonly SpreadRule[];
}

/** Name of the filter a constraint with an operator this version does not know becomes. */
export const UNKNOWN_OPERATOR = 'unknown constraint operator';
/** Name of the filter for machines marked unschedulable. */
export const UNSCHEDULABLE = 'unschedulable';
/** Name of the filter for a job whose task resources are not valid integers. */
export const INVALID_RESOURCES = 'invalid task resources';
/** Names of the resource filters. */
export const CPU = 'cpu';
export const MEMORY = 'memory';

/**
 * The machine's value of `name`, or `undefined` when it has none. Own properties only: an
 * attribute called `constructor` must not find Object.prototype's.
 */
export function attributeOf(machine: Machine, name: string): string | undefined {
  return Object.hasOwn(machine.attributes, name) ? machine.attributes[name] : undefined;
}

/** `[a,b]`; tolerates the missing list of a foreign record. */
const list = (values: readonly string[] | undefined): string => `[${Array.isArray(values) ? values.join(',') : ''}]`;

/** The `ruledOut` name of a constraint (whether or not it becomes a filter). Never throws. */
export function constraintName(c: Constraint): string {
  switch (c.operator) {
    case 'equals':
      return `attribute ${c.attribute} equals ${String(c.values?.[0])}`;
    case 'in':
      return `attribute ${c.attribute} in ${list(c.values)}`;
    case 'not-in':
      return `attribute ${c.attribute} not-in ${list(c.values)}`;
    case 'spread':
      return Array.isArray(c.values) && c.values.length > 0 ? `spread ${c.attribute} over ${list(c.values)}` : `spread ${c.attribute}`;
    case 'max-per-machine':
      return `max-per-machine ${c.limit}`;
    default:
      return UNKNOWN_OPERATOR;
  }
}

const unschedulable: StaticFilter = { name: UNSCHEDULABLE, passes: (m) => m.schedulable };
/** A filter that rules out every machine (the job cannot be interpreted). */
export const ruleOutAll = (name: string): StaticFilter => ({ name, passes: () => false });

/**
 * Compiles the job's constraints. Never throws: a constraint this version cannot interpret (an
 * operator unknown after decoding, `undefined` fields of a foreign record) becomes a filter that
 * rules out every machine under a name that says why, so the job is reported unschedulable
 * instead of crashing the scheduler or being placed against its owner's wishes.
 */
export function compileConstraints(constraints: readonly Constraint[] | undefined): CompiledConstraints {
  const staticFilters: StaticFilter[] = [unschedulable];
  let unknown = false;
  const maxPerMachine: MaxPerMachineFilter[] = [];
  const spreads: SpreadRule[] = [];
  for (const c of constraints ?? []) {
    const name = constraintName(c);
    const attribute = typeof c.attribute === 'string' ? c.attribute : '';
    const values = Array.isArray(c.values) ? c.values : [];
    switch (c.operator) {
      case 'equals': {
        const wanted = values[0];
        staticFilters.push({ name, passes: (m) => wanted !== undefined && attributeOf(m, attribute) === wanted });
        break;
      }
      case 'in': {
        const set = new Set(values);
        staticFilters.push({
          name,
          passes: (m) => {
            const v = attributeOf(m, attribute);
            return v !== undefined && set.has(v);
          },
        });
        break;
      }
      case 'not-in': {
        const set = new Set(values);
        staticFilters.push({
          name,
          passes: (m) => {
            const v = attributeOf(m, attribute);
            return v === undefined || !set.has(v);
          },
        });
        break;
      }
      case 'spread': {
        if (values.length === 0) {
          spreads.push({ attribute, values: undefined });
          break;
        }
        // Spreading "over [a,b]" places only on a and b: the values are the groups, so a machine
        // outside them has no group to balance into.
        const set = new Set(values);
        spreads.push({ attribute, values: set });
        staticFilters.push({ name, passes: (m) => set.has(attributeOf(m, attribute) ?? '') });
        break;
      }
      case 'max-per-machine':
        // A limit that is not a positive integer (a foreign record) allows nothing rather than
        // everything: NaN or 0 compare false against every count.
        maxPerMachine.push({ name, limit: Number.isSafeInteger(c.limit) && c.limit > 0 ? c.limit : 0 });
        break;
      default:
        unknown = true;
        break;
    }
  }
  // First, so that its count is every machine considered and users see the real reason.
  if (unknown) staticFilters.unshift(ruleOutAll(UNKNOWN_OPERATOR));
  return { staticFilters, maxPerMachine, spreads };
}

/** The first static filter that rules the machine out, or `undefined` when it passes them all. */
export function firstFailing(filters: readonly StaticFilter[], machine: Machine): string | undefined {
  for (const f of filters) if (!f.passes(machine)) return f.name;
  return undefined;
}
