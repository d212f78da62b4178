/**
 * A harness for driving placement policies over an in-memory cell: register machines, occupy
 * them with committed claims of chosen priorities, call a policy on a fresh PrivateCell, and
 * commit what it claimed. The same store semantics as etcd (MemoryKv), the real Committer and
 * mirror, no processes, no clock.
 *
 *   const h = await PlacementHarness.start([machine('m1').cpu(4000).attr('rack', 'r1')]);
 *   await h.occupy([{ task: 'low/0', machine: 'm1', cpu: 3000, priority: 1 }]);
 *   const { outcome, cell } = h.place(servicePolicy(), h.job('web', jobSpec('web').service().build()));
 *   await h.commit(cell);
 */
import {
  Cell,
  MemoryKv,
  PrivateCell,
  claimIdFactory,
  isTerminal,
  jobId,
  machineId,
  parseBytes,
  parseTaskId,
  taskId,
  type CellMirror,
  type CellSnapshot,
  type CommitResult,
  type ConflictMode,
  type Job,
  type JobSpec,
  type Machine,
  type MachineRegistration,
  type TaskId,
  type TransactionMode,
} from '@omega/cell-state';
import { freshCellName, type MachineBuilder } from '@omega/cell-state/testing';
import type { PlaceOutcome, PlacementPolicy, TaskToPlace } from '../policy.js';
import { seededRandom } from '../random.js';

/** A claim to commit before the policy runs: it occupies `machine` on behalf of `task`. */
export interface OccupyingClaim {
  /** `"<job>/<index>"`. */
  readonly task: string;
  readonly machine: string;
  /** Millicores; default 1000. */
  readonly cpu?: number;
  /** Bytes or a quantity like `'1Gi'`; default 1 GiB. */
  readonly memory?: number | string;
  /** Default 0. */
  readonly priority?: number;
}

export interface PlaceOptions {
  /** Seed of the Random handed to the policy; default 1. */
  readonly seed?: number;
  /** Task indexes to place; default every index below `instances` without a live task record. */
  readonly indexes?: readonly number[];
  /** Machines offered; default every schedulable machine of the snapshot. */
  readonly machines?: readonly Machine[];
}

function parseTask(task: string): TaskId {
  const parsed = parseTaskId(task);
  if (parsed === undefined) throw new Error(`not a task id: ${JSON.stringify(task)}`);
  return taskId(parsed.jobId, parsed.index);
}

export class PlacementHarness {
  private readonly claimIds = claimIdFactory();

  private constructor(
    readonly kv: MemoryKv,
    readonly cell: Cell,
    readonly mirror: CellMirror,
  ) {}

  /** A fresh cell on a fresh MemoryKv with `machines` registered and a started mirror. */
  static async start(machines: readonly (MachineRegistration | MachineBuilder)[]): Promise<PlacementHarness> {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    for (const m of machines) await cell.registerMachine('build' in m ? m.build() : m);
    const mirror = cell.mirror();
    await mirror.start();
    return new PlacementHarness(kv, cell, mirror);
  }

  snapshot(): CellSnapshot {
    return this.mirror.snapshot();
  }

  /** Schedulable machines in registration order (the harness has no agents: all count as alive). */
  machines(): Machine[] {
    return [...this.snapshot().machines()].filter((m) => m.schedulable);
  }

  /** A job record for `spec` (not stored: policies only read the record they are given). */
  job(id: string, spec: JobSpec): Job {
    return { id: jobId(id), spec, desired: 'running', submittedAtMs: 0, requestId: '', revision: 0 };
  }

  /** Commits `claims` (one transaction, resource-fit, incremental); throws if any conflicts. */
  async occupy(claims: readonly OccupyingClaim[]): Promise<CommitResult> {
    const pc = new PrivateCell(this.snapshot(), 'occupier', this.claimIds);
    for (const c of claims) {
      const out = pc.claim(machineId(c.machine), {
        taskId: parseTask(c.task),
        resources: { cpuMillis: c.cpu ?? 1000, memoryBytes: parseBytes(c.memory ?? '1Gi') },
        priority: c.priority ?? 0,
      });
      if (out.refused !== undefined) throw new Error(`occupy ${c.task} on ${c.machine} refused: ${JSON.stringify(out)}`);
    }
    const result = await this.commit(pc);
    if (result.conflicted.length > 0) throw new Error(`occupy conflicted: ${JSON.stringify(result.conflicted.map((c) => c.reason))}`);
    return result;
  }

  /** Ends a committed task's current attempt (as its agent would) and waits for the mirror. */
  async endTask(task: string, state: 'succeeded' | 'failed' | 'lost' = 'failed'): Promise<void> {
    const id = parseTask(task);
    const current = this.snapshot().task(id);
    if (current === undefined) throw new Error(`no task ${task}`);
    const outcome = await this.cell.updateTask(id, current.claimId, { state });
    if (outcome !== 'updated') throw new Error(`ending ${task}: ${outcome}`);
    await this.settle();
  }

  /** Waits until the mirror has everything written to the store so far. */
  async settle(): Promise<void> {
    // Any read returns the store's current revision; one key keeps it cheap.
    const { revision } = await this.kv.range({ key: this.cell.keys.prefix('machines'), prefix: true, limit: 1 });
    await this.mirror.waitForRevision(revision);
  }

  /** Runs `policy` for `job` on a fresh PrivateCell of the current snapshot. */
  place(policy: PlacementPolicy, job: Job, options: PlaceOptions = {}): { outcome: PlaceOutcome; cell: PrivateCell } {
    const snapshot = this.snapshot();
    const cell = new PrivateCell(snapshot, `${policy.kind}-test`, this.claimIds);
    const indexes =
      options.indexes ??
      Array.from({ length: job.spec.instances }, (_, i) => i).filter((i) => {
        const t = snapshot.task(taskId(job.id, i));
        return t === undefined || isTerminal(t.state);
      });
    const tasks: TaskToPlace[] = indexes.map((index) => ({ taskId: taskId(job.id, index), index }));
    const outcome = policy.place({
      job,
      tasks,
      cell,
      snapshot,
      machines: options.machines ?? this.machines(),
      random: seededRandom(options.seed ?? 1),
    });
    return { outcome, cell };
  }

  /** Commits a PrivateCell's claims and waits until the mirror has the result. */
  async commit(pc: PrivateCell, conflictMode: ConflictMode = 'resource-fit', transactionMode: TransactionMode = 'incremental'): Promise<CommitResult> {
    if (pc.deltas.length === 0) throw new Error('nothing to commit');
    const result = await this.cell.committer({ latest: () => this.snapshot() }).commit(pc.transaction(conflictMode, transactionMode));
    await this.mirror.waitForRevision(result.revision);
    return result;
  }

  async close(): Promise<void> {
    await this.mirror.stop();
    await this.kv.close();
  }
}
