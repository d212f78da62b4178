import { CONSTRAINT_OPERATORS, machineId, type Constraint, type ConstraintOperator, type JobSpec, type Machine } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { CONSTRAINT_FILTERS, compileJobFilters, constraintName } from './constraint-filters.js';
import { attributeOf } from './filter-attribute.js';
import { resourceFilter } from './filter-resources.js';
import { firstFailing, INVALID_RESOURCES, PASS, UNKNOWN_OPERATOR, type PlacementView } from './filter.js';

function m(attributes: Record<string, string>, schedulable = true): Machine {
  return {
    id: machineId('m'),
    capacity: { cpuMillis: 1000, memoryBytes: 1000 },
    attributes,
    schedulable,
    unschedulableReason: '',
    enforcementDisabled: false,
    hollow: false,
    claims: [],
    seq: 1,
  };
}

const REQUEST = { cpuMillis: 100, memoryBytes: 100 };
type Spec = Pick<JobSpec, 'task' | 'constraints'>;
const spec = (constraints: readonly Constraint[], resources = REQUEST): Spec => ({ task: { resources } as JobSpec['task'], constraints });
const compileConstraints = (constraints: readonly Constraint[]) => compileJobFilters(spec(constraints));
/** A view of one candidate with these numbers. */
const view = (freeCpu: number, freeMemory: number, instances = 0): PlacementView => ({ freeCpu: () => freeCpu, freeMemory: () => freeMemory, instances: () => instances });

const c = (operator: ConstraintOperator, attribute: string, values: string[] = [], limit = 0): Constraint => ({ operator, attribute, values, limit });

