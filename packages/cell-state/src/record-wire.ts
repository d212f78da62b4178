/**
 * Lean decoders of the two records every replica decodes on every change: `TaskRecord` and
 * `MachineRecord` (`protos/omega/v1/records.proto`). They read the wire in one pass with
 * {@link ProtoReader} (no `Long` objects, no intermediate message) and return exactly what
 * codec.ts's protobufjs decoders return, field for field: the test beside this file checks
 * both on the same bytes. The field numbers here must follow records.proto.
 */
import { ProtoReader } from './proto-reader.js';
import { HEALTH_STATES, TASK_STATES, type Claim, type ClaimId, type JobId, type Machine, type MachineId, type Resources, type Task, type TaskId } from './types.js';

/**
 * A replica holds every task and claim of the cell, and most of their strings and resource
 * requests repeat (a job's id and request in each of its tasks, a machine's id in each task
 * placed there, a handful of scheduler names): decoded values are shared, so a replica of
 * 100,000 tasks holds a few thousand copies, not hundreds of thousands (memory, and the GC's
 * work, which grows with the objects that survive). Records are immutable, so sharing is safe.
 */
const INTERNED_MAX = 65_536;
let interned = new Map<string, string>();

/** The one copy of `text` (bounded: the table starts over when full). */
function intern(text: string): string {
  if (text.length === 0) return '';
  const known = interned.get(text);
  if (known !== undefined) return known;
  if (interned.size >= INTERNED_MAX) interned = new Map();
  interned.set(text, text);
  return text;
}

/** The last resources decoded: tasks of one job, and their claims, ask for the same. */
let lastResources: Resources = Object.freeze({ cpuMillis: 0, memoryBytes: 0 });

function shared(cpuMillis: number, memoryBytes: number): Resources {
  if (lastResources.cpuMillis !== cpuMillis || lastResources.memoryBytes !== memoryBytes) lastResources = Object.freeze({ cpuMillis, memoryBytes });
  return lastResources;
}

function resources(r: ProtoReader, end: number): Resources {
  let cpuMillis = 0;
  let memoryBytes = 0;
  while (r.pos < end) {
    const tag = r.uint();
    if (tag === 0x08) cpuMillis = r.safeUint('cpu_millis');
    else if (tag === 0x10) memoryBytes = r.safeUint('memory_bytes');
    else r.skip(tag & 7);
  }
  return shared(cpuMillis, memoryBytes);
}

const NO_RESOURCES = (): Resources => shared(0, 0);

/** Whether `id` is `<jobId>/<index>` (the key's own id string can then be the task's). */
function isTaskId(id: string, jobId: string, index: number): boolean {
  if (id.length <= jobId.length + 1 || !id.startsWith(jobId) || id.charCodeAt(jobId.length) !== 0x2f) return false;
  let n = 0;
  for (let i = jobId.length + 1; i < id.length; i++) {
    const c = id.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9 || (c === 0 && n === 0 && i + 1 < id.length)) return false;
    n = n * 10 + c;
  }
  return n === index;
}

/**
 * Decodes a TaskRecord; `revision` is its key's mod revision. `keyId`, the id in the record's
 * key, is used as the task's id when it is the same text (it is, for every record Omega writes),
 * instead of a new string. Throws on malformed bytes.
 */
