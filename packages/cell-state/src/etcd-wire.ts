/**
 * Lean decoders for the etcd replies a replica lives on: `Range`, `Txn` and `Watch` responses,
 * read straight from the protobuf wire into {@link KeyValue}s.
 *
 * Why: etcd3 decodes through @grpc/proto-loader with `longs: String, defaults: true`, i.e.
 * protobufjs `decode` then `toObject`, which turns every int64 (four per key, four per header)
 * into a `Long` and then a decimal string, copies every bytes field into a new Buffer, and
 * fills every absent field with its default; {@link EtcdKv} then parsed those strings back into
 * numbers. Every replica does that for every change in the cell. These decoders produce the
 * final form in one pass: revisions as numbers (checked to be safe integers), keys as strings,
 * values as views into the reply's buffer (no copy), lease ids as exact decimal strings.
 *
 * The objects keep the field names etcd3's watch manager reads (`watch_id`, `created`,
 * `canceled`, `compact_revision`, `cancel_reason`, `header.revision`, `events[].type`,
 * `events[].kv.key`), so etcd3's own watch bookkeeping runs unchanged on them.
 * Field numbers are those of etcd's `rpc.proto` and `kv.proto` (stable since etcd 3.0).
 */
import { KvError, type KeyValue } from './kv.js';
import { ProtoReader as Reader, utf8 } from './proto-reader.js';

/** `ResponseHeader` with the one field Omega reads. */
export interface WireHeader {
  readonly revision: number;
}

export interface WireRangeResponse {
  readonly header: WireHeader;
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: number;
}

export interface WireDeleteRangeResponse {
  readonly header: WireHeader;
  readonly deleted: number;
}

export interface WireResponseOp {
  readonly response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn' | undefined;
  readonly response_range?: WireRangeResponse;
  readonly response_put?: { readonly header: WireHeader };
  readonly response_delete_range?: WireDeleteRangeResponse;
  readonly response_txn?: WireTxnResponse;
}

export interface WireTxnResponse {
  readonly header: WireHeader;
  readonly succeeded: boolean;
  readonly responses: WireResponseOp[];
}

export interface WireEvent {
  /** etcd3 lower-cases this to emit `put` / `delete`. */
  readonly type: 'Put' | 'Delete';
  readonly kv: KeyValue;
  readonly prev_kv: null;
}

export interface WireWatchResponse {
  readonly header: WireHeader;
  /** A decimal string, as etcd3 compares and sends it back in cancel requests. */
  readonly watch_id: string;
  readonly created: boolean;
  readonly canceled: boolean;
  /** A decimal string (`'0'`: none), as etcd3's proto-loader form has it. */
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly fragment: boolean;
  readonly events: WireEvent[];
}

const ZERO_HEADER: WireHeader = Object.freeze({ revision: 0 });

/** An int64 that must be a safe integer (revisions, versions, counts). */
function int64(r: Reader): number {
  return r.safeUint('etcd integer');
}

function header(r: Reader, end: number): WireHeader {
  let revision = 0;
  while (r.pos < end) {
    const tag = r.uint();
    if (tag === 0x18) revision = int64(r);
    else r.skip(tag & 7);
  }
  return { revision };
}

function keyValue(r: Reader, end: number): KeyValue {
  const buf = r.buf;
  let key = '';
  let value: Uint8Array = EMPTY;
  let createRevision = 0;
  let modRevision = 0;
  let version = 0;
  let lease = '0';
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: {
        const to = r.delimited();
        key = utf8(buf, r.pos, to);
        r.pos = to;
        break;
      }
      case 0x10:
        createRevision = int64(r);
        break;
      case 0x18:
        modRevision = int64(r);
        break;
      case 0x20:
        version = int64(r);
        break;
      case 0x2a: {
        const to = r.delimited();
        // A view, no copy: the reply's buffer lives as long as a record still points into it.
        value = new Uint8Array(buf.buffer, buf.byteOffset + r.pos, to - r.pos);
        r.pos = to;
        break;
      }
      case 0x30:
        lease = r.int64String();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return { key, value, createRevision, modRevision, version, lease };
}

const EMPTY = new Uint8Array(0);

function rangeResponse(r: Reader, end: number): WireRangeResponse {
  let head = ZERO_HEADER;
  const kvs: KeyValue[] = [];
  let more = false;
  let count = 0;
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: {
        const to = r.delimited();
        head = header(r, to);
        break;
      }
      case 0x12: {
        const to = r.delimited();
        kvs.push(keyValue(r, to));
        break;
      }
      case 0x18:
        more = r.bool();
        break;
      case 0x20:
        count = int64(r);
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return { header: head, kvs, more, count };
}

/** A message with only a header (PutResponse without prev_kv, and what Omega ignores of others). */
function headerOnly(r: Reader, end: number): { header: WireHeader } {
  let head = ZERO_HEADER;
  while (r.pos < end) {
    const tag = r.uint();
    if (tag === 0x0a) {
      const to = r.delimited();
      head = header(r, to);
    } else r.skip(tag & 7);
  }
  return { header: head };
}

