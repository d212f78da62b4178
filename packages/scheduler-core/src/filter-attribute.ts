/**
 * Attribute constraints: `equals` (the machine's value is `values[0]`), `in` (one of `values`),
 * `not-in` (none of `values`). A machine without the attribute fails `equals` and `in` and passes
 * `not-in`. Static: they read only the machine record. The spec requirements of a task
 * (`specRequirements`: `network: none`, a named user) are attribute equalities too, and use
 * {@link attributeEquals}.
 */
import type { Constraint, Machine } from '@omega/cell-state';
import type { ConstraintFilters, StaticFilter } from './filter.js';

/**
 * The machine's value of `name`, or `undefined` when it has none. Own properties only: an
 * attribute called `constructor` must not find Object.prototype's.
 */
export function attributeOf(machine: Machine, name: string): string | undefined {
  return Object.hasOwn(machine.attributes, name) ? machine.attributes[name] : undefined;
}

/** `[a,b]`; tolerates the missing list of a foreign record. */
export const valueList = (values: readonly string[] | undefined): string => `[${Array.isArray(values) ? values.join(',') : ''}]`;

/** Machines whose `attribute` is exactly `value` pass; `name` is what `ruledOut` shows. */
export function attributeEquals(name: string, attribute: string, value: string | undefined): StaticFilter {
  return { name, check: (m) => (value !== undefined && attributeOf(m, attribute) === value ? undefined : name) };
}

const attributeName = (c: Constraint): string => (typeof c.attribute === 'string' ? c.attribute : '');
const valuesOf = (c: Constraint): readonly string[] => (Array.isArray(c.values) ? c.values : []);

/** `attribute A equals V`. */
export const equalsFilters: ConstraintFilters = {
  name: (c) => `attribute ${c.attribute} equals ${String(c.values?.[0])}`,
  compile: (c, name) => ({ static: attributeEquals(name, attributeName(c), valuesOf(c)[0]) }),
};

/** `attribute A in [V,...]`. */
export const inFilters: ConstraintFilters = {
  name: (c) => `attribute ${c.attribute} in ${valueList(c.values)}`,
  compile: (c, name) => {
    const attribute = attributeName(c);
    const set = new Set(valuesOf(c));
    return {
      static: {
        name,
        check: (m) => {
          const v = attributeOf(m, attribute);
          return v !== undefined && set.has(v) ? undefined : name;
        },
      },
    };
  },
};

/** `attribute A not-in [V,...]`. */
export const notInFilters: ConstraintFilters = {
  name: (c) => `attribute ${c.attribute} not-in ${valueList(c.values)}`,
  compile: (c, name) => {
    const attribute = attributeName(c);
    const set = new Set(valuesOf(c));
    return {
      static: {
        name,
        check: (m) => {
          const v = attributeOf(m, attribute);
          return v === undefined || !set.has(v) ? undefined : name;
        },
      },
    };
  },
};
