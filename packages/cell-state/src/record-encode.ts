/**
 * Lean encoders of the two records every commit writes: `TaskRecord` and `MachineRecord`
 * (`protos/omega/v1/records.proto`). They write, byte for byte, what codec.ts's protobufjs
 * encoders write for the same record (fields in number order, proto3 defaults left out, nested
 * messages always present, map entries in `Object.keys` order; the test beside this file compares
 * both on random records), in one pass over a scratch buffer, without protobufjs's message
 * object and its linked list of writes: a commit encodes a machine record with every claim on the machine,
 * and a simulated day encodes millions of them.
 *
 * They handle the records Omega writes: ASCII strings, non-negative safe integers for the 64-bit
 * fields, integers in range for the 32-bit ones (int32 fields not negative). For anything else
 * they return `undefined` and the caller encodes with protobufjs, so no value can come out
 * differently. The field numbers here must follow records.proto.
 */
import { HEALTH_STATES, TASK_STATES, type Claim, type Machine, type Resources, type Task } from './types.js';

/**
 * Records are written into one scratch buffer (grown when a record needs more) and copied out:
 * one pass, no size computed up front but for nested messages. A string that turns out not to
 * be ASCII sets `bail`, and the caller falls back to protobufjs.
 */
let scratch = Buffer.allocUnsafe(64 * 1024);
let pos = 0;
let bail = false;

function reserve(bytes: number): void {
  if (pos + bytes <= scratch.length) return;
  const grown = Buffer.allocUnsafe(Math.max(scratch.length * 2, pos + bytes));
  scratch.copy(grown, 0, 0, pos);
  scratch = grown;
}