export function decodeTaskRecord(bytes: Uint8Array, revision: number, keyId?: string): Task {
  const r = new ProtoReader(bytes);
  const end = r.end;
  let jobId = '';
  let index = 0;
  let attempt = 0;
  let claimId = '';
  let machineId = '';
  let scheduler = '';
  let state = 0;
  let reason = '';
  let exitCode = 0;
  let signal = '';
  let pid = 0;
  let placedAtMs = 0;
  let startedAtMs = 0;
  let finishedAtMs = 0;
  let cpuSeconds = 0;
  let peakMemoryBytes = 0;
  let res: Resources | undefined;
  let priority = 0;
  let hasExitCode = false;
  let restarts = 0;
  let notBeforeMs = 0;
  let version = 0;
  let health = 0;
  let healthSinceMs = 0;
  let message = '';
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: jobId = intern(r.string()); break; // 1
      case 0x10: index = r.uint32(); break; // 2
      case 0x18: attempt = r.uint32(); break; // 3
      case 0x22: claimId = r.string(); break; // 4
      case 0x2a: machineId = intern(r.string()); break; // 5
      case 0x32: scheduler = intern(r.string()); break; // 6
      case 0x38: state = r.int32(); break; // 7
      case 0x42: reason = intern(r.string()); break; // 8
      case 0x48: exitCode = r.int32(); break; // 9
      case 0x52: signal = intern(r.string()); break; // 10
      case 0x58: pid = r.uint32(); break; // 11
      case 0x60: placedAtMs = r.safeUint('placed_at_ms'); break; // 12
      case 0x68: startedAtMs = r.safeUint('started_at_ms'); break; // 13
      case 0x70: finishedAtMs = r.safeUint('finished_at_ms'); break; // 14
      case 0x79: cpuSeconds = r.double(); break; // 15
      case 0x80: peakMemoryBytes = r.safeUint('peak_memory_bytes'); break; // 16 (two-byte tags from here)
      case 0x8a: { const to = r.delimited(); res = resources(r, to); r.pos = to; break; } // 17
      case 0x90: priority = r.int32(); break; // 18
      case 0x98: hasExitCode = r.bool(); break; // 19
      case 0xa0: restarts = r.uint32(); break; // 20
      case 0xa8: notBeforeMs = r.safeUint('not_before_ms'); break; // 21
      case 0xb0: version = r.uint32(); break; // 22
      case 0xb8: health = r.int32(); break; // 23
      case 0xc0: healthSinceMs = r.safeUint('health_since_ms'); break; // 24
      case 0xca: message = r.string(); break; // 25
      default: r.skip(tag & 7);
    }
  }
  const healthState = HEALTH_STATES[health - 1];
  const task: { -readonly [K in keyof Task]: Task[K] } = {
    id: (keyId !== undefined && isTaskId(keyId, jobId, index) ? keyId : `${jobId}/${index}`) as TaskId,
    jobId: jobId as JobId,
    index,
    attempt,
    claimId: claimId as ClaimId,
    machineId: machineId as MachineId,
    scheduler,
    state: TASK_STATES[state - 1] ?? 'pending',
    reason,
    message,
    signal,
    pid,
    placedAtMs,
    startedAtMs,
    finishedAtMs,
    cpuSeconds,
    peakMemoryBytes,
    resources: res ?? NO_RESOURCES(),
    priority,
    restarts,
    notBeforeMs,
    revision,
  };
  // Optional fields stay absent as codec.ts leaves them, so both decoders' results compare equal.
  if (hasExitCode) task.exitCode = exitCode;
  if (healthState !== undefined) {
    task.health = healthState;
    task.healthSinceMs = healthSinceMs;
  }
  if (version > 0) task.version = version;
  return task;
}

function claim(r: ProtoReader, end: number, machineId: MachineId): Claim {
  let id = '';
  let taskId = '';
  let attempt = 0;
  let res: Resources | undefined;
  let priority = 0;
  let scheduler = '';
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: id = r.string(); break;
      case 0x12: taskId = r.string(); break;
      case 0x18: attempt = r.uint32(); break;
      case 0x22: { const to = r.delimited(); res = resources(r, to); r.pos = to; break; }
      case 0x28: priority = r.int32(); break;
      case 0x32: scheduler = intern(r.string()); break;
      default: r.skip(tag & 7);
    }
  }
  return { id: id as ClaimId, taskId: taskId as TaskId, machineId, attempt, resources: res ?? NO_RESOURCES(), priority, scheduler };
}

