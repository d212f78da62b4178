/**
 * A store that makes commits conflict on purpose, to exercise the loop's retries: just before
 * every Nth commit it forwards, it changes one of the machines the commit is guarded on.
 *
 * - `touch` rewrites the machine record unchanged: its sequence number moves. Under
 *   `sequence-numbers` that is a conflict; under `resource-fit` a spurious retry inside the
 *   commit, which then succeeds.
 * - `fill` commits, as a competing scheduler would, a claim taking every free resource of that
 *   machine (for a task `intruder-<n>/0` with no job): a real conflict in both modes.
 *
 * Commits are recognised by their shape (guards on `machines/` keys and writes to `tasks/`
 * keys), so registration, ownership and status writes pass untouched. Interference goes to the
 * inner store directly, never back through the proxy.
 */
import {
  PrivateCell,
  claimIdFactory,
  jobId,
  taskId,
  type Cell,
  type CellMirror,
  type Committer,
  type KvStore,
  type MachineId,
  type TxnRequest,
} from '@omega/cell-state';

export interface InterferenceOptions {
  /** Interfere before every Nth commit request (1: every one, retries inside a commit included). */
  readonly every: number;
  readonly how: 'touch' | 'fill';
  /** Stop after this many interferences (default: never stop). */
  readonly limit?: number;
}

/** Counts of what the interference did. */
export interface InterferenceCounters {
  /** Commit requests seen. */
  commits: number;
  /** Times a machine was changed before a commit. */
  interferences: number;
}

/** What a commit request is guarded on: the machine keys it compares, if it writes tasks. */
function guardedMachines(request: TxnRequest, machinesPrefix: string, tasksPrefix: string): string[] {
  const machines: string[] = [];
  let writesTasks = false;
  const visit = (txn: TxnRequest): void => {
    for (const c of txn.compare) if (c.key.startsWith(machinesPrefix) && c.target === 'mod') machines.push(c.key);
    for (const op of txn.success) {
      if (op.type === 'put' && op.key.startsWith(tasksPrefix)) writesTasks = true;
      if (op.type === 'txn') visit(op.txn);
    }
  };
  visit(request);
  return writesTasks ? machines : [];
}

/**
 * Wraps `inner`. `cell` and `mirror` must be over `inner` itself (the mirror started): they
 * are the competing scheduler's view, used for `fill`.
 */
export function interferingKv(inner: KvStore, cell: Cell, mirror: CellMirror, options: InterferenceOptions): { kv: KvStore; counters: InterferenceCounters } {
  if (!Number.isSafeInteger(options.every) || options.every < 1) throw new RangeError(`every must be an integer >= 1, got ${options.every}`);
  const counters: InterferenceCounters = { commits: 0, interferences: 0 };
  const machinesPrefix = cell.keys.prefix('machines');
  const tasksPrefix = cell.keys.prefix('tasks');
  const committer: Committer = cell.committer({ latest: () => mirror.snapshot() });
  const claimIds = claimIdFactory();
  let intruders = 0;

  const touch = async (key: string): Promise<void> => {
    const current = (await inner.range({ key })).kvs[0];
    if (current === undefined) return;
    await inner.txn({ compare: [{ key, target: 'mod', op: '==', value: current.modRevision }], success: [{ type: 'put', key, value: current.value }], failure: [] });
  };

  const fill = async (key: string): Promise<void> => {
    await mirror.waitForRevision(await inner.currentRevision());
    const snapshot = mirror.snapshot();
    const id = key.slice(machinesPrefix.length) as MachineId;
    const free = snapshot.free(id);
    const resources = { cpuMillis: Math.max(0, free.cpuMillis), memoryBytes: Math.max(0, free.memoryBytes) };
    if (resources.cpuMillis === 0 && resources.memoryBytes === 0) return;
    const pc = new PrivateCell(snapshot, 'intruder', claimIds);
    const out = pc.claim(id, { taskId: taskId(jobId(`intruder-${intruders++}`), 0), resources, priority: 0 });
    if (out.refused !== undefined) return;
    await committer.commit(pc.transaction('resource-fit', 'incremental'));
  };

  const txn = async (request: TxnRequest) => {
    const machines = guardedMachines(request, machinesPrefix, tasksPrefix);
    const target = machines[0];
    if (target !== undefined) {
      counters.commits++;
      const due = counters.commits % options.every === 0 && counters.interferences < (options.limit ?? Infinity);
      if (due) {
        counters.interferences++;
        await (options.how === 'touch' ? touch(target) : fill(target));
      }
    }
    return inner.txn(request);
  };

  const kv = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'txn') return txn;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { kv, counters };
}
