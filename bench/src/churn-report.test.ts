import { describe, expect, it } from 'vitest';
import { levelling } from './churn-report.js';

const series = (values: number[]) => ({ name: 's', unit: 'keys' as const, values });

describe('levelling', () => {
  it('calls a series that stops growing levelled, noise included', () => {
    const values = [10, 400, 800, 1000, 1010, 990, 1005, 1000, 1020, 995, 1000, 1010];
    expect(levelling(series(values), 0).levelled).toBe(true);
  });

  it('calls a series that grows with the number of jobs not levelled', () => {
    const values = Array.from({ length: 12 }, (_, i) => 1000 * (i + 1));
    const l = levelling(series(values), 200);
    expect(l.levelled).toBe(false);
    expect(l.growth).toBeGreaterThan(0.2);
  });

  it('forgives growth within the absolute slack, and cannot judge fewer than 6 samples', () => {
    expect(levelling(series([10, 10, 10, 20, 20, 20]), 50).levelled).toBe(true);
    expect(levelling(series([10, 10, 10, 20, 20, 20]), 4).levelled).toBe(false);
    expect(levelling(series([1, 1, 1, 1, 1]), 1000).levelled).toBe(false);
  });
});
