import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMachine, encodeTask, protobufEncodeMachine, protobufEncodeTask } from './codec.js';
import { leanEncodeMachine, leanEncodeTask } from './record-encode.js';
import { HEALTH_STATES, TASK_STATES, type Claim, type ClaimId, type JobId, type Machine, type MachineId, type Task, type TaskId } from './types.js';

/** Mostly what Omega writes, sometimes what the lean path leaves to protobufjs (non-ASCII text, out-of-range numbers). */
const text = fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9/#._-]{0,24}$/) }, { weight: 1, arbitrary: fc.string({ maxLength: 6, unit: 'grapheme' }) }, { weight: 1, arbitrary: fc.constant('') });
const u64 = fc.oneof({ weight: 4, arbitrary: fc.maxSafeNat() }, { weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32, 2 ** 53 - 1, -1, 0.5) });
const u32 = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 1_000_000 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 127, 128, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -1, 1.5) });
const i32 = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 1000 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 31 - 1, -1, -200, -(2 ** 31)) });
const resources = fc.record({ cpuMillis: u64, memoryBytes: u64 });

const task: fc.Arbitrary<Omit<Task, 'revision' | 'id'>> = fc
  .record({
    jobId: text.map((s) => s as JobId),
    index: u32,
    attempt: u32,
    claimId: text.map((s) => s as ClaimId),
    machineId: text.map((s) => s as MachineId),
    scheduler: text,
    state: fc.constantFrom(...TASK_STATES),
    reason: text,
    message: fc.oneof({ weight: 3, arbitrary: text }, { weight: 1, arbitrary: fc.string({ maxLength: 512 }) }),
    exitCode: fc.option(i32, { nil: undefined }),
    signal: text,
    pid: u32,
    placedAtMs: u64,
    startedAtMs: u64,
    finishedAtMs: u64,
    cpuSeconds: fc.oneof(fc.double(), fc.constantFrom(0, -0, Number.NaN, 1.5)),
    peakMemoryBytes: u64,
    resources,
    priority: i32,
    restarts: u32,
    notBeforeMs: u64,
    health: fc.option(fc.constantFrom(...HEALTH_STATES), { nil: undefined }),
    healthSinceMs: fc.option(u64, { nil: undefined }),
    version: fc.option(u32, { nil: undefined }),
  })
  .map((t) => {
    // Optional fields absent rather than undefined, as the codec's callers build them.
    const out: Record<string, unknown> = { ...t };
    for (const k of ['exitCode', 'health', 'healthSinceMs', 'version']) if (out[k] === undefined) delete out[k];
    return out as unknown as Omit<Task, 'revision' | 'id'>;
  });

const claim: fc.Arbitrary<Claim> = fc.record({
  id: text.map((s) => s as ClaimId),
  taskId: text.map((s) => s as TaskId),
  machineId: fc.constant('m' as MachineId),
  attempt: u32,
  resources,
  priority: i32,
  scheduler: text,
});

const machine: fc.Arbitrary<Omit<Machine, 'seq'>> = fc
  .record({
    id: text.map((s) => s as MachineId),
    capacity: resources,
    attributes: fc.dictionary(text, text, { maxKeys: 4 }),
    schedulable: fc.boolean(),
    unschedulableReason: text,
    enforcementDisabled: fc.boolean(),
    hollow: fc.boolean(),
    cordon: fc.option(fc.record({ reason: text, sinceMs: u64, drainDeadlineMs: u64 }), { nil: undefined }),
    claims: fc.array(claim, { maxLength: 8 }),
  })
  .map((m) => {
    if (m.cordon !== undefined) return m;
    const { cordon: _, ...rest } = m;
    return rest;
  });

/** The reference's bytes, or the error it throws. */
function outcome(encode: () => Uint8Array): Buffer | string {
  try {
    return Buffer.from(encode());
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

describe('the lean record encoders', () => {
  it('write every task record byte for byte as protobufjs does, or leave it to protobufjs', () => {
    let lean = 0;
    fc.assert(
      fc.property(task, (t) => {
        const want = outcome(() => protobufEncodeTask(t));
        const got = leanEncodeTask(t);
        if (got !== undefined) {
          lean++;
          expect(Buffer.from(got)).toEqual(want);
        }
        expect(outcome(() => encodeTask(t))).toEqual(want);
      }),
      { numRuns: 3000 },
    );
    // The comparison above must have covered the lean path, not only the fallback.
    expect(lean).toBeGreaterThan(300);
  });

  it('write every machine record byte for byte as protobufjs does, or leave it to protobufjs', () => {
    let lean = 0;
    fc.assert(
      fc.property(machine, (m) => {
        const want = outcome(() => protobufEncodeMachine(m));
        const got = leanEncodeMachine(m);
        if (got !== undefined) {
          lean++;
          expect(Buffer.from(got)).toEqual(want);
        }
        expect(outcome(() => encodeMachine(m))).toEqual(want);
      }),
      { numRuns: 1500 },
    );
    expect(lean).toBeGreaterThan(100);
  });

  it('take the records the simulator and the schedulers write, with their large counts and times', () => {
    const placed: Omit<Task, 'revision' | 'id'> = {
      jobId: 'batch-1234' as JobId,
      index: 417,
      attempt: 1,
      claimId: 'batch-0-2s1' as ClaimId,
      machineId: 'm04711' as MachineId,
      scheduler: 'batch-0',
      state: 'placed',
      reason: '',
      message: '',
      signal: '',
      pid: 0,
      placedAtMs: 1_735_689_600_000,
      startedAtMs: 0,
      finishedAtMs: 0,
      cpuSeconds: 0,
      peakMemoryBytes: 0,
      resources: { cpuMillis: 300, memoryBytes: 512 * 1024 ** 2 },
      priority: 0,
      restarts: 0,
      notBeforeMs: 0,
      version: 1,
    };
    expect(leanEncodeTask(placed)).toEqual(Buffer.from(protobufEncodeTask(placed)));
    const ended = { ...placed, state: 'succeeded' as const, exitCode: 0, finishedAtMs: 1_735_689_700_000 };
    expect(leanEncodeTask(ended)).toEqual(Buffer.from(protobufEncodeTask(ended)));
    const startFailed = { ...placed, state: 'failed' as const, reason: 'start-failed', message: 'could not start the task: exec /nonexistent/binary: No such file or directory', exitCode: 127, finishedAtMs: 1_735_689_700_000 };
    expect(leanEncodeTask(startFailed)).toEqual(Buffer.from(protobufEncodeTask(startFailed)));
  });
});