function deleteRangeResponse(r: Reader, end: number): WireDeleteRangeResponse {
  let head = ZERO_HEADER;
  let deleted = 0;
  while (r.pos < end) {
    const tag = r.uint();
    if (tag === 0x0a) {
      const to = r.delimited();
      head = header(r, to);
    } else if (tag === 0x10) deleted = int64(r);
    else r.skip(tag & 7);
  }
  return { header: head, deleted };
}

function responseOp(r: Reader, end: number): WireResponseOp {
  let op: WireResponseOp = { response: undefined };
  while (r.pos < end) {
    const tag = r.uint();
    if ((tag & 7) !== 2) {
      r.skip(tag & 7);
      continue;
    }
    const to = r.delimited();
    switch (tag >>> 3) {
      case 1:
        op = { response: 'response_range', response_range: rangeResponse(r, to) };
        break;
      case 2:
        op = { response: 'response_put', response_put: headerOnly(r, to) };
        break;
      case 3:
        op = { response: 'response_delete_range', response_delete_range: deleteRangeResponse(r, to) };
        break;
      case 4:
        op = { response: 'response_txn', response_txn: txnResponse(r, to) };
        break;
      default:
        r.pos = to;
    }
    r.pos = to;
  }
  return op;
}

function txnResponse(r: Reader, end: number): WireTxnResponse {
  let head = ZERO_HEADER;
  let succeeded = false;
  const responses: WireResponseOp[] = [];
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: {
        const to = r.delimited();
        head = header(r, to);
        break;
      }
      case 0x10:
        succeeded = r.bool();
        break;
      case 0x1a: {
        const to = r.delimited();
        responses.push(responseOp(r, to));
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  return { header: head, succeeded, responses };
}

function watchEvent(r: Reader, end: number): WireEvent | undefined {
  let type: 'Put' | 'Delete' = 'Put';
  let kv: KeyValue | undefined;
  while (r.pos < end) {
    const tag = r.uint();
    if (tag === 0x08) type = r.uint() === 1 ? 'Delete' : 'Put';
    else if (tag === 0x12) {
      const to = r.delimited();
      kv = keyValue(r, to);
    } else r.skip(tag & 7); // prev_kv is never asked for
  }
  return kv === undefined ? undefined : { type, kv, prev_kv: null };
}

function watchResponse(r: Reader, end: number): WireWatchResponse {
  let head = ZERO_HEADER;
  let watchId = '0';
  let created = false;
  let canceled = false;
  let compactRevision = '0';
  let cancelReason = '';
  let fragment = false;
  const events: WireEvent[] = [];
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: {
        const to = r.delimited();
        head = header(r, to);
        break;
      }
      case 0x10:
        watchId = r.int64String();
        break;
      case 0x18:
        created = r.bool();
        break;
      case 0x20:
        canceled = r.bool();
        break;
      case 0x28:
        compactRevision = r.int64String();
        break;
      case 0x32: {
        const to = r.delimited();
        cancelReason = r.buf.toString('utf8', r.pos, to);
        r.pos = to;
        break;
      }
      case 0x38:
        fragment = r.bool();
        break;
      case 0x5a: {
        const to = r.delimited();
        const event = watchEvent(r, to);
        if (event !== undefined) events.push(event);
        break;
      }
      default:
        r.skip(tag & 7);
    }
  }
  return { header: head, watch_id: watchId, created, canceled, compact_revision: compactRevision, cancel_reason: cancelReason, fragment, events };
}

function whole<T>(decode: (r: Reader, end: number) => T): (buf: Buffer) => T {
  return (buf) => {
    try {
      return decode(new Reader(buf, 0, buf.length), buf.length);
    } catch (error) {
      throw new KvError(`etcd sent a reply that does not decode: ${error instanceof Error ? error.message : String(error)}`, false, { cause: error });
    }
  };
}

/** Decodes a `RangeResponse` reply. */
export const decodeRangeResponse: (buf: Buffer) => WireRangeResponse = whole(rangeResponse);
/** Decodes a `TxnResponse` reply. */
export const decodeTxnResponse: (buf: Buffer) => WireTxnResponse = whole(txnResponse);
/** Decodes a `WatchResponse` stream message. */
export const decodeWatchResponse: (buf: Buffer) => WireWatchResponse = whole(watchResponse);
/** Decodes a `DeleteRangeResponse` reply. */
export const decodeDeleteRangeResponse: (buf: Buffer) => WireDeleteRangeResponse = whole(deleteRangeResponse);
/** Decodes a `PutResponse` reply (its header). */
export const decodePutResponse: (buf: Buffer) => { header: WireHeader } = whole(headerOnly);

/** Whether a decoded key-value is already in {@link KeyValue} form (from these decoders). */
export function isWireKeyValue(kv: unknown): kv is KeyValue {
  return typeof (kv as { modRevision?: unknown }).modRevision === 'number';
}
