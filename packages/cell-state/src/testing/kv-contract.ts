/**
 * The KV contract suite: what `kv.ts` promises, as tests that run unchanged against every
 * {@link KvStore} (MemoryKv in unit tests, EtcdKv on a real etcd in integration tests), so that
 * code written against the interface behaves the same on both.
 *
 * The suite never assumes an empty store or absolute revisions: each test works under its own
 * key prefix and reasons about revisions relative to the ones it observes, so the etcd run can
 * share one member across tests. Tests that compact only compact at revisions they created.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  KvCompactedError,
  KvInvalidRequestError,
  KvLeaseNotFoundError,
  prefixEnd,
  type Compare,
  type KvStore,
  type OpResult,
  type WatchBatch,
  type WatchEvent,
} from '../kv.js';

/** A store under test and how to release it. `open` runs before each test, `close` after. */
export interface OpenedKv {
  readonly kv: KvStore;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (value: Uint8Array): string => decoder.decode(value);

let prefixCounter = 0;
/** A key prefix no other test (or earlier run against the same etcd) uses. */
function freshPrefix(): string {
  prefixCounter += 1;
  return `/kv-contract/${process.pid}-${Date.now().toString(36)}-${prefixCounter}/`;
}

/** Polls `condition` until it holds; fails the test with `what` after `timeoutMs`. */
async function eventually(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A watch that records what it receives. */
function record(kv: KvStore, prefix: string, fromRevision: number) {
  const batches: WatchBatch[] = [];
  const compactions: number[] = [];
  const handle = kv.watch(prefix, fromRevision, {
    onBatch: (batch) => batches.push(batch),
    onCompacted: (revision) => compactions.push(revision),
  });
  const events = (): WatchEvent[] => batches.flatMap((batch) => batch.events);
  return { batches, compactions, handle, events };
}

function describeEvent(event: WatchEvent): string {
  return `${event.type} ${event.kv.key}${event.type === 'put' ? `=${text(event.kv.value)}` : ''} @${event.kv.modRevision}`;
}

function rangeKeys(result: OpResult | undefined): string[] {
  if (result?.type !== 'range') throw new Error(`expected a range result, got ${JSON.stringify(result)}`);
  return result.kvs.map((kv) => kv.key);
}

/**
 * Registers the contract suite for one store. `open` is called before each test and must give a
 * usable store (a fresh one, or a new client of a shared server); `close` is called after it.
 */
export function describeKvContract(name: string, open: () => Promise<OpenedKv>): void {
  describe(`${name} obeys the KV contract`, () => {
    let opened: OpenedKv;
    let kv: KvStore;
    let p: string;

    beforeEach(async () => {
      opened = await open();
      kv = opened.kv;
      p = freshPrefix();
    });

    afterEach(async () => {
      await opened.close();
    });

    describe('revisions', () => {
      it('bumps the revision by exactly one for each put and returns it', async () => {
        const before = await kv.currentRevision();
        const first = await kv.put(`${p}a`, bytes('1'));
        const second = await kv.put(`${p}b`, bytes('2'));
        expect(first).toBe(before + 1);
        expect(second).toBe(before + 2);
        expect(await kv.currentRevision()).toBe(second);
      });

      it('bumps the revision once for a transaction that writes several keys', async () => {
        const before = await kv.currentRevision();
        const result = await kv.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}a`, value: bytes('1') },
            { type: 'put', key: `${p}b`, value: bytes('2') },
            { type: 'delete', key: `${p}c` },
          ],
          failure: [],
        });
        expect(result.revision).toBe(before + 1);
        const read = await kv.range({ key: p, prefix: true });
        expect(read.kvs.map((x) => x.modRevision)).toEqual([before + 1, before + 1]);
      });

      it('keeps the revision for a read-only transaction and for a delete that matches nothing', async () => {
        await kv.put(`${p}a`, bytes('1'));
        const before = await kv.currentRevision();
        const read = await kv.txn({ compare: [], success: [{ type: 'range', key: `${p}a` }], failure: [] });
        expect(read.revision).toBe(before);
        expect(await kv.delete(`${p}missing`)).toBe(0);
        const deleted = await kv.txn({ compare: [], success: [{ type: 'delete', key: `${p}missing`, prefix: true }], failure: [] });
        expect(deleted.revision).toBe(before);
        expect(await kv.currentRevision()).toBe(before);
      });

      it('tracks create revision, mod revision and version per key, and restarts them after a delete', async () => {
        const created = await kv.put(`${p}k`, bytes('1'));
        const modified = await kv.put(`${p}k`, bytes('2'));
        let [kvNow] = (await kv.range({ key: `${p}k` })).kvs;
        expect(kvNow).toMatchObject({ key: `${p}k`, createRevision: created, modRevision: modified, version: 2, lease: '0' });
        expect(text(kvNow?.value ?? bytes(''))).toBe('2');
        await kv.delete(`${p}k`);
        const recreated = await kv.put(`${p}k`, bytes('3'));
        [kvNow] = (await kv.range({ key: `${p}k` })).kvs;
        expect(kvNow).toMatchObject({ createRevision: recreated, modRevision: recreated, version: 1 });
      });

      it('deletes every key under a prefix in one revision and reports how many', async () => {
        await kv.put(`${p}d/1`, bytes('1'));
        await kv.put(`${p}d/2`, bytes('2'));
        await kv.put(`${p}e`, bytes('3'));
        const before = await kv.currentRevision();
        expect(await kv.delete(`${p}d/`, { prefix: true })).toBe(2);
        expect(await kv.currentRevision()).toBe(before + 1);
        expect((await kv.range({ key: p, prefix: true })).kvs.map((x) => x.key)).toEqual([`${p}e`]);
      });
    });

    describe('compares', () => {
      const holds = async (compare: Compare): Promise<boolean> =>
        (await kv.txn({ compare: [compare], success: [], failure: [] })).succeeded;

      it('compares a missing key as create = mod = version = 0, and fails every value compare on it', async () => {
        const key = `${p}missing`;
        expect(await holds({ key, target: 'mod', op: '==', value: 0 })).toBe(true);
        expect(await holds({ key, target: 'create', op: '==', value: 0 })).toBe(true);
        expect(await holds({ key, target: 'version', op: '==', value: 0 })).toBe(true);
        expect(await holds({ key, target: 'version', op: '<', value: 1 })).toBe(true);
        expect(await holds({ key, target: 'mod', op: '>', value: 0 })).toBe(false);
        expect(await holds({ key, target: 'value', op: '==', value: bytes('') })).toBe(false);
        expect(await holds({ key, target: 'value', op: '!=', value: bytes('x') })).toBe(false);
      });

      it('evaluates every compare target with every operator as etcd does', async () => {
        const key = `${p}k`;
        const created = await kv.put(key, bytes('a'));
        const modified = await kv.put(key, bytes('b'));
        const cases: [Compare, boolean][] = [
          [{ key, target: 'mod', op: '==', value: modified }, true],
          [{ key, target: 'mod', op: '==', value: created }, false],
          [{ key, target: 'mod', op: '!=', value: created }, true],
          [{ key, target: 'mod', op: '!=', value: modified }, false],
          [{ key, target: 'mod', op: '<', value: modified + 1 }, true],
          [{ key, target: 'mod', op: '<', value: modified }, false],
          [{ key, target: 'mod', op: '>', value: modified - 1 }, true],
          [{ key, target: 'mod', op: '>', value: modified }, false],
          [{ key, target: 'create', op: '==', value: created }, true],
          [{ key, target: 'create', op: '!=', value: created }, false],
          [{ key, target: 'create', op: '<', value: modified }, true],
          [{ key, target: 'create', op: '>', value: created }, false],
          [{ key, target: 'version', op: '==', value: 2 }, true],
          [{ key, target: 'version', op: '!=', value: 2 }, false],
          [{ key, target: 'version', op: '<', value: 3 }, true],
          [{ key, target: 'version', op: '>', value: 1 }, true],
          [{ key, target: 'version', op: '>', value: 2 }, false],
          [{ key, target: 'value', op: '==', value: bytes('b') }, true],
          [{ key, target: 'value', op: '==', value: bytes('a') }, false],
          [{ key, target: 'value', op: '!=', value: bytes('a') }, true],
          [{ key, target: 'value', op: '<', value: bytes('c') }, true],
          [{ key, target: 'value', op: '<', value: bytes('b') }, false],
          [{ key, target: 'value', op: '>', value: bytes('a') }, true],
          [{ key, target: 'value', op: '>', value: bytes('bb') }, false],
        ];
        const outcomes = [];
        for (const [compare] of cases) outcomes.push(await holds(compare));
        expect(outcomes).toEqual(cases.map(([, expected]) => expected));
      });

      it('compares a key\'s lease id with == and !=, a missing or lease-less key as lease 0', async () => {
        const lease = await kv.grantLease(60);
        const other = await kv.grantLease(60);
        const bound = `${p}bound`;
        const plain = `${p}plain`;
        await kv.put(bound, bytes('v'), { lease: lease.id });
        await kv.put(plain, bytes('v'));
        const cases: [Compare, boolean][] = [
          [{ key: bound, target: 'lease', op: '==', value: lease.id }, true],
          [{ key: bound, target: 'lease', op: '==', value: other.id }, false],
          [{ key: bound, target: 'lease', op: '!=', value: other.id }, true],
          [{ key: bound, target: 'lease', op: '!=', value: lease.id }, false],
          [{ key: plain, target: 'lease', op: '==', value: '0' }, true],
          [{ key: plain, target: 'lease', op: '==', value: lease.id }, false],
          [{ key: `${p}missing`, target: 'lease', op: '==', value: lease.id }, false],
          [{ key: `${p}missing`, target: 'lease', op: '==', value: '0' }, true],
        ];
        const outcomes = [];
        for (const [compare] of cases) outcomes.push(await holds(compare));
        expect(outcomes).toEqual(cases.map(([, expected]) => expected));
        await lease.revoke();
        await other.revoke();
      });

      it('requires every compare of a transaction to hold', async () => {
        const key = `${p}k`;
        const rev = await kv.put(key, bytes('v'));
        const both = await kv.txn({
          compare: [
            { key, target: 'mod', op: '==', value: rev },
            { key, target: 'version', op: '==', value: 2 },
          ],
          success: [],
          failure: [],
        });
        expect(both.succeeded).toBe(false);
      });
    });

    describe('transactions', () => {
      it('runs the failure branch when a compare fails and returns its ranges', async () => {
        const rev = await kv.put(`${p}k`, bytes('current'));
        const result = await kv.txn({
          compare: [{ key: `${p}k`, target: 'mod', op: '==', value: rev - 1 }],
          success: [{ type: 'put', key: `${p}k`, value: bytes('stale write') }],
          failure: [{ type: 'range', key: `${p}k` }, { type: 'range', key: p, prefix: true }],
        });
        expect(result.succeeded).toBe(false);
        expect(result.revision).toBe(rev);
        expect(result.results).toHaveLength(2);
        const [single, all] = result.results;
        expect(single?.type === 'range' && text(single.kvs[0]?.value ?? bytes(''))).toBe('current');
        expect(rangeKeys(all)).toEqual([`${p}k`]);
      });

      it('decides nested transactions independently and bumps the revision once', async () => {
        const a = `${p}a`;
        const aRev = await kv.put(a, bytes('a0'));
        const result = await kv.txn({
          compare: [{ key: a, target: 'mod', op: '==', value: aRev }],
          success: [
            {
              type: 'txn',
              txn: {
                compare: [{ key: a, target: 'version', op: '==', value: 5 }],
                success: [{ type: 'put', key: `${p}never`, value: bytes('x') }],
                failure: [{ type: 'put', key: `${p}inner-failed`, value: bytes('1') }, { type: 'range', key: a }],
              },
            },
            {
              type: 'txn',
              txn: {
                compare: [{ key: `${p}missing`, target: 'create', op: '==', value: 0 }],
                success: [{ type: 'put', key: `${p}inner-succeeded`, value: bytes('2') }],
                failure: [],
              },
            },
            { type: 'txn', txn: { compare: [], success: [], failure: [] } },
            { type: 'put', key: `${p}outer`, value: bytes('3') },
          ],
          failure: [],
        });
        expect(result.succeeded).toBe(true);
        expect(result.revision).toBe(aRev + 1);
        const [first, second, empty, outer] = result.results;
        expect(first).toMatchObject({ type: 'txn', succeeded: false });
        expect(first?.type === 'txn' && first.results.map((r) => r.type)).toEqual(['put', 'range']);
        expect(first?.type === 'txn' && rangeKeys(first.results[1])).toEqual([a]);
        expect(second).toEqual({ type: 'txn', succeeded: true, results: [{ type: 'put' }] });
        expect(empty).toEqual({ type: 'txn', succeeded: true, results: [] });
        expect(outer).toEqual({ type: 'put' });
        const keys = (await kv.range({ key: p, prefix: true })).kvs;
        expect(keys.map((x) => `${x.key}@${x.modRevision}`)).toEqual([
          `${a}@${aRev}`,
          `${p}inner-failed@${aRev + 1}`,
          `${p}inner-succeeded@${aRev + 1}`,
          `${p}outer@${aRev + 1}`,
        ]);
      });

      it('evaluates nested compares against the store as it was before the transaction', async () => {
        const result = await kv.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}k`, value: bytes('new') },
            {
              type: 'txn',
              txn: {
                compare: [{ key: `${p}k`, target: 'version', op: '==', value: 0 }],
                success: [{ type: 'put', key: `${p}saw-missing`, value: bytes('1') }],
                failure: [],
              },
            },
          ],
          failure: [],
        });
        expect(result.results[1]).toMatchObject({ type: 'txn', succeeded: true });
      });

      it('lets reads inside a transaction see its earlier writes', async () => {
        const before = await kv.currentRevision();
        const result = await kv.txn({
          compare: [],
          success: [
            { type: 'range', key: `${p}k` },
            { type: 'put', key: `${p}k`, value: bytes('v') },
            { type: 'range', key: `${p}k` },
          ],
          failure: [],
        });
        expect(rangeKeys(result.results[0])).toEqual([]);
        const after = result.results[2];
        expect(after?.type === 'range' && after.kvs[0]?.modRevision).toBe(before + 1);
      });

      it('rejects a transaction that writes a key twice, and writes nothing', async () => {
        const k = `${p}k`;
        const before = await kv.currentRevision();
        const rejected = [
          [
            { type: 'put', key: k, value: bytes('1') },
            { type: 'put', key: k, value: bytes('2') },
          ],
          [
            { type: 'put', key: k, value: bytes('1') },
            { type: 'txn', txn: { compare: [], success: [{ type: 'put', key: k, value: bytes('2') }], failure: [] } },
          ],
          [
            { type: 'txn', txn: { compare: [], success: [{ type: 'put', key: k, value: bytes('1') }], failure: [] } },
            { type: 'txn', txn: { compare: [], success: [], failure: [{ type: 'put', key: k, value: bytes('2') }] } },
          ],
          [
            { type: 'delete', key: p, prefix: true },
            { type: 'put', key: k, value: bytes('1') },
          ],
          // The shape of a commit's machine groups (puts if the guards hold, reads if not).
          [
            { type: 'txn', txn: { compare: [], success: [{ type: 'put', key: k, value: bytes('1') }], failure: [{ type: 'range', key: k }] } },
            { type: 'txn', txn: { compare: [], success: [{ type: 'put', key: k, value: bytes('2') }], failure: [{ type: 'range', key: k }] } },
          ],
          [{ type: 'txn', txn: { compare: [], success: [{ type: 'put', key: k, value: bytes('1') }, { type: 'put', key: k, value: bytes('2') }], failure: [] } }],
          [
            { type: 'delete', key: p, prefix: true },
            { type: 'txn', txn: { compare: [], success: [{ type: 'put', key: k, value: bytes('1') }], failure: [{ type: 'range', key: k }] } },
          ],
        ] as const;
        for (const success of rejected) {
          await expect(kv.txn({ compare: [], success, failure: [] })).rejects.toBeInstanceOf(KvInvalidRequestError);
        }
        expect(await kv.currentRevision()).toBe(before);
        expect((await kv.range({ key: k })).kvs).toEqual([]);
      });

      it('allows the two branches of one nested transaction to write the same key', async () => {
        const k = `${p}k`;
        const result = await kv.txn({
          compare: [],
          success: [
            {
              type: 'txn',
              txn: {
                compare: [{ key: k, target: 'version', op: '==', value: 0 }],
                success: [{ type: 'put', key: k, value: bytes('created') }],
                failure: [{ type: 'put', key: k, value: bytes('updated') }],
              },
            },
          ],
          failure: [{ type: 'put', key: k, value: bytes('outer failure branch') }],
        });
        expect(result.succeeded).toBe(true);
        expect(text((await kv.range({ key: k })).kvs[0]?.value ?? bytes(''))).toBe('created');
      });

      it('accepts a transaction level of exactly maxTxnOps and rejects one more', async () => {
        const max = kv.limits.maxTxnOps;
        const compares = (n: number): Compare[] =>
          Array.from({ length: n }, () => ({ key: `${p}k`, target: 'version', op: '==', value: 0 }) as const);
        expect((await kv.txn({ compare: compares(max), success: [], failure: [] })).succeeded).toBe(true);
        const over = kv.txn({ compare: compares(max + 1), success: [], failure: [] });
        await expect(over).rejects.toBeInstanceOf(KvInvalidRequestError);
        await expect(over).rejects.toThrow(/too many operations in txn request/);
      });

      it('gives nested levels only what the enclosing level left of the op budget, as etcd does', async () => {
        const max = kv.limits.maxTxnOps;
        // The outer level uses max - 10 ops (the nested txn counts as one), leaving 10 below it.
        const reads = Array.from({ length: max - 11 }, () => ({ type: 'range', key: `${p}k` }) as const);
        const nested = (n: number) =>
          ({
            type: 'txn',
            txn: {
              compare: Array.from({ length: n }, () => ({ key: `${p}k`, target: 'mod', op: '==', value: 0 }) as const),
              success: [],
              failure: [],
            },
          }) as const;
        await expect(kv.txn({ compare: [], success: [...reads, nested(10)], failure: [] })).resolves.toMatchObject({ succeeded: true });
        await expect(kv.txn({ compare: [], success: [...reads, nested(11)], failure: [] })).rejects.toBeInstanceOf(KvInvalidRequestError);
      });

      it('rejects a request larger than maxRequestBytes and writes nothing', async () => {
        const before = await kv.currentRevision();
        const huge = new Uint8Array(kv.limits.maxRequestBytes + 1);
        await expect(kv.put(`${p}huge`, huge)).rejects.toBeInstanceOf(KvInvalidRequestError);
        expect(await kv.currentRevision()).toBe(before);
      });

      it('rejects an empty key', async () => {
        await expect(kv.put('', bytes('v'))).rejects.toBeInstanceOf(KvInvalidRequestError);
      });
    });

    describe('ranges', () => {
      it('pages through a prefix with limit and fromKey, saying whether more keys remain', async () => {
        for (const name of ['a', 'b', 'c', 'd', 'e']) await kv.put(`${p}${name}`, bytes(name));
        await kv.put(`${p.slice(0, -1)}0`, bytes('outside the prefix'));
        const seen: string[] = [];
        let fromKey: string | undefined;
        const mores: boolean[] = [];
        for (;;) {
          const page = await kv.range({ key: p, prefix: true, limit: 2, ...(fromKey === undefined ? {} : { fromKey }) });
          seen.push(...page.kvs.map((x) => x.key.slice(p.length)));
          mores.push(page.more);
          if (!page.more) break;
          fromKey = `${page.kvs.at(-1)?.key ?? ''}\0`;
        }
        expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
        expect(mores).toEqual([true, true, false]);
        const exact = await kv.range({ key: p, prefix: true, limit: 5 });
        expect(exact.more).toBe(false);
      });

      it('reads the store as it was at a past revision, and refuses a compacted one', async () => {
        const first = await kv.put(`${p}k`, bytes('v1'));
        await kv.put(`${p}gone`, bytes('x'));
        const second = await kv.put(`${p}k`, bytes('v2'));
        await kv.delete(`${p}gone`);
        const now = await kv.currentRevision();
        const past = await kv.range({ key: p, prefix: true, revision: first + 1 });
        expect(past.revision).toBe(first + 1);
        expect(past.kvs.map((x) => `${x.key.slice(p.length)}=${text(x.value)}`)).toEqual(['gone=x', 'k=v1']);
        const latest = await kv.range({ key: p, prefix: true });
        expect(latest.revision).toBe(now);
        expect(latest.kvs.map((x) => text(x.value))).toEqual(['v2']);

        await kv.compact(second);
        const compacted = await kv.range({ key: `${p}k`, revision: first }).catch((error: unknown) => error);
        expect(compacted).toBeInstanceOf(KvCompactedError);
        expect((compacted as KvCompactedError).compactRevision).toBe(second);
        const atCompaction = await kv.range({ key: p, prefix: true, revision: second });
        expect(atCompaction.kvs.map((x) => `${x.key.slice(p.length)}=${text(x.value)}`)).toEqual(['gone=x', 'k=v2']);
      });

      it('bounds a prefix range with prefixEnd', async () => {
        expect(prefixEnd('a/')).toBe('a0');
        expect(prefixEnd('machines/')).toBe('machines0');
        for (const key of [`${p}m/`, `${p}m/x`, `${p}m0`, `${p}m.`, `${p}m`]) await kv.put(key, bytes('v'));
        const keys = (await kv.range({ key: `${p}m/`, prefix: true })).kvs.map((x) => x.key.slice(p.length));
        expect(keys).toEqual(['m/', 'm/x']);
      });
    });

    describe('watches', () => {
      it('delivers from a past revision in order, with each revision whole in one batch', async () => {
        const start = await kv.put(`${p}a`, bytes('1'));
        const txn = await kv.txn({
          compare: [],
          success: [
            { type: 'put', key: `${p}b`, value: bytes('2') },
            { type: 'put', key: `${p}c`, value: bytes('3') },
          ],
          failure: [],
        });
        const deleted = (await kv.delete(`${p}a`), await kv.currentRevision());
        const watch = record(kv, p, start);
        await eventually('three revisions', () => watch.events().length >= 4);
        const later = await kv.put(`${p}d`, bytes('4'));
        await eventually('the later put', () => watch.events().length >= 5);
        await watch.handle.cancel();

        expect(watch.events().map(describeEvent)).toEqual([
          `put ${p}a=1 @${start}`,
          `put ${p}b=2 @${txn.revision}`,
          `put ${p}c=3 @${txn.revision}`,
          `delete ${p}a @${deleted}`,
          `put ${p}d=4 @${later}`,
        ]);
        const batchOf = (key: string): WatchBatch | undefined => watch.batches.find((b) => b.events.some((e) => e.kv.key === key));
        expect(batchOf(`${p}b`)).toBe(batchOf(`${p}c`));
        const revisions = watch.batches.map((b) => b.revision);
        expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
        expect(new Set(revisions).size).toBe(revisions.length);
        for (const batch of watch.batches) expect(batch.revision).toBe(batch.events.at(-1)?.kv.modRevision);
        const deleteEvent = watch.events()[3];
        expect(deleteEvent?.kv).toMatchObject({ key: `${p}a`, modRevision: deleted, version: 0 });
        expect(deleteEvent?.kv.value.length).toBe(0);
      });

      it('delivers only keys under its prefix', async () => {
        const from = (await kv.currentRevision()) + 1;
        const watch = record(kv, `${p}in/`, from);
        await kv.put(`${p}out`, bytes('x'));
        await kv.put(`${p}in`, bytes('x'));
        const inside = await kv.put(`${p}in/k`, bytes('y'));
        await eventually('the inside put', () => watch.events().length >= 1);
        await watch.handle.cancel();
        expect(watch.events().map((e) => `${e.kv.key}@${e.kv.modRevision}`)).toEqual([`${p}in/k@${inside}`]);
      });

      it('delivers nothing after cancel resolves', async () => {
        const from = (await kv.currentRevision()) + 1;
        const watch = record(kv, p, from);
        await kv.put(`${p}a`, bytes('1'));
        await eventually('the first put', () => watch.events().length >= 1);
        await watch.handle.cancel();
        await kv.put(`${p}b`, bytes('2'));
        // A second watch seeing the write shows it had time to reach the cancelled one.
        const witness = record(kv, p, from);
        await eventually('the witness to see both puts', () => witness.events().length >= 2);
        await witness.handle.cancel();
        expect(watch.events().map((e) => e.kv.key)).toEqual([`${p}a`]);
      });

      it('tells a watch from below the compact revision that it was compacted, once', async () => {
        const first = await kv.put(`${p}a`, bytes('1'));
        const second = await kv.put(`${p}a`, bytes('2'));
        await kv.compact(second);
        const watch = record(kv, p, first);
        await eventually('onCompacted', () => watch.compactions.length >= 1);
        await kv.put(`${p}a`, bytes('3'));
        await watch.handle.cancel();
        expect(watch.compactions).toEqual([second]);
        expect(watch.batches).toEqual([]);
      });

      it('still delivers a watch from exactly the compact revision', async () => {
        await kv.put(`${p}a`, bytes('1'));
        const compactAt = await kv.put(`${p}b`, bytes('2'));
        const after = await kv.put(`${p}c`, bytes('3'));
        await kv.compact(compactAt);
        const watch = record(kv, p, compactAt);
        await eventually('two puts', () => watch.events().length >= 2);
        await watch.handle.cancel();
        expect(watch.compactions).toEqual([]);
        expect(watch.events().map((e) => `${e.kv.key}@${e.kv.modRevision}`)).toEqual([`${p}b@${compactAt}`, `${p}c@${after}`]);
      });
    });

    describe('leases', () => {
      it('deletes the keys of a revoked lease in one revision, with delete events', async () => {
        const lease = await kv.grantLease(60);
        expect(lease.id).toMatch(/^[1-9][0-9]*$/);
        await kv.put(`${p}alive/1`, bytes('x'), { lease: lease.id });
        await kv.put(`${p}alive/2`, bytes('y'), { lease: lease.id });
        const last = await kv.put(`${p}other`, bytes('z'));
        const [bound] = (await kv.range({ key: `${p}alive/1` })).kvs;
        expect(bound?.lease).toBe(lease.id);
        const watch = record(kv, p, last + 1);
        await lease.revoke();
        await eventually('the delete events', () => watch.events().length >= 2);
        await watch.handle.cancel();
        expect(watch.batches).toHaveLength(1);
        expect(watch.events().map((e) => `${e.type} ${e.kv.key} @${e.kv.modRevision}`)).toEqual([
          `delete ${p}alive/1 @${last + 1}`,
          `delete ${p}alive/2 @${last + 1}`,
        ]);
        expect((await kv.range({ key: p, prefix: true })).kvs.map((x) => x.key)).toEqual([`${p}other`]);
        await lease.revoke(); // revoking again is harmless
      });

      it('refuses a put with a lease that does not exist, and writes nothing', async () => {
        const before = await kv.currentRevision();
        await expect(kv.put(`${p}k`, bytes('v'), { lease: '1234567' })).rejects.toBeInstanceOf(KvLeaseNotFoundError);
        const inTxn = kv.txn({ compare: [], success: [{ type: 'put', key: `${p}k`, value: bytes('v'), lease: '1234567' }], failure: [] });
        await expect(inTxn).rejects.toBeInstanceOf(KvLeaseNotFoundError);
        expect(await kv.currentRevision()).toBe(before);
      });
    });

    describe('counters', () => {
      it('counts round trips, bytes written by puts and bytes read by ranges', async () => {
        const start = { ...kv.counters };
        await kv.put(`${p}k`, bytes('12345'));
        await kv.range({ key: `${p}k` });
        const key = Buffer.byteLength(`${p}k`);
        expect(kv.counters.roundTrips - start.roundTrips).toBe(2);
        expect(kv.counters.bytesWritten - start.bytesWritten).toBe(key + 5);
        expect(kv.counters.bytesRead - start.bytesRead).toBe(key + 5);
      });
    });
  });
}
