/**
 * The simulated cell: a MemoryKv whose leases run on the virtual clock, the machines of a
 * {@link CellShape} registered and heartbeating (one lease for all, as a hollow agent does), and
 * the prefill: long-running tasks (BENCH.md: 1 CPU / 4 GiB each, up to 60% of the cell's CPU)
 * spread evenly over a seeded shuffle of the machines, committed through the real Committer.
 *
 * The prefill is one service job owned by a lease of the simulation itself, so no scheduler takes
 * it (its attempts would pollute the metrics), and its tasks last the longest run a job may ask
 * for, so they stay for the whole run.
 */
import {
  Cell,
  DEFAULT_NAMESPACE,
  JOB_LIMITS,
  MemoryKv,
  PrivateCell,
  claimId,
  jobId,
  machineId,
  taskId,
  type ClaimId,
  type JobId,
  type KvLease,
  type MachineId,
  type MachineRegistration,
} from '@omega/cell-state';
import type { Random } from '@omega/scheduler-core';
import type { VirtualClock } from './virtual-clock.js';
import type { CellShape } from './workload.js';

/** The id of the prefill job (never submitted by a workload: workload ids are `batch-N`, `service-N`). */
export const PREFILL_JOB: JobId = jobId('prefill');

/**
 * Store revisions kept readable (MemoryKv's `historyLimit`). Every watcher of a simulation is
 * current before virtual time moves, so none ever reads history: a short one only keeps the
 * store's memory small, and with it the garbage collector's work (100 instead of 2,000: a third
 * less heap over a simulated hour, identical results, asserted in simulation.test.ts).
 */
export const SIM_STORE_HISTORY = 100;

/** Claims per prefill commit: large requests are cheap in memory, but keep each one moderate. */
const PREFILL_CHUNK = 4096;

export interface SimCell {
  readonly kv: MemoryKv;
  readonly cell: Cell;
  readonly machineIds: readonly MachineId[];
  /** Tasks placed by the prefill. */
  readonly prefillTasks: number;
  /** The lease that owns the prefill job and keeps the machines alive (never expires). */
  readonly lease: KvLease;
}

/** Machine ids `m00000`, `m00001`, ...: zero-padded so the store's key order is numeric order. */
export function simMachineIds(count: number): MachineId[] {
  const width = Math.max(5, String(count - 1).length);
  return Array.from({ length: count }, (_, i) => machineId(`m${String(i).padStart(width, '0')}`));
}

/** Deterministic claim ids `<prefix>-<n>` (the default factory draws a random prefix). */
export function sequentialClaimIds(prefix: string): () => ClaimId {
  let next = 0;
  return () => claimId(`${prefix}-${(next++).toString(36)}`);
}

/**
 * Builds the cell on `clock`: machines registered and alive, prefill committed. Resolves with the
 * store at a quiet revision (nothing pending). `random` only shuffles the prefill.
 */
export async function buildSimCell(shape: CellShape, clock: VirtualClock, random: Random, cellName = 'sim', historyLimit = SIM_STORE_HISTORY): Promise<SimCell> {
  const kv = new MemoryKv({ clock, historyLimit });
  const cell = new Cell(kv, cellName, { now: () => clock.now() });
  const machineIds = simMachineIds(shape.machines);
  const regs: MachineRegistration[] = machineIds.map((id) => ({ id, capacity: { cpuMillis: shape.cpuMillis, memoryBytes: shape.memoryBytes }, hollow: true }));
  await cell.registerMachines(regs);
  const heartbeat = await cell.startHeartbeats(machineIds, { agent: 'simulator', ttlSeconds: 3600 });
  const lease = heartbeat.lease;
  const prefillTasks = await prefillCell(cell, shape, machineIds, random, lease);
  return { kv, cell, machineIds, prefillTasks, lease };
}

/** How many prefill tasks a shape asks for. */
export function prefillTaskCount(shape: CellShape): number {
  if (shape.prefillCpuFraction <= 0) return 0;
  return Math.floor((shape.machines * shape.cpuMillis * shape.prefillCpuFraction) / shape.prefillTask.cpuMillis);
}

/**
 * Commits the prefill of `shape` onto the given machines of any cell (the live benchmark uses it
 * on etcd too): one service job `prefill`, owned under `lease` so no scheduler takes it, its
 * tasks dealt evenly over a seeded shuffle of the machines, lasting `durationMs` (default the
 * longest a job may ask for; a live run passes less, since Node timers stop at 24.8 days).
 * Returns the number of tasks placed.
 */
export async function prefillCell(cell: Cell, shape: CellShape, machineIds: readonly MachineId[], random: Random, lease: KvLease, durationMs: number = JOB_LIMITS.maxRunDurationMs): Promise<number> {
  const count = prefillTaskCount(shape);
  if (count === 0) return 0;
  await cell.createJob({
    id: PREFILL_JOB,
    submittedAtMs: 0,
    spec: {
      name: 'prefill',
      namespace: DEFAULT_NAMESPACE,
      kind: 'service',
      priority: 0,
      instances: count,
      commitMode: 'incremental',
      task: { command: ['prefill'], env: {}, resources: shape.prefillTask, runDurationMs: durationMs, hollowFail: false, pidsLimit: 0 },
      constraints: [],
      restartPolicy: { kind: 'never', maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 },
    },
  });
  if (!(await cell.acquireOwnership(PREFILL_JOB, 'prefill', 'service', lease))) throw new Error('could not take the prefill job');
  // Even spread: machine order shuffled once (Fisher-Yates), tasks dealt round-robin, so every
  // machine holds floor or ceil of the mean and keeps room for the workload's tasks.
  const order = [...machineIds];
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [order[i], order[j]] = [order[j] as MachineId, order[i] as MachineId];
  }
  const mirror = cell.mirror();
  await mirror.start();
  const committer = cell.committer({ latest: () => mirror.snapshot() });
  const ids = sequentialClaimIds('prefill');
  try {
    for (let start = 0; start < count; start += PREFILL_CHUNK) {
      const snapshot = mirror.snapshot();
      const pc = new PrivateCell(snapshot, 'prefill', ids);
      for (let i = start; i < Math.min(count, start + PREFILL_CHUNK); i++) {
        const out = pc.claim(order[i % order.length] as MachineId, { taskId: taskId(PREFILL_JOB, i), resources: shape.prefillTask, priority: 0 });
        if (out.refused !== undefined) throw new Error(`prefill task ${i} refused: ${out.refused}`);
      }
      const result = await committer.commit(pc.transaction('resource-fit', 'incremental'));
      if (result.conflicted.length > 0) throw new Error(`prefill: ${result.conflicted.length} claims conflicted`);
      await mirror.waitForRevision(result.revision);
    }
  } finally {
    await mirror.stop();
  }
  return count;
}
