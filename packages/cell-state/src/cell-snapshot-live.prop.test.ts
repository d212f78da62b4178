import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CellStateMaps, knownLiveClaims, type CellSnapshot, type MirrorFilter } from './cell-snapshot.js';
import { encodeMachine, encodeTask } from './codec.js';
import { CellKeys } from './keys.js';
import { isClaimLive, usedResources } from './resources.js';
import { TASK_STATES, claimId, jobId, machineId, taskId, type Claim, type Task, type TaskState } from './types.js';

/**
 * A snapshot judges a machine's claims once (its used resources, and its live claims for the
 * commit's re-check). Whatever the order of changes and snapshots, every snapshot must give, for
 * every machine, the recount of its live claims on that snapshot's own records, and as live
 * claims exactly those a lookup in it keeps, or nothing when it does not hold some claim's task.
 */

const keys = new CellKeys('live');
const MACHINES = ['m0', 'm1', 'm2', 'm3'] as const;
const TASKS = [0, 1, 2, 3, 4, 5].map((i) => taskId('j', i));
const CLAIM_IDS = ['c0', 'c1', 'c2'] as const;

type Step =
  | { op: 'machine'; m: number; claims: { task: number; id: number; attempt: number; cpu: number }[] }
  | { op: 'drop-machine'; m: number }
  | { op: 'task'; t: number; attempt: number; claim: number; state: TaskState; m: number }
  | { op: 'drop-task'; t: number }
  | { op: 'snapshot' }
  | { op: 'advance' }
  | { op: 'ask'; back: number; m: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('machine' as const),
      m: fc.nat(MACHINES.length - 1),
      claims: fc.array(fc.record({ task: fc.nat(TASKS.length - 1), id: fc.nat(CLAIM_IDS.length - 1), attempt: fc.integer({ min: 1, max: 3 }), cpu: fc.integer({ min: 1, max: 1000 }) }), { maxLength: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop-machine' as const), m: fc.nat(MACHINES.length - 1) }) },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('task' as const), t: fc.nat(TASKS.length - 1), attempt: fc.integer({ min: 0, max: 3 }), claim: fc.nat(CLAIM_IDS.length - 1), state: fc.constantFrom(...TASK_STATES), m: fc.nat(MACHINES.length - 1) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop-task' as const), t: fc.nat(TASKS.length - 1) }) },
  { weight: 3, arbitrary: fc.constant({ op: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'advance' as const }) },
  { weight: 8, arbitrary: fc.record({ op: fc.constant('ask' as const), back: fc.nat(4), m: fc.nat(MACHINES.length) }) },
);

function taskRecord(t: number, attempt: number, claim: number, state: TaskState, m: number): Omit<Task, 'id' | 'revision'> {
  return {
    jobId: jobId('j'),
    index: t,
    attempt,
    claimId: claimId(CLAIM_IDS[claim] as string),
    machineId: machineId(MACHINES[m] as string),
    scheduler: 'b',
    state,
    reason: '',
    message: '',
    signal: '',
    pid: 0,
    placedAtMs: 0,
    startedAtMs: 0,
    finishedAtMs: 0,
    cpuSeconds: 0,
    peakMemoryBytes: 0,
    resources: { cpuMillis: 1, memoryBytes: 1 },
    priority: 0,
    restarts: 0,
    notBeforeMs: 0,
  };
}

/** What `snap` must answer for machine `id`: the recount, and the live claims when every claim's task is held. */
function check(snap: CellSnapshot, id: Claim['machineId'], liveFirst: boolean): void {
  const machine = snap.machine(id);
  const lookup = (t: Claim['taskId']): Task | undefined => snap.task(t);
  const expected = machine === undefined ? undefined : machine.claims.every((c) => lookup(c.taskId) !== undefined) ? machine.claims.filter((c) => isClaimLive(c, lookup)) : undefined;
  const recount = machine === undefined ? { cpuMillis: 0, memoryBytes: 0 } : usedResources(machine, lookup);
  // Both orders: live claims asked first (a commit on a view nobody placed on) or after used.
  if (liveFirst) expect(knownLiveClaims(snap, id)).toEqual(expected);
  expect(snap.used(id)).toEqual(recount);
  expect(knownLiveClaims(snap, id)).toEqual(expected);
  if (machine !== undefined) expect(snap.free(id)).toEqual({ cpuMillis: machine.capacity.cpuMillis - recount.cpuMillis, memoryBytes: machine.capacity.memoryBytes - recount.memoryBytes });
}

