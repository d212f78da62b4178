/**
 * A minimal protobuf wire reader for the hot decoders (etcd replies in `etcd-wire.ts`, task and
 * machine records in `record-wire.ts`): varints as JavaScript numbers without `Long` objects,
 * strings and byte views straight from the buffer. Everything else keeps protobufjs.
 */

/** The bytes are not a well-formed protobuf message. */
export class MalformedMessageError extends Error {
  readonly retryable = false;
  constructor(what: string, options?: { cause?: unknown }) {
    super(`malformed protobuf message: ${what}`, options);
    this.name = 'MalformedMessageError';
  }
}

const TWO_28 = 2 ** 28;

/**
 * UTF-8 text of `buf[start, end)`. `Buffer#utf8Slice` is what `toString('utf8', start, end)`
 * ends in, without its argument handling: it runs for every string of every record a replica
 * decodes. Falls back to `toString` where a Buffer lacks it.
 */
export const utf8: (buf: Buffer, start: number, end: number) => string = (() => {
  const slice = (Buffer.prototype as unknown as { utf8Slice?: (start: number, end: number) => string }).utf8Slice;
  if (typeof slice !== 'function') return (buf: Buffer, start: number, end: number): string => buf.toString('utf8', start, end);
  return (buf: Buffer, start: number, end: number): string => slice.call(buf, start, end);
})();
const TWO_35 = 2 ** 35;

export class ProtoReader {
  pos: number;
  readonly buf: Buffer;

  constructor(bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
  }

  /** An unsigned varint of up to 64 bits, exact below 2^53 (above: the nearest double). */
  uint(): number {
    const buf = this.buf;
    let low = 0;
    let shift = 0;
    let byte: number;
    do {
      if (this.pos >= this.end) throw new MalformedMessageError('truncated varint');
      byte = buf[this.pos++] as number;
      // The first four bytes (28 bits) fit a 32-bit integer exactly.
      if (shift === 28) return this.uintTail(low >>> 0, byte);
      low |= (byte & 0x7f) << shift;
      shift += 7;
    } while (byte & 0x80);
    return low >>> 0;
  }

  private uintTail(low28: number, fifth: number): number {
    let value = low28 + (fifth & 0x7f) * TWO_28;
    let scale = TWO_35;
    let byte = fifth;
    let count = 5;
    while (byte & 0x80) {
      if (this.pos >= this.end || ++count > 10) throw new MalformedMessageError('bad varint');
      byte = this.buf[this.pos++] as number;
      value += (byte & 0x7f) * scale;
      scale *= 128;
    }
    return value;
  }

  /** A uint32 field (the low 32 bits, as protobuf truncates). */
  uint32(): number {
    const start = this.pos;
    const value = this.uint();
    return value < 2 ** 32 ? value : this.low32(start) >>> 0;
  }

  /** An int32 or enum field (negative values are sign-extended 10-byte varints). */
  int32(): number {
    const start = this.pos;
    const value = this.uint();
    return value < 2 ** 31 ? value : this.low32(start) | 0;
  }

  private low32(start: number): number {
    let low = 0;
    for (let i = 0; i < 5; i++) low |= ((this.buf[start + i] as number) & 0x7f) << (7 * i);
    return low;
  }

  /** A non-negative 64-bit integer that must be exact (revisions, times, byte counts). */
  safeUint(what: string): number {
    const value = this.uint();
    if (value > Number.MAX_SAFE_INTEGER) throw new MalformedMessageError(`${what} out of range (${value})`);
    return value;
  }

  /** An int64 as its exact signed decimal string (ids that use all 64 bits, such as leases). */
  int64String(): string {
    const start = this.pos;
    const value = this.uint();
    if (value <= Number.MAX_SAFE_INTEGER) return String(value);
    let big = 0n;
    let shift = 0n;
    for (let i = start; i < this.pos; i++) {
      big |= BigInt((this.buf[i] as number) & 0x7f) << shift;
      shift += 7n;
    }
    return BigInt.asIntN(64, big).toString();
  }

  bool(): boolean {
    return this.uint() !== 0;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new MalformedMessageError('truncated double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /** Reads a length prefix; returns where the field ends (the reader is at its start). */
  delimited(): number {
    const length = this.uint();
    const end = this.pos + length;
    if (end > this.end) throw new MalformedMessageError('length past the end');
    return end;
  }

  string(): string {
    const end = this.delimited();
    const text = utf8(this.buf, this.pos, end);
    this.pos = end;
    return text;
  }

  /** A view of a bytes field (no copy: it shares the message's buffer). */
  bytes(): Uint8Array {
    const end = this.delimited();
    const view = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.pos, end - this.pos);
    this.pos = end;
    return view;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.uint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new MalformedMessageError(`wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new MalformedMessageError('field past the end');
  }
}
