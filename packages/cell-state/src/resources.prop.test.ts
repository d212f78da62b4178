import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { claimsShortage, fitInOrder } from './resources.js';
import { claimId, machineId, taskId, jobId, type Claim, type Resources } from './types.js';

const resources = (max: number): fc.Arbitrary<Resources> =>
  fc.record({ cpuMillis: fc.integer({ min: 0, max }), memoryBytes: fc.integer({ min: 0, max: max * 4 }) });

/** Resources near the largest safe integers too, where a different order of additions could round differently. */
const anyResources: fc.Arbitrary<Resources> = fc.oneof(
  resources(4000),
  fc.record({ cpuMillis: fc.maxSafeNat(), memoryBytes: fc.maxSafeNat() }),
);

const claimOf = (r: Resources, i: number): Claim => ({
  id: claimId(`c-${i}`),
  taskId: taskId(jobId('j'), i),
  machineId: machineId('m'),
  attempt: 1,
  resources: r,
  priority: 0,
  scheduler: 's',
});

/** What the commit did before the running sum: a full recount of the machine's claims per candidate. */
function recountInOrder(capacity: Resources, claims: readonly Claim[], candidates: readonly Resources[]): boolean[] {
  const accepted: Claim[] = [];
  return candidates.map((r, i) => {
    const candidate = claimOf(r, 10_000 + i);
    const fits = claimsShortage(capacity, [...claims, ...accepted, candidate]) === undefined;
    if (fits) accepted.push(candidate);
    return fits;
  });
}

describe('fitInOrder', () => {
  it('gives every candidate the verdict a full recount of the machine gives it, for any claims, capacity and order', () => {
    fc.assert(
      fc.property(
        fc.oneof(resources(16_000), anyResources),
        fc.array(anyResources, { maxLength: 12 }),
        fc.array(anyResources, { maxLength: 12 }),
        (capacity, live, candidates) => {
          const claims = live.map(claimOf);
          expect(fitInOrder(capacity, claims, candidates)).toEqual(recountInOrder(capacity, claims, candidates));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses a candidate that does not fit and still accepts a smaller one after it', () => {
    const capacity = { cpuMillis: 4000, memoryBytes: 16 };
    const claims = [claimOf({ cpuMillis: 2500, memoryBytes: 4 }, 0)];
    expect(fitInOrder(capacity, claims, [{ cpuMillis: 2000, memoryBytes: 1 }, { cpuMillis: 1500, memoryBytes: 12 }, { cpuMillis: 1, memoryBytes: 0 }])).toEqual([false, true, false]);
  });
});
