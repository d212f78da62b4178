/**
 * `spread` over an attribute: each new instance goes to the value group (rack, zone, ...) that
 * has the fewest live instances of the job, counting the snapshot and this attempt's claims.
 * Machines without the attribute form their own group `''`. Several spread constraints balance
 * lexicographically: the first decides, the next breaks its ties, and the policy's ranking breaks
 * what remains. With `values`, spreading "over [a,b]" also places only on a and b (the values are
 * the groups, so a machine outside them has no group to balance into): that part is a static
 * filter; the balancing is a {@link SpreadRule} the policies' selection applies through
 * {@link SpreadGroups} (a tier, not a pass/fail: the emptiest group may be full).
 *
 * Groups are numbered once per call and every candidate machine gets its group number in a typed
 * array, so comparing two machines' "spread tier" in the placement loop is a few array reads.
 */
import type { CellSnapshot, Machine, MachineId } from '@omega/cell-state';
import { attributeOf, valueList } from './filter-attribute.js';
import type { ConstraintFilters, SpreadRule } from './filter.js';

/** `spread A` or `spread A over [V,...]`. */
export const spreadFilters: ConstraintFilters = {
  name: (c) => (Array.isArray(c.values) && c.values.length > 0 ? `spread ${c.attribute} over ${valueList(c.values)}` : `spread ${c.attribute}`),
  compile: (c, name) => {
    const attribute = typeof c.attribute === 'string' ? c.attribute : '';
    const values = Array.isArray(c.values) ? c.values : [];
    if (values.length === 0) return { spread: { attribute, values: undefined } };
    const set = new Set(values);
    return { spread: { attribute, values: set }, static: { name, check: (m) => (set.has(attributeOf(m, attribute) ?? '') ? undefined : name) } };
  },
};

/** One spread constraint's groups over the candidate machines of one placement call. */
export class SpreadGroups {
  /** Group number of each candidate, by candidate position. */
  private readonly groupOf: Int32Array;
  /** Live instances of the job per group. */
  private readonly counts: Int32Array;
  private readonly groupIds = new Map<string, number>();

  /**
   * @param candidates the machines that passed the static filters, in the policy's order
   * @param instances live instances of the job per machine (see `liveInstances`); instances on
   *   machines outside `candidates` still count toward their value's group
   */
  constructor(
    readonly rule: SpreadRule,
    candidates: readonly Machine[],
    snapshot: CellSnapshot,
    instances: ReadonlyMap<MachineId, number>,
  ) {
    this.groupOf = new Int32Array(candidates.length);
    for (let i = 0; i < candidates.length; i++) {
      const value = attributeOf(candidates[i] as Machine, rule.attribute) ?? '';
      let id = this.groupIds.get(value);
      if (id === undefined) {
        id = this.groupIds.size;
        this.groupIds.set(value, id);
      }
      this.groupOf[i] = id;
    }
    this.counts = new Int32Array(this.groupIds.size);
    for (const [machineId, n] of instances) {
      const machine = snapshot.machine(machineId);
      if (machine === undefined) continue;
      // Instances in groups with no candidate machine cannot change where the next one goes.
      const id = this.groupIds.get(attributeOf(machine, rule.attribute) ?? '');
      if (id !== undefined) this.counts[id] = (this.counts[id] ?? 0) + n;
    }
  }

  /** Live instances of the job in the group of the candidate at `position`. */
  count(position: number): number {
    return this.counts[this.groupOf[position] as number] as number;
  }

  /** Records one more instance placed on the candidate at `position`. */
  add(position: number): void {
    const id = this.groupOf[position] as number;
    this.counts[id] = (this.counts[id] as number) + 1;
  }

  /**
   * The smallest group count: no candidate can do better on this constraint. (A group's machines
   * may all be full, so it is a bound, not always achievable.)
   */
  minCount(): number {
    let min = Infinity;
    for (const c of this.counts) if (c < min) min = c;
    return min;
  }
}

/**
 * Compares the spread tiers of two candidates: negative when `a` is in emptier groups (better),
 * positive when `b` is, 0 when equal on every spread constraint.
 */
export function compareTier(spreads: readonly SpreadGroups[], a: number, b: number): number {
  for (const s of spreads) {
    const d = s.count(a) - s.count(b);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Fills `bound` with each constraint's smallest group count and returns it. A candidate whose
 * counts equal the bound on every constraint is at the best tier any candidate could have.
 */
export function tierBound(spreads: readonly SpreadGroups[], bound: Int32Array): Int32Array {
  for (let j = 0; j < spreads.length; j++) bound[j] = (spreads[j] as SpreadGroups).minCount();
  return bound;
}

/** Whether the candidate at `position` is at `bound` on every spread constraint. */
export function atBound(spreads: readonly SpreadGroups[], bound: Int32Array, position: number): boolean {
  for (let j = 0; j < spreads.length; j++) if ((spreads[j] as SpreadGroups).count(position) !== bound[j]) return false;
  return true;
}