describe('constraint filters', () => {
  it('names filters after the constraint so users can read them', () => {
    expect(constraintName(c('equals', 'zone', ['a']))).toBe('attribute zone equals a');
    expect(constraintName(c('in', 'zone', ['a', 'b']))).toBe('attribute zone in [a,b]');
    expect(constraintName(c('not-in', 'rack', ['r1']))).toBe('attribute rack not-in [r1]');
    expect(constraintName(c('max-per-machine', '', [], 2))).toBe('max-per-machine 2');
    expect(constraintName(c('spread', 'rack', ['r1', 'r2']))).toBe('spread rack over [r1,r2]');
    expect(constraintName(c(undefined as unknown as ConstraintOperator, 'x'))).toBe(UNKNOWN_OPERATOR);
  });

  it('fails equals and in, and passes not-in, for a machine without the attribute', () => {
    const { staticFilters } = compileConstraints([c('equals', 'zone', ['a']), c('in', 'zone', ['a']), c('not-in', 'zone', ['a'])]);
    const [, equals, inList, notIn] = staticFilters;
    expect(equals?.check(m({}))).toBe('attribute zone equals a');
    expect(inList?.check(m({}))).toBe('attribute zone in [a]');
    expect(notIn?.check(m({}))).toBeUndefined();
    expect(equals?.check(m({ zone: 'a' }))).toBeUndefined();
    expect(notIn?.check(m({ zone: 'a' }))).toBe('attribute zone not-in [a]');
  });

  it('reads only the machine own attributes, never the object prototype', () => {
    expect(attributeOf(m({}), 'constructor')).toBeUndefined();
    const { staticFilters } = compileConstraints([c('not-in', 'constructor', ['x'])]);
    expect(firstFailing(staticFilters, m({}))).toBeUndefined();
  });

  it('checks unschedulable first, then the constraints in order, and reports the first that fails', () => {
    const { staticFilters } = compileConstraints([c('in', 'zone', ['a']), c('not-in', 'rack', ['r1'])]);
    expect(firstFailing(staticFilters, m({ zone: 'b', rack: 'r1' }))).toBe('attribute zone in [a]');
    expect(firstFailing(staticFilters, m({ zone: 'a', rack: 'r1' }))).toBe('attribute rack not-in [r1]');
    expect(firstFailing(staticFilters, m({ zone: 'b' }, false))).toBe('unschedulable');
  });

  it('turns an unknown operator into one filter, first, that rules out every machine', () => {
    const weird = c('bogus' as ConstraintOperator, 'zone', ['a']);
    const { staticFilters } = compileConstraints([c('in', 'zone', ['a']), weird, { ...weird, operator: undefined as unknown as ConstraintOperator }]);
    expect(staticFilters.map((f) => f.name)).toEqual([UNKNOWN_OPERATOR, 'unschedulable', 'attribute zone in [a]']);
    expect(firstFailing(staticFilters, m({ zone: 'a' }))).toBe(UNKNOWN_OPERATOR);
  });

  it('survives constraints with missing fields from a foreign record', () => {
    const broken = { operator: 'in', attribute: undefined, values: undefined, limit: undefined } as unknown as Constraint;
    const { staticFilters, dynamicFilters } = compileConstraints([broken, { ...broken, operator: 'max-per-machine' }]);
    expect(firstFailing(staticFilters, m({ zone: 'a' }))).toBe('attribute undefined in []');
    const [limit] = dynamicFilters;
    expect(limit?.reasons).toEqual(['max-per-machine undefined']);
    // A limit that is not a positive integer allows nothing rather than everything.
    expect(limit?.check(view(1000, 1000, 0), 0, 1, 1)).toBe(0);
  });

  it('makes spread with values a filter on those values and spread without values no filter', () => {
    const compiled = compileConstraints([c('spread', 'rack', ['r1']), c('spread', 'zone')]);
    expect(compiled.staticFilters.map((f) => f.name)).toEqual(['unschedulable', 'spread rack over [r1]']);
    expect(compiled.spreads.map((s) => [s.attribute, s.values && [...s.values]])).toEqual([
      ['rack', ['r1']],
      ['zone', undefined],
    ]);
    expect(firstFailing(compiled.staticFilters, m({ rack: 'r2' }))).toBe('spread rack over [r1]');
  });

  it('has filters for every operator of the constraint vocabulary', () => {
    for (const op of CONSTRAINT_OPERATORS) expect(Object.hasOwn(CONSTRAINT_FILTERS, op)).toBe(true);
    expect(Object.keys(CONSTRAINT_FILTERS).sort()).toEqual([...CONSTRAINT_OPERATORS].sort());
  });

  it('treats an operator named after an Object.prototype member as unknown', () => {
    const { staticFilters } = compileConstraints([c('constructor' as ConstraintOperator, 'zone', ['a'])]);
    expect(firstFailing(staticFilters, m({ zone: 'a' }))).toBe(UNKNOWN_OPERATOR);
  });

  it('rules out every machine for a request that is not valid integers', () => {
    for (const resources of [{ cpuMillis: 1.5, memoryBytes: 0 }, { cpuMillis: -1, memoryBytes: 10 }, { cpuMillis: 0, memoryBytes: 0 }]) {
      const filters = compileJobFilters(spec([], resources));
      expect(filters.staticFilters.map((f) => f.name)).toEqual([INVALID_RESOURCES]);
      expect(firstFailing(filters.staticFilters, m({}))).toBe(INVALID_RESOURCES);
    }
  });

  it('compiles a spec once and hands every later call the same filters', () => {
    const s = spec([c('in', 'zone', ['a'])]);
    expect(compileJobFilters(s)).toBe(compileJobFilters(s));
  });

  it('checks max-per-machine against the live instances and ends with the resource fit', () => {
    const { dynamicFilters, countsInstances } = compileConstraints([c('max-per-machine', '', [], 2)]);
    expect(countsInstances).toBe(true);
    expect(dynamicFilters.map((f) => f.reasons)).toEqual([['max-per-machine 2'], ['cpu', 'memory']]);
    const [limit] = dynamicFilters;
    expect(limit?.check(view(1000, 1000, 1), 0, 1, 1)).toBe(PASS);
    expect(limit?.check(view(1000, 1000, 2), 0, 1, 1)).toBe(0);
    expect(compileConstraints([]).countsInstances).toBe(false);
  });

  it('names the first resource short, cpu before memory, and passes an exact fit', () => {
    expect(resourceFilter.check(view(100, 100), 0, 100, 100)).toBe(PASS);
    expect(resourceFilter.reasons[resourceFilter.check(view(99, 50), 0, 100, 100)]).toBe('cpu');
    expect(resourceFilter.reasons[resourceFilter.check(view(100, 99), 0, 100, 100)]).toBe('memory');
  });
});
