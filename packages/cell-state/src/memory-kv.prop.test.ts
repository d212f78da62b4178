import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Op } from './kv.js';
import { MemoryKv } from './memory-kv.js';

const KEYS = ['a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c'];
const bytes = (n: number): Uint8Array => new Uint8Array([n & 0xff, n >> 8]);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ type: fc.constant('put' as const), key: fc.constantFrom(...KEYS), value: fc.integer({ min: 0, max: 65535 }).map(bytes) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), key: fc.constantFrom('a/', 'b/'), prefix: fc.constant(true) }) },
);

/** A request: one op, or several on distinct keys (etcd refuses a key written twice in one request). */
const requestArb = fc.array(opArb, { minLength: 1, maxLength: 3 }).map((ops) => {
  const seen = new Set<string>();
  return ops.filter((op) => {
    if (op.type === 'txn' || (op.type === 'delete' && op.prefix === true)) return ops.length === 1;
    if (seen.has(op.key)) return false;
    seen.add(op.key);
    return true;
  });
});

describe('MemoryKv compaction', () => {
  it('keeps every revision within historyLimit readable exactly as a store that never compacts, whatever was written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 6 }), async (requests, historyLimit) => {
        const compacting = new MemoryKv({ historyLimit });
        const keeping = new MemoryKv();
        try {
          for (const ops of requests) {
            if (ops.length === 0) continue;
            await compacting.txn({ compare: [], success: ops, failure: [] });
            await keeping.txn({ compare: [], success: ops, failure: [] });
            const now = await keeping.currentRevision();
            expect(await compacting.currentRevision()).toBe(now);
            for (let rev = Math.max(1, now - historyLimit + 1); rev <= now; rev++) {
              const [got, want] = await Promise.all([compacting.range({ key: '', prefix: true, revision: rev }), keeping.range({ key: '', prefix: true, revision: rev })]);
              expect(got.kvs).toEqual(want.kvs);
            }
            for (const key of KEYS) expect((await compacting.range({ key })).kvs).toEqual((await keeping.range({ key })).kvs);
          }
        } finally {
          await compacting.close();
          await keeping.close();
        }
      }),
      { numRuns: 300 },
    );
  });
});