/** Runs the steps; after each `ask`, compares the asked snapshot's answers with the recount on its records. */
function run(steps: readonly Step[], filter?: MirrorFilter): void {
  const state = new CellStateMaps(keys, 0, filter);
  let revision = 0;
  const kept: CellSnapshot[] = [];
  const put = (key: string, value: Uint8Array): void => {
    revision++;
    state.apply('put', { key, value, createRevision: 1, modRevision: revision, version: 1, lease: '0' });
  };
  const drop = (key: string): void => {
    revision++;
    state.apply('delete', { key, value: new Uint8Array(), createRevision: 1, modRevision: revision, version: 1, lease: '0' });
  };
  for (const s of steps) {
    switch (s.op) {
      case 'machine': {
        const id = machineId(MACHINES[s.m] as string);
        const claims: Claim[] = s.claims.map((c, k) => ({
          id: claimId(CLAIM_IDS[c.id] as string),
          taskId: TASKS[c.task] as Claim['taskId'],
          machineId: id,
          attempt: c.attempt,
          resources: { cpuMillis: c.cpu, memoryBytes: c.cpu * 7 + k },
          priority: 0,
          scheduler: 'b',
        }));
        put(keys.machine(id), encodeMachine({ id, capacity: { cpuMillis: 10_000, memoryBytes: 10_000 }, attributes: {}, schedulable: true, unschedulableReason: '', enforcementDisabled: false, hollow: true, claims }));
        break;
      }
      case 'drop-machine':
        drop(keys.machine(machineId(MACHINES[s.m] as string)));
        break;
      case 'task':
        put(keys.task(TASKS[s.t] as Claim['taskId']), encodeTask(taskRecord(s.t, s.attempt, s.claim, s.state, s.m)));
        break;
      case 'drop-task':
        drop(keys.task(TASKS[s.t] as Claim['taskId']));
        break;
      case 'snapshot':
        kept.unshift(state.snapshot());
        if (kept.length > 5) kept.pop();
        break;
      case 'advance':
        state.advance(revision);
        break;
      case 'ask': {
        // Mostly the newest snapshot (the one a scheduler works on), sometimes an older one.
        const snap = s.back === 0 || kept.length === 0 ? state.snapshot() : (kept[Math.min(s.back, kept.length) - 1] as CellSnapshot);
        if (s.back === 0) kept.unshift(snap);
        if (kept.length > 5) kept.pop();
        check(snap, machineId(MACHINES[s.m] ?? 'unknown'), s.back % 2 === 1);
        break;
      }
    }
  }
  // At the end, every snapshot kept and the current one, every machine.
  for (const snap of [state.snapshot(), ...kept]) for (const name of MACHINES) check(snap, machineId(name), false);
}

describe("a snapshot's used resources and live claims", () => {
  it('are the recount and the lookup\'s judgement on its own records in every snapshot, current or older, after any changes to machines and tasks', () => {
    fc.assert(fc.property(fc.array(step, { minLength: 10, maxLength: 120, size: 'max' }), (steps) => run(steps)), { numRuns: 400 });
  });

  it('are the recount and the judgement too in a filtered replica that drops task records its filter refuses', () => {
    // A task record placed on m3 is dropped (as a delete, also when an earlier version was held): its claims count as live again.
    const filter: MirrorFilter = { key: () => true, taskMachine: (m) => m !== 'm3' };
    fc.assert(fc.property(fc.array(step, { minLength: 10, maxLength: 120, size: 'max' }), (steps) => run(steps, filter)), { numRuns: 300 });
  });
});