/** A non-negative safe integer, low 7 bits first (remainder and division: no 32-bit truncation). */
function varint(n: number): void {
  reserve(10);
  while (n > 0x7f) {
    scratch[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  scratch[pos++] = n;
}

function ascii(s: string): void {
  reserve(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) bail = true;
    scratch[pos++] = c;
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function begin(): void {
  pos = 0;
  bail = false;
}

/** What was written since {@link begin}, in a buffer of its own; undefined if a value was not one the lean path handles. */
function finish(): Buffer | undefined {
  if (bail) return undefined;
  const out = Buffer.allocUnsafe(pos);
  scratch.copy(out, 0, 0, pos);
  return out;
}

// ---- what the lean path handles ----------------------------------------------------------

/** Strings are checked for ASCII while they are written (see `bail`). */
const isAscii = (s: unknown): s is string => typeof s === 'string';

const isU64 = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isU32 = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
/** int32 fields: negative ones take protobufjs's ten-byte form, left to it. */
const isI32 = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0x7fffffff;

function leanResources(r: Resources | undefined): boolean {
  return r !== null && typeof r === 'object' && isU64(r.cpuMillis) && isU64(r.memoryBytes);
}

function leanClaim(c: Claim): boolean {
  return c !== null && typeof c === 'object' && isAscii(c.id) && isAscii(c.taskId) && isU32(c.attempt) && leanResources(c.resources) && isI32(c.priority) && isAscii(c.scheduler);
}

// ---- field writers (tag, then value; defaults skipped as protobufjs skips them) ----------

function str(tag: number, s: string): void {
  if (s.length === 0) return;
  varint(tag);
  varint(s.length);
  ascii(s);
}

/** `tag` is the field's key (field number << 3 | wire type), written as the varint it is. */
function num(tag: number, n: number): void {
  if (n === 0) return;
  varint(tag);
  varint(n);
}

function bool(tag: number, b: boolean): void {
  if (!b) return;
  varint(tag);
  varint(1);
}

function resourcesSize(r: Resources): number {
  return (r.cpuMillis === 0 ? 0 : 1 + varintSize(r.cpuMillis)) + (r.memoryBytes === 0 ? 0 : 1 + varintSize(r.memoryBytes));
}

/** A Resources message under `tag`: always present, its fields only when not zero. */
function resources(tag: number, r: Resources): void {
  varint(tag);
  varint(resourcesSize(r));
  num(0x8, r.cpuMillis);
  num(0x10, r.memoryBytes);
}

// ---- TaskRecord --------------------------------------------------------------------------

type TaskFields = Omit<Task, 'revision' | 'id'>;

/* Each field read once, checked as it is written: a value the lean path does not handle sets `bail`. */

function u32(tag: number, n: unknown): void {
  if (isU32(n)) num(tag, n);
  else bail = true;
}

function u64(tag: number, n: unknown): void {
  if (isU64(n)) num(tag, n);
  else bail = true;
}

function i32(tag: number, n: unknown): void {
  if (isI32(n)) num(tag, n);
  else bail = true;
}

function text(tag: number, s: unknown): void {
  if (typeof s === 'string') str(tag, s);
  else bail = true;
}

function task(t: TaskFields): void {
  text(0x0a, t.jobId);
  u32(0x10, t.index);
  u32(0x18, t.attempt);
  text(0x22, t.claimId);
  text(0x2a, t.machineId);
  text(0x32, t.scheduler);
  num(0x38, TASK_STATES.indexOf(t.state) + 1);
  text(0x42, t.reason);
  const exitCode = t.exitCode;
  if (exitCode !== undefined) i32(0x48, exitCode);
  text(0x52, t.signal);
  u32(0x58, t.pid);
  u64(0x60, t.placedAtMs);
  u64(0x68, t.startedAtMs);
  u64(0x70, t.finishedAtMs);
  const cpuSeconds = t.cpuSeconds;
  if (typeof cpuSeconds !== 'number') bail = true;
  else if (!Object.is(cpuSeconds, 0)) {
    // protobufjs writes a double unless it is +0 (so -0 and NaN are written).
    varint(0x79);
    reserve(8);
    pos = scratch.writeDoubleLE(cpuSeconds, pos);
  }
  u64(0x80, t.peakMemoryBytes);
  const r = t.resources;
  if (leanResources(r)) resources(0x8a, r);
  else bail = true;
  i32(0x90, t.priority);
  bool(0x98, exitCode !== undefined);
  u32(0xa0, t.restarts);
  u64(0xa8, t.notBeforeMs);
  const version = t.version;
  if (version !== undefined) u32(0xb0, version);
  num(0xb8, t.health === undefined ? 0 : HEALTH_STATES.indexOf(t.health) + 1);
  const healthSinceMs = t.healthSinceMs;
  if (healthSinceMs !== undefined) u64(0xc0, healthSinceMs);
  text(0xca, t.message);
}

/** The TaskRecord bytes codec.ts's `encodeTask` writes, or `undefined` when the lean path does not handle a value. */
export function leanEncodeTask(t: TaskFields): Buffer | undefined {
  begin();
  task(t);
  return finish();
}

// ---- MachineRecord -----------------------------------------------------------------------

type MachineFields = Omit<Machine, 'seq'>;

function leanMachine(m: MachineFields): boolean {
  if (!isAscii(m.id) || !leanResources(m.capacity) || !isAscii(m.unschedulableReason)) return false;
  if (typeof m.schedulable !== 'boolean' || typeof m.enforcementDisabled !== 'boolean' || typeof m.hollow !== 'boolean') return false;
  if (m.attributes === null || typeof m.attributes !== 'object') return false;
  for (const k of Object.keys(m.attributes)) if (!isAscii(k) || !isAscii(m.attributes[k])) return false;
  if (m.cordon !== undefined && (m.cordon === null || !isAscii(m.cordon.reason) || !isU64(m.cordon.sinceMs) || !isU64(m.cordon.drainDeadlineMs))) return false;
  if (!Array.isArray(m.claims)) return false;
  for (const c of m.claims) if (!leanClaim(c)) return false;
  return true;
}

function claimSize(c: Claim): number {
  const r = resourcesSize(c.resources);
  return (
    (c.id.length === 0 ? 0 : 1 + varintSize(c.id.length) + c.id.length) +
    (c.taskId.length === 0 ? 0 : 1 + varintSize(c.taskId.length) + c.taskId.length) +
    (c.attempt === 0 ? 0 : 1 + varintSize(c.attempt)) +
    1 + varintSize(r) + r +
    (c.priority === 0 ? 0 : 1 + varintSize(c.priority)) +
    (c.scheduler.length === 0 ? 0 : 1 + varintSize(c.scheduler.length) + c.scheduler.length)
  );
}

function machine(m: MachineFields): void {
  str(0x0a, m.id);
  resources(0x12, m.capacity);
  for (const k of Object.keys(m.attributes)) {
    const v = m.attributes[k] as string;
    // A map entry: both fields always written, even empty.
    varint(0x1a);
    varint(2 + varintSize(k.length) + k.length + varintSize(v.length) + v.length);
    varint(0x0a);
    varint(k.length);
    ascii(k);
    varint(0x12);
    varint(v.length);
    ascii(v);
  }
  bool(0x20, m.schedulable);
  str(0x2a, m.unschedulableReason);
  bool(0x30, m.enforcementDisabled);
  bool(0x38, m.hollow);
  for (const c of m.claims) {
    varint(0x42);
    varint(claimSize(c));
    str(0x0a, c.id);
    str(0x12, c.taskId);
    num(0x18, c.attempt);
    resources(0x22, c.resources);
    num(0x28, c.priority);
    str(0x32, c.scheduler);
  }
  if (m.cordon !== undefined) {
    const { reason, sinceMs, drainDeadlineMs } = m.cordon;
    varint(0x4a);
    varint((reason.length === 0 ? 0 : 1 + varintSize(reason.length) + reason.length) + (sinceMs === 0 ? 0 : 1 + varintSize(sinceMs)) + (drainDeadlineMs === 0 ? 0 : 1 + varintSize(drainDeadlineMs)));
    str(0x0a, reason);
    num(0x10, sinceMs);
    num(0x18, drainDeadlineMs);
  }
}

/** The MachineRecord bytes codec.ts's `encodeMachine` writes, or `undefined` when the lean path does not handle a value. */
export function leanEncodeMachine(m: MachineFields): Buffer | undefined {
  if (!leanMachine(m)) return undefined;
  begin();
  machine(m);
  return finish();
}
