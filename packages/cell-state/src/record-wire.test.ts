import { describe, expect, it } from 'vitest';
import { decodeMachine, decodeTask, encodeMachine, encodeTask } from './codec.js';
import { MalformedMessageError } from './proto-reader.js';
import { decodeMachineRecord, decodeTaskRecord, taskRecordMachineId } from './record-wire.js';
import { HEALTH_STATES, TASK_STATES, claimId, machineId, taskId, type Claim, type Machine, type Task } from './types.js';

/** A small seeded generator (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rnd: () => number, values: readonly T[]): T {
  return values[Math.floor(rnd() * values.length)] as T;
}

function someTask(rnd: () => number): Omit<Task, 'revision' | 'id'> {
  const big = (): number => (rnd() < 0.3 ? 0 : Math.floor(rnd() * Number.MAX_SAFE_INTEGER));
  const health = rnd() < 0.5 ? undefined : pick(rnd, HEALTH_STATES);
  return {
    jobId: `job-${Math.floor(rnd() * 1000)}` as Task['jobId'],
    index: Math.floor(rnd() * 100_000),
    attempt: Math.floor(rnd() * 5),
    claimId: claimId(rnd() < 0.2 ? '' : `c-${Math.floor(rnd() * 1e9).toString(36)}`),
    machineId: machineId(rnd() < 0.2 ? '' : `m-ü-${Math.floor(rnd() * 1e4)}`),
    scheduler: rnd() < 0.2 ? '' : 'batch-1',
    state: pick(rnd, TASK_STATES),
    reason: rnd() < 0.5 ? '' : 'oom-killed',
    message: pick(rnd, ['', '', 'could not start the task: exec /nonexistent/binary: No such file or directory', 'work dir über 1 GiB']),
    ...(rnd() < 0.5 ? {} : { exitCode: Math.floor(rnd() * 512) - 256 }),
    signal: rnd() < 0.7 ? '' : 'SIGKILL',
    pid: Math.floor(rnd() * 4_000_000),
    placedAtMs: big(),
    startedAtMs: big(),
    finishedAtMs: big(),
    cpuSeconds: rnd() < 0.5 ? 0 : rnd() * 1000,
    peakMemoryBytes: big(),
    resources: { cpuMillis: Math.floor(rnd() * 64_000), memoryBytes: big() },
    priority: Math.floor(rnd() * 400) - 200,
    restarts: Math.floor(rnd() * 10),
    notBeforeMs: big(),
    ...(health === undefined ? {} : { health, healthSinceMs: big() }),
    ...(rnd() < 0.3 ? {} : { version: 1 + Math.floor(rnd() * 20) }),
  };
}

function someMachine(rnd: () => number, index: number): Omit<Machine, 'seq'> {
  const id = machineId(`m-${index}`);
  const claims: Claim[] = Array.from({ length: Math.floor(rnd() * 12) }, (_, i) => ({
    id: claimId(`c${index}-${i}`),
    taskId: taskId(`job-${i}`, Math.floor(rnd() * 1000)),
    machineId: id,
    attempt: 1 + Math.floor(rnd() * 3),
    resources: { cpuMillis: Math.floor(rnd() * 4000), memoryBytes: Math.floor(rnd() * 2 ** 40) },
    priority: Math.floor(rnd() * 400) - 200,
    scheduler: rnd() < 0.2 ? '' : `batch-${i % 3}`,
  }));
  return {
    id,
    capacity: { cpuMillis: Math.floor(rnd() * 128_000), memoryBytes: Math.floor(rnd() * 2 ** 42) },
    attributes: rnd() < 0.3 ? {} : { rack: `r${index % 7}`, zone: 'z-ä', '': rnd() < 0.2 ? '' : 'empty key' },
    schedulable: rnd() < 0.8,
    unschedulableReason: rnd() < 0.8 ? '' : 'drained',
    enforcementDisabled: rnd() < 0.2,
    hollow: rnd() < 0.5,
    ...(rnd() < 0.7 ? {} : { cordon: { reason: rnd() < 0.3 ? '' : 'maintenance', sinceMs: Math.floor(rnd() * 2 ** 45), drainDeadlineMs: rnd() < 0.5 ? 0 : Math.floor(rnd() * 2 ** 45) } }),
    claims,
  };
}

describe('the lean record decoders', () => {
  it('decode every task record exactly as the protobufjs decoder does (seed 15, 2,000 records)', () => {
    const rnd = random(15);
    for (let i = 0; i < 2000; i++) {
      const bytes = encodeTask(someTask(rnd));
      expect(decodeTaskRecord(bytes, i + 1)).toStrictEqual(decodeTask(bytes, i + 1));
    }
  });

  it('decode every machine record exactly as the protobufjs decoder does (seed 16, 500 records)', () => {
    const rnd = random(16);
    for (let i = 0; i < 500; i++) {
      const bytes = encodeMachine(someMachine(rnd, i));
      expect(decodeMachineRecord(bytes, i + 1)).toStrictEqual(decodeMachine(bytes, i + 1));
    }
  });

  it("read a task record's machine without decoding it, as the full decode reads it (seed 17, 2,000 records)", () => {
    const rnd = random(17);
    for (let i = 0; i < 2000; i++) {
      const bytes = encodeTask(someTask(rnd));
      expect(taskRecordMachineId(bytes)).toBe(decodeTaskRecord(bytes, 1).machineId);
    }
    expect(taskRecordMachineId(new Uint8Array(0))).toBe('');
    // The last of two field-5 values, as protobuf reads a repeated singular field.
    expect(taskRecordMachineId(Uint8Array.from([0x2a, 0x01, 0x61, 0x10, 0x03, 0x2a, 0x02, 0x62, 0x63]))).toBe('bc');
    expect(() => taskRecordMachineId(Uint8Array.from([0x2a, 0x7f, 0x61]))).toThrow(MalformedMessageError);
  });

  it("take the task's id from its key only when the key names the same task", () => {
    const bytes = encodeTask({ ...someTask(random(6)), jobId: 'web' as Task['jobId'], index: 12 });
    expect(decodeTaskRecord(bytes, 1, 'web/12').id).toBe('web/12');
    for (const other of ['web/13', 'web/012', 'we/12', 'web12', 'web/1x']) expect(decodeTaskRecord(bytes, 1, other).id).toBe('web/12');
  });

  it('share equal resources and repeated ids between records, without changing what they decode to', () => {
    const rnd = random(7);
    const spec = { ...someTask(rnd), jobId: 'batch' as Task['jobId'], resources: { cpuMillis: 100, memoryBytes: 64 * 1024 ** 2 } };
    const a = decodeTaskRecord(encodeTask({ ...spec, index: 1 }), 1);
    const b = decodeTaskRecord(encodeTask({ ...spec, index: 2 }), 2);
    expect(b.resources).toBe(a.resources);
    expect(b.resources).toEqual({ cpuMillis: 100, memoryBytes: 64 * 1024 ** 2 });
    expect(Object.isFrozen(a.resources)).toBe(true);
  });

  it('read an empty record as the defaults, as protobufjs does', () => {
    const empty = new Uint8Array(0);
    expect(decodeTaskRecord(empty, 7)).toStrictEqual(decodeTask(empty, 7));
    expect(decodeMachineRecord(empty, 7)).toStrictEqual(decodeMachine(empty, 7));
  });

  it('skip fields they do not know, so a record from a newer writer still decodes', () => {
    const known = encodeTask(someTask(random(3)));
    // Field 99 (varint) and field 100 (bytes) appended: unknown to this version.
    const unknown = Uint8Array.from([...known, 0x98, 0x06, 0x2a, 0xa2, 0x06, 0x03, 0x61, 0x62, 0x63]);
    expect(decodeTaskRecord(unknown, 1)).toStrictEqual(decodeTask(known, 1));
  });

  it('refuse truncated bytes with a MalformedMessageError instead of inventing values', () => {
    const bytes = encodeTask(someTask(random(4)));
    expect(() => decodeTaskRecord(bytes.subarray(0, bytes.length - 1), 1)).toThrow(MalformedMessageError);
    const machine = encodeMachine(someMachine(random(5), 1));
    expect(() => decodeMachineRecord(Uint8Array.from([0x0a, 0x7f, 0x61]), 1)).toThrow(MalformedMessageError);
    expect(machine.length).toBeGreaterThan(0);
  });
});
