/**
 * A lean encoder of etcd's `TxnRequest` (etcd's `rpc.proto`), straight from Omega's
 * {@link TxnRequest}: one size pass and one write into a single buffer. It replaces building
 * etcd3's request objects and proto-loader's `fromObject` + `encode` for every commit, which
 * cost a scheduler more CPU than deciding the placements. Semantics are those of the request
 * objects `etcd-kv.ts` built before: every compare carries its target value (also 0), a put
 * carries its lease unless `'0'`, ranges and deletes cover `[key, prefixEnd)` for a prefix.
 */
import type { Compare, Op, TxnRequest } from './kv.js';

/** etcd's `Compare.CompareResult` numbers. */
const RESULT = { '==': 0, '>': 1, '<': 2, '!=': 3 } as const;
/** etcd's `Compare.CompareTarget` numbers, and the field of `target_union` each uses. */
const TARGET = { version: [0, 4], create: [1, 5], mod: [2, 6], value: [3, 7], lease: [4, 8] } as const;

function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  let size = 4;
  let rest = Math.floor(value / 0x10000000);
  while (rest > 0) {
    size++;
    rest = Math.floor(rest / 128);
  }
  return size;
}

/** A lease id (decimal int64 string) as the unsigned value its varint carries. */
function leaseValue(id: string): bigint | number {
  if (id.length < 16) return Number(id);
  return BigInt.asUintN(64, BigInt(id));
}

/** A compare's number as its varint value: negative int64s are two's complement, as etcd reads them. */
function compareValue(value: number): bigint | number {
  return value >= 0 ? value : BigInt.asUintN(64, BigInt(value));
}

function uint64Size(value: bigint | number): number {
  if (typeof value === 'number') return varintSize(value);
  let size = 1;
  let rest = value >> 7n;
  while (rest > 0n) {
    size++;
    rest >>= 7n;
  }
  return size;
}

/** Bytes of a key: Omega's keys are ASCII, but any string is encoded as UTF-8. */
function keyBytes(key: string): number {
  return Buffer.byteLength(key, 'utf8');
}

/** Bytes of a field with a length prefix, tag included (tags here are one byte, except range_end's two). */
function delimitedSize(tagBytes: number, length: number): number {
  return tagBytes + varintSize(length) + length;
}

