import { machineId, type Constraint, type ConstraintOperator, type Machine } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { attributeOf, compileConstraints, constraintName, firstFailing, UNKNOWN_OPERATOR } from './filters.js';

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
    expect(equals?.passes(m({}))).toBe(false);
    expect(inList?.passes(m({}))).toBe(false);
    expect(notIn?.passes(m({}))).toBe(true);
    expect(equals?.passes(m({ zone: 'a' }))).toBe(true);
    expect(notIn?.passes(m({ zone: 'a' }))).toBe(false);
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
    const { staticFilters, maxPerMachine } = compileConstraints([broken, { ...broken, operator: 'max-per-machine' }]);
    expect(firstFailing(staticFilters, m({ zone: 'a' }))).toBe('attribute undefined in []');
    expect(maxPerMachine).toEqual([{ name: 'max-per-machine undefined', limit: 0 }]);
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
});
