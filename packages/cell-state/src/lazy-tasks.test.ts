import { describe, expect, it } from 'vitest';
import { CellStateMaps } from './cell-snapshot.js';
import { decodeTask, encodeMachine, encodeTask } from './codec.js';
import { CellKeys } from './keys.js';
import { checkTaskRecord, decodeTaskRecord, RawTask } from './record-wire.js';
import { isClaimLive, usedResources } from './resources.js';
import { TASK_STATES, claimId, jobId, machineId, taskId, type Claim, type Task, type TaskId } from './types.js';

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

const pick = <T>(rnd: () => number, values: readonly T[]): T => values[Math.floor(rnd() * values.length)] as T;

function record(rnd: () => number, job: string, index: number, claim: string): Omit<Task, 'id' | 'revision'> {
  return {
    jobId: jobId(job),
    index,
    attempt: Math.floor(rnd() * 4),
    claimId: claimId(claim),
    machineId: machineId(`m-${Math.floor(rnd() * 5)}`),
    scheduler: 'batch-1',
    state: pick(rnd, TASK_STATES),
    reason: '',
    message: '',
    signal: '',
    pid: Math.floor(rnd() * 1e6),
    placedAtMs: 1_750_000_000_000 - Math.floor(rnd() * 1e6),
    startedAtMs: rnd() < 0.5 ? 0 : 1_750_000_000_000,
    finishedAtMs: 0,
    cpuSeconds: rnd(),
    peakMemoryBytes: Math.floor(rnd() * 2 ** 40),
    resources: { cpuMillis: 100, memoryBytes: 2 ** 26 },
    priority: 0,
    restarts: 0,
    notBeforeMs: 0,
  };
}

describe('task records held undecoded until read', () => {
  it('are refused by the check exactly when the decoder refuses them (seed 21, 3,000 damaged records)', () => {
    const rnd = random(21);
    for (let i = 0; i < 3000; i++) {
      const bytes = Uint8Array.from(encodeTask(record(rnd, 'j', i, `c${i}`)));
      // Damage: cut it short, or overwrite a byte.
      const damaged = rnd() < 0.5 ? bytes.subarray(0, Math.floor(rnd() * bytes.length)) : bytes.map((b, k) => (k === Math.floor(rnd() * bytes.length) ? Math.floor(rnd() * 256) : b));
      let decodes = true;
      try {
        decodeTaskRecord(damaged, 1);
      } catch {
        decodes = false;
      }
      if (decodes) expect(() => checkTaskRecord(damaged)).not.toThrow();
      else expect(() => checkTaskRecord(damaged)).toThrow();
    }
  });

  it('decode to the same task as an eager decode, and judge a claim live exactly as the decoded task does (seed 22)', () => {
    const rnd = random(22);
    for (let i = 0; i < 2000; i++) {
      const claim = rnd() < 0.2 ? '' : `c-${Math.floor(rnd() * 3)}`;
      const bytes = encodeTask(record(rnd, 'web', i, claim));
      const raw = RawTask.of(bytes, i + 1);
      const task = decodeTask(bytes, i + 1);
      expect(raw.decode(`web/${i}`)).toStrictEqual(task);
      const asked: Claim = { id: claimId(rnd() < 0.5 ? claim : `c-${Math.floor(rnd() * 3)}`), taskId: task.id, machineId: task.machineId, attempt: Math.floor(rnd() * 4), resources: task.resources, priority: 0, scheduler: 'batch-1' };
      const lean = raw.liveness(asked.id);
      expect(lean).toBeDefined();
      expect(isClaimLive(asked, () => lean as Task)).toBe(isClaimLive(asked, () => task));
    }
  });

  it('give the same liveness asked again, for the same claim or another in any order (seed 24)', () => {
    const rnd = random(24);
    for (let i = 0; i < 300; i++) {
      const bytes = encodeTask(record(rnd, 'web', i, `c-${Math.floor(rnd() * 3)}`));
      const raw = RawTask.of(bytes, i + 1);
      const task = decodeTask(bytes, i + 1);
      for (let k = 0; k < 6; k++) {
        const asked: Claim = { id: claimId(`c-${Math.floor(rnd() * 3)}`), taskId: task.id, machineId: task.machineId, attempt: Math.floor(rnd() * 4), resources: task.resources, priority: 0, scheduler: 'batch-1' };
        expect(isClaimLive(asked, () => raw.liveness(asked.id) as Task)).toBe(isClaimLive(asked, () => task));
      }
    }
  });

  it('leave a snapshot showing what it showed, and give each machine the free resources an eager replica gives (seed 23)', () => {
    const rnd = random(23);
    const keys = new CellKeys('lazy');
    const state = new CellStateMaps(keys);
    const tasks = new Map<TaskId, Task>();
    let revision = 0;
    const claims = new Map<string, Claim[]>();
    for (let i = 0; i < 300; i++) {
      const id = taskId('batch', i);
      const m = `m-${i % 5}`;
      const claim: Claim = { id: claimId(`c${i}`), taskId: id, machineId: machineId(m), attempt: 1 + Math.floor(rnd() * 2), resources: { cpuMillis: 10, memoryBytes: 1 }, priority: 0, scheduler: 'b' };
      claims.set(m, [...(claims.get(m) ?? []), claim]);
      const bytes = encodeTask({ ...record(rnd, 'batch', i, rnd() < 0.7 ? claim.id : 'other'), attempt: 1 + Math.floor(rnd() * 2) });
      revision++;
      state.apply('put', { key: keys.task(id), value: bytes, createRevision: revision, modRevision: revision, version: 1, lease: '0' });
      tasks.set(id, decodeTask(bytes, revision));
    }
    for (const [m, list] of claims) {
      revision++;
      state.apply('put', { key: keys.machine(machineId(m)), value: encodeMachine({ id: machineId(m), capacity: { cpuMillis: 10_000, memoryBytes: 1000 }, attributes: {}, schedulable: true, unschedulableReason: '', enforcementDisabled: false, hollow: true, claims: list }), createRevision: revision, modRevision: revision, version: 1, lease: '0' });
    }
    state.advance(revision);
    const before = state.snapshot();
    for (const m of before.machines()) expect(before.used(m.id)).toEqual(usedResources(m, (id) => tasks.get(id)));
    // A task changes after the snapshot; the old snapshot still reads (and decodes) the old record.
    const changed = taskId('batch', 7);
    const old = tasks.get(changed) as Task;
    revision++;
    state.apply('put', { key: keys.task(changed), value: encodeTask({ ...old, state: 'killed', attempt: old.attempt + 1 }), createRevision: 1, modRevision: revision, version: 2, lease: '0' });
    state.advance(revision);
    const after = state.snapshot();
    expect(after.task(changed)?.state).toBe('killed');
    expect(before.task(changed)).toStrictEqual(old);
    expect([...before.tasksOf(jobId('batch'))]).toStrictEqual([...tasks.values()]);
  });
});