/** Decodes a MachineRecord; `seq` is its key's mod revision. Throws on malformed bytes. */
export function decodeMachineRecord(bytes: Uint8Array, seq: number): Machine {
  const r = new ProtoReader(bytes);
  const end = r.end;
  let id = '';
  let capacity: Resources | undefined;
  const attributes: Record<string, string> = {};
  let schedulable = false;
  let unschedulableReason = '';
  let enforcementDisabled = false;
  let hollow = false;
  /** Claims are decoded after the loop: each carries the machine's id, which may come later. */
  const claimRanges: number[] = [];
  let cordon: { reason: string; sinceMs: number; drainDeadlineMs: number } | undefined;
  while (r.pos < end) {
    const tag = r.uint();
    switch (tag) {
      case 0x0a: id = intern(r.string()); break;
      case 0x12: { const to = r.delimited(); capacity = resources(r, to); r.pos = to; break; }
      case 0x1a: {
        const to = r.delimited();
        let key = '';
        let value = '';
        while (r.pos < to) {
          const t = r.uint();
          if (t === 0x0a) key = r.string();
          else if (t === 0x12) value = r.string();
          else r.skip(t & 7);
        }
        attributes[key] = value;
        break;
      }
      case 0x20: schedulable = r.bool(); break;
      case 0x2a: unschedulableReason = r.string(); break;
      case 0x30: enforcementDisabled = r.bool(); break;
      case 0x38: hollow = r.bool(); break;
      case 0x42: { const to = r.delimited(); claimRanges.push(r.pos, to); r.pos = to; break; }
      case 0x4a: {
        const to = r.delimited();
        const c = cordon ?? { reason: '', sinceMs: 0, drainDeadlineMs: 0 };
        while (r.pos < to) {
          const t = r.uint();
          if (t === 0x0a) c.reason = r.string();
          else if (t === 0x10) c.sinceMs = r.safeUint('since_ms');
          else if (t === 0x18) c.drainDeadlineMs = r.safeUint('drain_deadline_ms');
          else r.skip(t & 7);
        }
        cordon = c;
        break;
      }
      default: r.skip(tag & 7);
    }
  }
  const machineId = id as MachineId;
  const claims: Claim[] = new Array<Claim>(claimRanges.length / 2);
  for (let i = 0; i < claimRanges.length; i += 2) {
    r.pos = claimRanges[i] as number;
    claims[i / 2] = claim(r, claimRanges[i + 1] as number, machineId);
  }
  return {
    id: machineId,
    capacity: capacity ?? NO_RESOURCES(),
    attributes,
    schedulable,
    unschedulableReason,
    enforcementDisabled,
    hollow,
    ...(cordon === undefined ? {} : { cordon }),
    claims,
    seq,
  };
}

function checkResources(r: ProtoReader, end: number): void {
  while (r.pos < end) {
    const tag = r.uint();
    if (tag === 0x08) r.safeUint('cpu_millis');
    else if (tag === 0x10) r.safeUint('memory_bytes');
    else r.skip(tag & 7);
  }
}

/**
 * The machine a task record is placed on (field 5; '' when absent, the last one when repeated,
 * as a full decode reads it), without decoding the rest: what a node agent's mirror asks of
 * every task record in the cell before it holds the few on its own machines. Throws
 * {@link MalformedMessageError} for bytes that are no message.
 */
export function taskRecordMachineId(bytes: Uint8Array): string {
  const r = new ProtoReader(bytes);
  let machineId = '';
  while (r.pos < r.end) {
    const tag = r.uint();
    if (tag === 0x2a) machineId = r.string();
    else r.skip(tag & 7);
  }
  return machineId;
}

/**
 * Throws exactly when {@link decodeTaskRecord} would, without building anything: the structure
 * and the 64-bit fields that must be exact. Lets a replica accept a record now and decode it
 * when it is read ({@link RawTask}), with an undecodable one refused at once as before.
 */
export function checkTaskRecord(bytes: Uint8Array): void {
  const r = new ProtoReader(bytes);
  while (r.pos < r.end) {
    const tag = r.uint();
    switch (tag) {
      case 0x60: case 0x68: case 0x70: case 0x80: case 0xa8: case 0xc0:
        r.safeUint('task time or size');
        break;
      case 0x79:
        r.double();
        break;
      case 0x8a: { const to = r.delimited(); checkResources(r, to); r.pos = to; break; }
      default:
        r.skip(tag & 7);
    }
  }
}

