import { describe, expect, it } from 'vitest';
import { seededRandom } from '@omega/scheduler-core';
import { W_OMEGA_LIKE, arrivals, exponential, merge, scaledTo } from './workload.js';

describe('workloads', () => {
  it('draws exponential values with the asked mean', () => {
    const random = seededRandom(7);
    const n = 50_000;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += exponential(random, 250);
    expect(sum / n).toBeGreaterThan(240);
    expect(sum / n).toBeLessThan(260);
  });

  it('generates the same arrivals for the same seed, in time order, at the class rate', () => {
    const a = [...arrivals(W_OMEGA_LIKE.batch, seededRandom(1), 0, 4_000_000)];
    const b = [...arrivals(W_OMEGA_LIKE.batch, seededRandom(1), 0, 4_000_000)];
    expect(a).toEqual(b);
    for (let i = 1; i < a.length; i++) expect(a[i]!.atMs).toBeGreaterThanOrEqual(a[i - 1]!.atMs);
    // 4,000 s at one job per 4 s: about 1,000 jobs.
    expect(a.length).toBeGreaterThan(900);
    expect(a.length).toBeLessThan(1100);
    expect(a.every((j) => Number.isInteger(j.tasks) && j.tasks >= 1)).toBe(true);
  });

  it('merges two streams in time order and scales rates to a smaller cell', () => {
    const r = seededRandom(3);
    const merged = [...merge(arrivals(W_OMEGA_LIKE.batch, r, 0, 600_000), arrivals(W_OMEGA_LIKE.service, r, 0, 600_000))];
    for (let i = 1; i < merged.length; i++) expect(merged[i]!.atMs).toBeGreaterThanOrEqual(merged[i - 1]!.atMs);
    expect(new Set(merged.map((m) => m.kind))).toEqual(new Set(['batch', 'service']));
    expect(scaledTo(W_OMEGA_LIKE, 1000).batch.interArrivalMeanMs).toBe(40_000);
  });
});