/** The range end of a prefix as a string of bytes: etcd's byte-wise increment of the last byte below 0xff. */
function prefixEndBuffer(key: string): Buffer {
  if (key.length === 0) return Buffer.from([0]);
  const bytes = Buffer.from(key, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = (end[i] as number) + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** The encoded sizes of one request, computed once and consumed in the same order by the writer. */
class Sizes {
  readonly list: number[] = [];
  readonly ends: Buffer[] = [];
}

function compareSize(c: Compare, sizes: Sizes): number {
  let size = 2 + 2 + delimitedSize(1, keyBytes(c.key));
  switch (c.target) {
    case 'value':
      size += delimitedSize(1, c.value.length);
      break;
    case 'lease':
      size += 1 + uint64Size(leaseValue(c.value));
      break;
    default:
      size += 1 + uint64Size(compareValue(c.value));
  }
  sizes.list.push(size);
  return size;
}

function rangeBody(key: string, prefix: boolean, sizes: Sizes): number {
  if (!prefix) return delimitedSize(1, keyBytes(key));
  const end = prefixEndBuffer(key);
  sizes.ends.push(end);
  // An empty prefix is every key: `\0` to `\0`.
  return delimitedSize(1, key.length === 0 ? 1 : keyBytes(key)) + delimitedSize(1, end.length);
}

function opSize(op: Op, sizes: Sizes): number {
  const slot = sizes.list.length;
  sizes.list.push(0);
  let body: number;
  switch (op.type) {
    case 'put': {
      body = delimitedSize(1, keyBytes(op.key)) + delimitedSize(1, op.value.length);
      if (op.lease !== undefined && op.lease !== '0') body += 1 + uint64Size(leaseValue(op.lease));
      break;
    }
    case 'range':
      body = rangeBody(op.key, op.prefix === true, sizes);
      break;
    case 'delete':
      body = rangeBody(op.key, op.prefix === true, sizes);
      break;
    case 'txn':
      body = txnSize(op.txn, sizes);
      break;
  }
  sizes.list[slot] = body;
  // The RequestOp (one of its fields 1-4 holding the body), as a field of the TxnRequest.
  return delimitedSize(1, delimitedSize(1, body));
}

function txnSize(txn: TxnRequest, sizes: Sizes): number {
  let size = 0;
  for (const c of txn.compare) size += delimitedSize(1, compareSize(c, sizes));
  for (const op of txn.success) size += opSize(op, sizes);
  for (const op of txn.failure) size += opSize(op, sizes);
  return size;
}

class Writer {
  pos = 0;
  size = 0;
  end = 0;
  constructor(
    readonly buf: Buffer,
    readonly sizes: Sizes,
  ) {}

  varint(value: number): void {
    const buf = this.buf;
    while (value >= 0x80) {
      buf[this.pos++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    buf[this.pos++] = value;
  }

  uint64(value: bigint | number): void {
    if (typeof value === 'number') {
      this.varint(value);
      return;
    }
    while (value >= 0x80n) {
      this.buf[this.pos++] = Number(value & 0x7fn) | 0x80;
      value >>= 7n;
    }
    this.buf[this.pos++] = Number(value);
  }

  string(tag: number, text: string, length: number): void {
    this.buf[this.pos++] = tag;
    this.varint(length);
    this.pos += this.buf.write(text, this.pos, length, 'utf8');
  }

  bytes(tag: number, bytes: Uint8Array): void {
    this.buf[this.pos++] = tag;
    this.varint(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  next(): number {
    return this.sizes.list[this.size++] as number;
  }

  compare(c: Compare): void {
    this.buf[this.pos++] = 0x0a; // TxnRequest.compare
    this.varint(this.next());
    const [target, field] = TARGET[c.target];
    this.buf[this.pos++] = 0x08;
    this.buf[this.pos++] = RESULT[c.op];
    this.buf[this.pos++] = 0x10;
    this.buf[this.pos++] = target;
    this.string(0x1a, c.key, keyBytes(c.key));
    switch (c.target) {
      case 'value':
        this.bytes((field << 3) | 2, c.value);
        break;
      case 'lease':
        this.buf[this.pos++] = field << 3;
        this.uint64(leaseValue(c.value));
        break;
      default:
        this.buf[this.pos++] = field << 3;
        this.uint64(compareValue(c.value));
    }
  }

  range(key: string, prefix: boolean): void {
    if (!prefix) {
      this.string(0x0a, key, keyBytes(key));
      return;
    }
    const end = this.sizes.ends[this.end++] as Buffer;
    if (key.length === 0) this.bytes(0x0a, end);
    else this.string(0x0a, key, keyBytes(key));
    this.bytes(0x12, end);
  }

  op(tag: number, op: Op): void {
    const body = this.next();
    const field = op.type === 'range' ? 1 : op.type === 'put' ? 2 : op.type === 'delete' ? 3 : 4;
    this.buf[this.pos++] = tag; // TxnRequest.success (0x12) or .failure (0x1a)
    this.varint(delimitedSize(1, body));
    this.buf[this.pos++] = (field << 3) | 2;
    this.varint(body);
    switch (op.type) {
      case 'put':
        this.string(0x0a, op.key, keyBytes(op.key));
        this.bytes(0x12, op.value);
        if (op.lease !== undefined && op.lease !== '0') {
          this.buf[this.pos++] = 0x18;
          this.uint64(leaseValue(op.lease));
        }
        return;
      case 'range':
      case 'delete':
        this.range(op.key, op.prefix === true);
        return;
      case 'txn':
        this.txn(op.txn);
        return;
    }
  }

  txn(txn: TxnRequest): void {
    for (const c of txn.compare) this.compare(c);
    for (const op of txn.success) this.op(0x12, op);
    for (const op of txn.failure) this.op(0x1a, op);
  }
}

/** The wire bytes of `request` as etcd's `TxnRequest`. */
export function encodeTxnRequest(request: TxnRequest): Buffer {
  const sizes = new Sizes();
  const size = txnSize(request, sizes);
  const writer = new Writer(Buffer.allocUnsafe(size), sizes);
  writer.txn(request);
  if (writer.pos !== size) throw new Error(`TxnRequest encoder wrote ${writer.pos} bytes, sized ${size}`);
  return writer.buf;
}