/**
 * A task record held undecoded: its bytes as a one-byte string (one small heap object that pins
 * no reply buffer) and its revision. Most versions of a task a replica receives (placed, running,
 * succeeded) are never read; one that is read is decoded then, once ({@link decodeRawTask}).
 */
export class RawTask {
  /**
   * The last {@link liveness} asked and its answer: a task is asked about its one claim again by
   * every placement and commit that counts its machine while it stays undecoded, and the bytes
   * never change.
   */
  private asked: string | undefined;
  private answer: Pick<Task, 'attempt' | 'claimId' | 'state'> | undefined;

  constructor(
    readonly bytes: string,
    readonly revision: number,
  ) {}

  /** Holds `bytes` (checked with {@link checkTaskRecord} first) for a later decode. */
  static of(bytes: Uint8Array, revision: number): RawTask {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new RawTask(buf.toString('latin1'), revision);
  }

  decode(keyId: string): Task {
    return decodeTaskRecord(Buffer.from(this.bytes, 'latin1'), this.revision, keyId);
  }

  /**
   * What a claim's liveness needs (see `isClaimLive`), read from the bytes without decoding the
   * record: the attempt, the state, and as claim id `claimId` when the record's is that one (else
   * a different string). Undefined
   * when it cannot tell exactly here (a non-ASCII claim id, an out-of-range number): the caller
   * decodes the record instead.
   */
  liveness(claimId: string): Pick<Task, 'attempt' | 'claimId' | 'state'> | undefined {
    if (claimId === this.asked) return this.answer;
    const answer = this.readLiveness(claimId);
    this.asked = claimId;
    this.answer = answer;
    return answer;
  }

  private readLiveness(claimId: string): Pick<Task, 'attempt' | 'claimId' | 'state'> | undefined {
    for (let i = 0; i < claimId.length; i++) if (claimId.charCodeAt(i) > 0x7f) return undefined;
    const s = this.bytes;
    const end = s.length;
    let pos = 0;
    let attempt = 0;
    let state = 0;
    let sameClaim = claimId.length === 0;
    // A varint of up to 32 bits; -1 for a longer one (then the record is decoded instead).
    const varint = (): number => {
      let value = 0;
      for (let shift = 0; shift < 35; shift += 7) {
        if (pos >= end) return -1;
        const byte = s.charCodeAt(pos++);
        value += (byte & 0x7f) * 2 ** shift;
        if ((byte & 0x80) === 0) return value < 2 ** 32 ? value : -1;
      }
      return -1;
    };
    while (pos < end) {
      const tag = varint();
      if (tag < 0) return undefined;
      switch (tag & 7) {
        case 0: {
          const value = varint();
          if (value < 0 && (tag === 0x18 || tag === 0x38)) return undefined;
          if (value < 0) {
            // Some other field's long varint (a time): skip its bytes.
            while (pos < end && (s.charCodeAt(pos - 1) & 0x80) !== 0) pos++;
            break;
          }
          if (tag === 0x18) attempt = value;
          else if (tag === 0x38) state = value;
          break;
        }
        case 1:
          pos += 8;
          break;
        case 2: {
          const length = varint();
          if (length < 0) return undefined;
          // The claim id (field 4) compared in place: an ASCII id's characters are its bytes.
          if (tag === 0x22) sameClaim = length === claimId.length && s.startsWith(claimId, pos);
          pos += length;
          break;
        }
        case 5:
          pos += 4;
          break;
        default:
          return undefined;
      }
    }
    // The record's claim id itself is not needed: only whether it is `claimId`.
    return { attempt, state: TASK_STATES[state - 1] ?? 'pending', claimId: (sameClaim ? claimId : `${claimId}\0`) as ClaimId };
  }
}
