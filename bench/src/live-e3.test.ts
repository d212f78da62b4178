import { describe, expect, it } from 'vitest';
import { AGREEMENT_REQUIRED_DIFFERENCE, agreement, normalCdf, normalQuantile, type Stratum } from './live-e3.js';

/** A stratum whose live run saw `n` transactions at conflict fraction `cfLive`, the simulation 10x as many at `cfSim`. */
function stratum(n: number, cfLive: number, cfSim: number): Stratum {
  const qLive = cfLive / (1 + cfLive);
  const qSim = cfSim / (1 + cfSim);
  const liveFailed = Math.round(n * qLive);
  const simFailed = Math.round(10 * n * qSim);
  return { live: { failed: liveFailed, ok: n - liveFailed }, sim: { failed: simFailed, ok: 10 * n - simFailed } };
}

describe('the live-vs-sim agreement test', () => {
  it('has a normal distribution that matches its textbook quantiles', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalQuantile(0.8)).toBeCloseTo(0.841621, 5);
  });

  it('finds no difference when live and simulated rates are the same', () => {
    const a = agreement([stratum(400, 1, 1), stratum(400, 0.2, 0.2)]);
    expect(Math.abs(a.z)).toBeLessThan(0.5);
    expect(a.pValue).toBeGreaterThan(0.5);
  });

  it('rejects a 30% difference when it saw enough transactions, and says it could', () => {
    const strata = [stratum(1500, 1.3, 1), stratum(1500, 0.65, 0.5)];
    const a = agreement(strata);
    expect(a.pValue).toBeLessThan(0.01);
    expect(a.detectable).toBeLessThan(AGREEMENT_REQUIRED_DIFFERENCE);
  });

  it('cannot see a 30% difference in a few dozen transactions (the old check), and says so', () => {
    const a = agreement([stratum(34, 0.13, 0.1)]);
    expect(a.pValue).toBeGreaterThan(0.05);
    expect(a.detectable).toBeGreaterThan(AGREEMENT_REQUIRED_DIFFERENCE);
  });

  it('detects smaller differences with more transactions', () => {
    const small = agreement([stratum(200, 0.5, 0.5)]).detectable;
    const large = agreement([stratum(2000, 0.5, 0.5)]).detectable;
    expect(large).toBeLessThan(small);
  });
});
