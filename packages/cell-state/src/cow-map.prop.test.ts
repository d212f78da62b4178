import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHUNKS, CowMap, chunkOf, type FrozenMap } from './cow-map.js';

/** The map as it was before arrays: a `Map` per chunk, copied whole on the first change after a freeze. */
class ReferenceMap {
  private chunks: Map<string, number>[] = Array.from({ length: CHUNKS }, () => new Map<string, number>());
  private owned: number[] = new Array<number>(CHUNKS).fill(0);
  private generation = 0;
  get(key: string): number | undefined {
    return this.chunks[chunkOf(key)]?.get(key);
  }
  set(key: string, value: number): void {
    this.own(chunkOf(key)).set(key, value);
  }
  delete(key: string): boolean {
    const i = chunkOf(key);
    if (this.chunks[i]?.has(key) !== true) return false;
    return this.own(i).delete(key);
  }
  clear(): void {
    this.chunks = Array.from({ length: CHUNKS }, () => new Map<string, number>());
    this.owned = new Array<number>(CHUNKS).fill(++this.generation);
  }
  freeze(): { size: number; entries: [string, number][] } {
    this.generation++;
    const entries = this.chunks.flatMap((c) => [...c]);
    return { size: entries.length, entries };
  }
  private own(i: number): Map<string, number> {
    const chunk = this.chunks[i] as Map<string, number>;
    if (this.owned[i] === this.generation) return chunk;
    const copy = new Map(chunk);
    this.chunks[i] = copy;
    this.owned[i] = this.generation;
    return copy;
  }
}

type Step = { op: 'set'; key: string; value: number } | { op: 'delete'; key: string } | { op: 'freeze' } | { op: 'clear' };

/** Few keys, so that sets, deletes and re-inserts meet in the same chunks; many land in one chunk. */
const key = fc.oneof(fc.constantFrom('a', 'b', 'c', 'm00001', 'm00002', 'batch-1#0', 'batch-1#1'), fc.integer({ min: 0, max: 300 }).map((n) => `k${n}`));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
  { weight: 3, arbitrary: fc.constant({ op: 'freeze' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

function contents(frozen: FrozenMap<string, number>, keys: readonly string[]): { size: number; values: number[]; got: (number | undefined)[] } {
  return { size: frozen.size, values: [...frozen.values()], got: keys.map((k) => frozen.get(k)) };
}

describe('CowMap', () => {
  it('gives every frozen view, at any later time, the contents, lookups and iteration order of a Map per chunk copied at each freeze', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const map = new CowMap<string, number>();
        const reference = new ReferenceMap();
        const keys = [...new Set(steps.flatMap((s) => ('key' in s ? [s.key] : [])))];
        const frozen: { view: FrozenMap<string, number>; want: { size: number; values: number[]; got: (number | undefined)[] } }[] = [];
        for (const s of steps) {
          if (s.op === 'set') {
            map.set(s.key, s.value);
            reference.set(s.key, s.value);
          } else if (s.op === 'delete') {
            expect(map.delete(s.key)).toBe(reference.delete(s.key));
          } else if (s.op === 'clear') {
            map.clear();
            reference.clear();
          } else {
            const view = map.freeze();
            const want = reference.freeze();
            frozen.push({ view, want: { size: want.size, values: want.entries.map(([, v]) => v), got: keys.map((k) => new Map(want.entries).get(k)) } });
          }
          for (const k of keys) expect(map.get(k)).toBe(reference.get(k));
          expect(map.size).toBe(reference.freeze().size);
        }
        // Views frozen earlier still show what they showed then, whatever changed since.
        for (const { view, want } of frozen) expect(contents(view, keys)).toEqual(want);
      }),
      { numRuns: 1500 },
    );
  });
});
