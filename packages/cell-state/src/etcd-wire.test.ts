import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { toTxnRequest } from './etcd-kv.js';
import { encodeTxnRequest } from './etcd-wire-encode.js';
import { decodeRangeResponse, decodeTxnResponse, decodeWatchResponse } from './etcd-wire.js';
import type { Op, TxnRequest } from './kv.js';

// etcd's own protocol definitions, as etcd3 ships them: the reference for the lean codecs.
const protoDir = path.join(path.dirname(createRequire(import.meta.url).resolve('etcd3/package.json')), 'proto');
// keepCase, as etcd3 loads them: the request objects etcd-kv.ts builds use etcd's field names.
const root = new protobuf.Root().loadSync(path.join(protoDir, 'rpc.proto'), { keepCase: true });
const T = {
  txnRequest: root.lookupType('etcdserverpb.TxnRequest'),
  rangeResponse: root.lookupType('etcdserverpb.RangeResponse'),
  txnResponse: root.lookupType('etcdserverpb.TxnResponse'),
  watchResponse: root.lookupType('etcdserverpb.WatchResponse'),
};
const asObject = (type: protobuf.Type, bytes: Uint8Array): unknown => type.toObject(type.decode(bytes), { longs: String, enums: String, bytes: String, defaults: true, oneofs: true });
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const BIG_LEASE = '7587869436396345123';

function kvWire(key: string, value: string, mod: number, lease = '0'): Record<string, unknown> {
  return { key: Buffer.from(key), value: Buffer.from(value), create_revision: '3', mod_revision: String(mod), version: '2', lease };
}

describe('the lean etcd codecs', () => {
  it('encode a transaction as etcd3 and proto-loader would, nested transactions, prefixes and leases included', () => {
    const put = (key: string, lease?: string): Op => ({ type: 'put', key, value: bytes(`v-${key}`), ...(lease === undefined ? {} : { lease }) });
    const request: TxnRequest = {
      compare: [
        { key: '/omega/c/machines/m1', target: 'mod', op: '==', value: 0 },
        { key: '/omega/c/tasks/j/1', target: 'version', op: '>', value: 300_000_000_000 },
        { key: '/omega/c/owners/j', target: 'lease', op: '==', value: BIG_LEASE },
        { key: '/omega/c/alive/m1', target: 'value', op: '!=', value: bytes('') },
        { key: 'ü', target: 'create', op: '<', value: 7 },
      ],
      success: [
        put('/omega/c/tasks/j/1'),
        put('/omega/c/alive/m1', BIG_LEASE),
        put('/omega/c/x', '0'),
        { type: 'range', key: '/omega/c/machines/', prefix: true },
        { type: 'range', key: '', prefix: true },
        { type: 'delete', key: '/omega/c/history/j/', prefix: true },
        { type: 'delete', key: '/omega/c/status/j' },
        { type: 'txn', txn: { compare: [{ key: 'k', target: 'mod', op: '<', value: 9 }], success: [put('k', '12')], failure: [{ type: 'range', key: 'k' }] } },
      ],
      failure: [{ type: 'range', key: '/omega/c/machines/m1' }, { type: 'txn', txn: { compare: [], success: [], failure: [] } }],
    };
    const reference = T.txnRequest.encode(T.txnRequest.fromObject(toTxnRequest(request))).finish();
    expect(asObject(T.txnRequest, encodeTxnRequest(request))).toEqual(asObject(T.txnRequest, reference));
  });

  it('decode range, transaction and watch replies into the values etcd sent', () => {
    const header = { cluster_id: '1', member_id: '2', revision: '4242', raft_term: '3' };
    const range = T.rangeResponse.encode(T.rangeResponse.fromObject({ header, kvs: [kvWire('/a', 'x', 10), kvWire('/b', '', 11, BIG_LEASE)], more: true, count: '2' })).finish();
    const decoded = decodeRangeResponse(Buffer.from(range));
    expect(decoded.header.revision).toBe(4242);
    expect(decoded.more).toBe(true);
    expect(decoded.kvs.map((kv) => ({ ...kv, value: Buffer.from(kv.value).toString() }))).toEqual([
      { key: '/a', value: 'x', createRevision: 3, modRevision: 10, version: 2, lease: '0' },
      { key: '/b', value: '', createRevision: 3, modRevision: 11, version: 2, lease: BIG_LEASE },
    ]);

    const txn = T.txnResponse.encode(
      T.txnResponse.fromObject({ header, succeeded: true, responses: [{ response_put: { header } }, { response_range: { header, kvs: [kvWire('/c', 'y', 12)] } }, { response_delete_range: { header, deleted: '5' } }, { response_txn: { header, succeeded: false, responses: [] } }] }),
    ).finish();
    const t = decodeTxnResponse(Buffer.from(txn));
    expect(t.succeeded).toBe(true);
    expect(t.responses.map((r) => r.response)).toEqual(['response_put', 'response_range', 'response_delete_range', 'response_txn']);
    expect(t.responses[1]?.response_range?.kvs[0]?.modRevision).toBe(12);
    expect(t.responses[2]?.response_delete_range?.deleted).toBe(5);
    expect(t.responses[3]?.response_txn?.succeeded).toBe(false);

    const watch = T.watchResponse.encode(
      T.watchResponse.fromObject({ header, watch_id: '7', canceled: true, compact_revision: '99', cancel_reason: 'compacted', events: [{ type: 'Delete', kv: kvWire('/d', '', 13) }, { kv: kvWire('/e', 'z', 14) }] }),
    ).finish();
    const w = decodeWatchResponse(Buffer.from(watch));
    expect({ ...w, events: w.events.map((e) => [e.type, e.kv.key, e.kv.modRevision]) }).toEqual({
      header: { revision: 4242 },
      watch_id: '7',
      created: false,
      canceled: true,
      compact_revision: '99',
      cancel_reason: 'compacted',
      fragment: false,
      events: [
        ['Delete', '/d', 13],
        ['Put', '/e', 14],
      ],
    });
  });

  it('refuse a revision a JavaScript number cannot hold exactly, and a truncated reply', () => {
    const range = T.rangeResponse.encode(T.rangeResponse.fromObject({ header: { revision: '9007199254740993' } })).finish();
    expect(() => decodeRangeResponse(Buffer.from(range))).toThrow(/does not decode/);
    const ok = T.rangeResponse.encode(T.rangeResponse.fromObject({ kvs: [kvWire('/a', 'x', 10)] })).finish();
    expect(() => decodeRangeResponse(Buffer.from(ok.subarray(0, ok.length - 2)))).toThrow(/does not decode/);
  });
});
