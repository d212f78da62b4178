/**
 * CellSnapshot (the cell at one revision, immutable) and CellStateMaps (the mutable state a
 * mirror keeps current and freezes into snapshots).
 *
 * Snapshots are cheap: freezing hands out the current maps and marks them shared; the next
 * change to a shared map copies it first (copy-on-write). Tasks are kept in buckets of
 * {@link TASKS_PER_BUCKET} consecutive indices of one job, stamped with the snapshot generation
 * that may see them, so the first change to a task after a snapshot copies one small bucket,
 * never a whole 10,000-task job nor every task of the cell.
 */
import { CowMap, type FrozenMap } from './cow-map.js';
import { decodeAlive, decodeJob, decodeJobStatus, decodeNamespace, decodeOwner, decodeSchedulerStats } from './codec.js';
import type { CellKeys, KeyKind, ParsedKey } from './keys.js';
import type { KeyValue } from './kv.js';
import { RecallCache, type RecallLimits } from './recall-cache.js';
// Tasks and machines change with every placement and report: their lean decoders (same results as codec.ts's).
import { checkTaskRecord, decodeMachineRecord as decodeMachine, RawTask, taskRecordMachineId } from './record-wire.js';
import { isClaimLive, isClaimLiveGiven } from './resources.js';
import type {
  Alive,
  Claim,
  Job,
  JobId,
  JobStatus,
  Machine,
  MachineId,
  Namespace,
  Owner,
  Resources,
  SchedulerStats,
  Task,
  TaskId,
} from './types.js';

/**
 * Which records a mirror holds, for a process that needs only part of the cell (a node agent:
 * its machines, the tasks placed on them, those tasks' jobs). Without a filter a mirror holds
 * every record (schedulers, API servers) and none of this code runs.
 */
export interface MirrorFilter {
  /** Whether records under this key may be held; called before decoding, for every put and listed key. */
  key(kind: KeyKind, id: string): boolean;
  /**
   * For a task record whose key passed: whether to hold this version of it, by the machine it is
   * placed on (read from the record without decoding it: a node agent's mirror sees every task
   * record of the cell and holds the few on its machines, undecoded until read like any
   * replica's). Absent: every task record whose key passed.
   */
  taskMachine?(machineId: MachineId): boolean;
  /**
   * Refused records of these kinds are remembered, undecoded, in a bounded {@link RecallCache}
   * (newest version per key, as of the mirror's revision), so that {@link CellMirror.refilter}
   * admitting one later holds it without a read from the store. Default: none.
   */
  readonly recall?: RecallLimits & { readonly kinds: readonly KeyKind[] };
}

/** The cell as it was at one revision. Immutable: safe to hold across awaits. */
export interface CellSnapshot {
  readonly revision: number;
  readonly machineCount: number;
  machine(id: MachineId): Machine | undefined;
  /** Every machine, in registration order. */
  machines(): IterableIterator<Machine>;
  task(id: TaskId): Task | undefined;
  /** The job's task records (only tasks placed at least once have one). */
  tasksOf(job: JobId): IterableIterator<Task>;
  job(id: JobId): Job | undefined;
  jobs(): IterableIterator<Job>;
  readonly jobCount: number;
  status(job: JobId): JobStatus | undefined;
  owner(job: JobId): Owner | undefined;
  owners(): IterableIterator<Owner>;
  alive(id: MachineId): Alive | undefined;
  aliveMachines(): IterableIterator<Alive>;
  schedulerStats(): IterableIterator<SchedulerStats>;
  /** A namespace's record; undefined when it has none ("default" exists without one). */
  namespace(name: string): Namespace | undefined;
  /** Every namespace record (not "default" unless it has one). */
  namespaces(): IterableIterator<Namespace>;
  /** Whether the claim counts against its machine in this snapshot. */
  isLive(claim: Claim): boolean;
  /** Live claims' resources on a machine (cached per snapshot). */
  used(id: MachineId): Resources;
  /** Capacity minus live claims (cached per snapshot); zero for an unknown machine. */
  free(id: MachineId): Resources;
}

const ZERO: Resources = Object.freeze({ cpuMillis: 0, memoryBytes: 0 });

/** Tasks per copy-on-write bucket: small enough to copy on every change, large enough to keep the outer map small. */
const TASKS_PER_BUCKET = 64;

/** The bucket key of a task: `<job>#<index / TASKS_PER_BUCKET>`. */
function bucketOf(id: TaskId): { job: JobId; bucket: string } {
  const slash = id.lastIndexOf('/');
  const job = id.slice(0, slash) as JobId;
  // The index read in place (this runs for every task event and lookup): the value Number() would give.
  let index = 0;
  for (let i = slash + 1; i < id.length; i++) {
    const digit = id.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) {
      index = Number(id.slice(slash + 1));
      break;
    }
    index = index * 10 + digit;
  }
  return { job, bucket: `${job}#${Math.floor(index / TASKS_PER_BUCKET)}` };
}

/** How many revisions a deleted key's tombstone is kept (see `CellStateMaps`). */
export const TOMBSTONE_REVISIONS = 10_000;

/**
 * The mutable cell state: applies key-value changes, decodes records, and freezes into
 * snapshots. Not thread-safe in any sense that matters in Node: callers apply whole revisions
 * between snapshots.
 */
export class CellStateMaps {
  private readonly machines = new CowMap<MachineId, Machine>();
  /** bucket key (see bucketOf) → those tasks. */
  private readonly tasks = new CowMap<string, TaskBucket>();
  /** job id → bucket keys holding its tasks. */
  private readonly jobBuckets = new CowMap<JobId, readonly string[]>();
  /** Snapshot generation: buckets stamped with an older one may be seen by a snapshot. */
  private generation = 0;
  private readonly jobs = new CowMap<JobId, Job>();
  private readonly statuses = new CowMap<JobId, JobStatus>();
  private readonly owners = new CowMap<JobId, Owner>();
  private readonly alive = new CowMap<MachineId, Alive>();
  private readonly stats = new CowMap<string, SchedulerStats>();
  private readonly namespaces = new CowMap<string, Namespace>();
  /** Last mod revision applied per key, to drop duplicate or stale events. */
  private readonly applied = new Map<string, number>();
  /**
   * Deleted keys whose revision `applied` still remembers, in deletion order. Watch replays are
   * caught by the mirror's revision alone; a tombstone only guards a record read out of band
   * ({@link CellMirror.refilter}) while its delete arrives, so it is forgotten once the state is
   * {@link TOMBSTONE_REVISIONS} past it: a cell that deletes jobs for months holds no more of them.
   */
  private tombstones: { readonly key: string; readonly revision: number }[] = [];
  private tombstoneHead = 0;
  private frozen: CellSnapshot | undefined;
  /** Records that failed to decode (counted, skipped: one bad record must not stop a mirror). */
  undecodable = 0;
  /** Refused records remembered for a later admission (see {@link MirrorFilter.recall}). */
  readonly recall: RecallCache | undefined;
  private readonly recallKinds: ReadonlySet<KeyKind>;

  constructor(
    private readonly keys: CellKeys,
    public revision = 0,
    /** Holds only what this admits (see {@link MirrorFilter}); undefined: everything. */
    private readonly filter?: MirrorFilter,
  ) {
    this.recall = filter?.recall === undefined ? undefined : new RecallCache(filter.recall);
    this.recallKinds = new Set(filter?.recall?.kinds ?? []);
  }

  /** Forgets everything (before a re-list). */
  clear(): void {
    // A re-list may follow a compaction: deletes of refused keys may have been missed.
    this.recall?.clear();
    for (const m of [this.machines, this.tasks, this.jobBuckets, this.jobs, this.statuses, this.owners, this.alive, this.stats, this.namespaces]) m.clear();
    this.applied.clear();
    this.tombstones = [];
    this.tombstoneHead = 0;
    this.frozen = undefined;
    this.revision = 0;
  }

  /**
   * Applies a put (value present) or delete of `kv.key` at `kv.modRevision`. Idempotent per key
   * revision: an event at or below what was applied for that key is ignored. Returns whether it
   * changed anything. `parsed` is `keys.parse(kv.key)` when the caller has it already.
   */
  apply(type: 'put' | 'delete', kv: KeyValue, parsed: ParsedKey | undefined = this.keys.parse(kv.key)): boolean {
    if (parsed === undefined) return false;
    const last = this.applied.get(kv.key);
    if (last !== undefined && kv.modRevision <= last) return false;
    if (this.filter !== undefined) return this.applyFiltered(type, kv, parsed.kind, parsed.id, this.filter);
    this.applied.set(kv.key, kv.modRevision);
    if (type === 'delete') {
      // Keep the tombstone revision in `applied` so a late duplicate put is still ignored.
      this.remove(parsed.kind, parsed.id);
      this.tombstones.push({ key: kv.key, revision: kv.modRevision });
    } else {
      try {
        this.store(parsed.kind, parsed.id, kv);
      } catch {
        this.undecodable++;
        return false;
      }
    }
    this.frozen = undefined;
    return true;
  }

  /**
   * {@link apply} for a filtered state. A key the filter refuses is remembered only if it was
   * held (then it is dropped, like a delete, tombstone included), so keys that were never held
   * cost no memory at all.
   */
  private applyFiltered(type: 'put' | 'delete', kv: KeyValue, kind: KeyKind, id: string, filter: MirrorFilter): boolean {
    let admitted = type === 'put' && filter.key(kind, id);
    if (admitted && kind === 'task' && filter.taskMachine !== undefined) {
      try {
        admitted = filter.taskMachine(taskRecordMachineId(kv.value) as MachineId);
      } catch {
        this.undecodable++;
        return false;
      }
    }
    const recall = this.recall !== undefined && this.recallKinds.has(kind) ? this.recall : undefined;
    if (!admitted) {
      if (recall !== undefined) {
        if (type === 'put') recall.remember(kv);
        else recall.forget(kv.key);
      }
      if (!this.holds(kind, id)) return false;
      this.applied.set(kv.key, kv.modRevision);
      this.remove(kind, id);
      this.tombstones.push({ key: kv.key, revision: kv.modRevision });
      this.frozen = undefined;
      return true;
    }
    recall?.forget(kv.key);
    this.applied.set(kv.key, kv.modRevision);
    try {
      this.store(kind, id, kv);
    } catch {
      this.undecodable++;
      return false;
    }
    this.frozen = undefined;
    return true;
  }

  /**
   * Whether `apply('put', kv)` would hold this record (always true without a filter). Lets a
   * filtered mirror keep only what it will hold while it reads a list's pages.
   */
  admits(kv: KeyValue): boolean {
    const filter = this.filter;
    if (filter === undefined) return true;
    const parsed = this.keys.parse(kv.key);
    if (parsed === undefined || !filter.key(parsed.kind, parsed.id)) return false;
    if (parsed.kind !== 'task' || filter.taskMachine === undefined) return true;
    try {
      return filter.taskMachine(taskRecordMachineId(kv.value) as MachineId);
    } catch {
      // Counted as undecodable when applied.
      return true;
    }
  }

  /** Whether a record of this key is held now. */
  holds(kind: KeyKind, id: string): boolean {
    switch (kind) {
      case 'machine':
        return this.machines.get(id as MachineId) !== undefined;
      case 'task':
        return this.tasks.get(bucketOf(id as TaskId).bucket)?.tasks.has(id as TaskId) === true;
      case 'job':
        return this.jobs.get(id as JobId) !== undefined;
      case 'status':
        return this.statuses.get(id as JobId) !== undefined;
      case 'owner':
        return this.owners.get(id as JobId) !== undefined;
      case 'alive':
        return this.alive.get(id as MachineId) !== undefined;
      case 'scheduler':
        return this.stats.get(id) !== undefined;
      case 'namespace':
        return this.namespaces.get(id) !== undefined;
      default:
        return false;
    }
  }

  /**
   * Drops a held record without a store event (a filtered state whose filter no longer admits
   * it), forgetting its key entirely. Returns whether it was held.
   */
  forget(kind: KeyKind, id: string, key: string): boolean {
    if (!this.holds(kind, id)) return false;
    this.remove(kind, id);
    this.applied.delete(key);
    this.frozen = undefined;
    return true;
  }

  private store(kind: string, id: string, kv: KeyValue): void {
    switch (kind) {
      case 'machine':
        this.machines.set(id as MachineId, decodeMachine(kv.value, kv.modRevision));
        return;
      case 'task':
        // Checked now (an undecodable record is refused here, as before), decoded when read.
        checkTaskRecord(kv.value);
        this.ownBucket(id as TaskId).set(id as TaskId, RawTask.of(kv.value, kv.modRevision));
        return;
      case 'job':
        this.jobs.set(id as JobId, decodeJob(kv.value, kv.modRevision));
        return;
      case 'status':
        this.statuses.set(id as JobId, decodeJobStatus(id as JobId, kv.value, kv.modRevision));
        return;
      case 'owner':
        this.owners.set(id as JobId, decodeOwner(id as JobId, kv.value, kv.lease, kv.modRevision));
        return;
      case 'alive':
        this.alive.set(id as MachineId, decodeAlive(id as MachineId, kv.value, kv.lease));
        return;
      case 'scheduler':
        this.stats.set(id, decodeSchedulerStats(kv.value));
        return;
      case 'namespace':
        this.namespaces.set(id, decodeNamespace(kv.value, kv.modRevision));
        return;
      default:
        return;
    }
  }

  private remove(kind: string, id: string): void {
    switch (kind) {
      case 'machine':
        this.machines.delete(id as MachineId);
        return;
      case 'task': {
        const { job, bucket: key } = bucketOf(id as TaskId);
        if (this.tasks.get(key) === undefined) return;
        const bucket = this.ownBucket(id as TaskId);
        bucket.delete(id as TaskId);
        if (bucket.size === 0) {
          this.tasks.delete(key);
          const rest = (this.jobBuckets.get(job) ?? []).filter((k) => k !== key);
          if (rest.length === 0) this.jobBuckets.delete(job);
          else this.jobBuckets.set(job, rest);
        }
        return;
      }
      case 'job':
        this.jobs.delete(id as JobId);
        return;
      case 'status':
        this.statuses.delete(id as JobId);
        return;
      case 'owner':
        this.owners.delete(id as JobId);
        return;
      case 'alive':
        this.alive.delete(id as MachineId);
        return;
      case 'scheduler':
        this.stats.delete(id);
        return;
      case 'namespace':
        this.namespaces.delete(id);
        return;
      default:
        return;
    }
  }

  /** A job's task map, safe to change: copied first when a snapshot may see it. */
  private ownBucket(id: TaskId): Map<TaskId, HeldTask> {
    const { job, bucket: key } = bucketOf(id);
    const bucket = this.tasks.get(key);
    if (bucket !== undefined && bucket.generation === this.generation) return bucket.tasks;
    if (bucket === undefined) this.jobBuckets.set(job, [...(this.jobBuckets.get(job) ?? []), key]);
    const fresh: TaskBucket = { generation: this.generation, tasks: new Map(bucket?.tasks) };
    this.tasks.set(key, fresh);
    return fresh.tasks;
  }

  /**
   * A task as held now: what `snapshot().task(id)` returns, without freezing a snapshot (whose
   * maps every later change would then have to copy first). Decodes in place as snapshots do.
   */
  task(id: TaskId): Task | undefined {
    const tasks = this.tasks.get(bucketOf(id).bucket)?.tasks;
    return tasks === undefined ? undefined : decoded(tasks, id, tasks.get(id));
  }

  /** A job as held now (see {@link task}). */
  job(id: JobId): Job | undefined {
    return this.jobs.get(id);
  }

  /** The state as of now, frozen. Repeated calls without changes return the same snapshot. */
  snapshot(): CellSnapshot {
    if (this.frozen !== undefined) return this.frozen;
    this.generation++;
    this.frozen = new FrozenSnapshot(
      this.revision,
      this.machines.freeze(),
      this.tasks.freeze(),
      this.jobBuckets.freeze(),
      this.jobs.freeze(),
      this.statuses.freeze(),
      this.owners.freeze(),
      this.alive.freeze(),
      this.stats.freeze(),
      this.namespaces.freeze(),
    );
    return this.frozen;
  }

  /** Marks the state as moved to `revision` (after a whole watch batch or list was applied). */
  advance(revision: number): void {
    if (revision === this.revision) return;
    this.revision = revision;
    this.frozen = undefined;
    this.forgetOldTombstones();
  }

  /** Deleted keys remembered now (for tests and memory accounting). */
  get tombstoneCount(): number {
    return this.tombstones.length - this.tombstoneHead;
  }

  private forgetOldTombstones(): void {
    const horizon = this.revision - TOMBSTONE_REVISIONS;
    let head = this.tombstoneHead;
    for (; head < this.tombstones.length; head++) {
      const stone = this.tombstones[head] as { key: string; revision: number };
      if (stone.revision > horizon) break;
      // The key may have been written again since: only its tombstone goes.
      if (this.applied.get(stone.key) === stone.revision) this.applied.delete(stone.key);
    }
    if (head === this.tombstoneHead) return;
    this.tombstoneHead = head;
    if (head > 1024 && head * 2 > this.tombstones.length) {
      this.tombstones = this.tombstones.slice(head);
      this.tombstoneHead = 0;
    }
  }
}

/** A task as held: decoded, or its record's bytes until first read (see {@link RawTask}). */
type HeldTask = Task | RawTask;

interface TaskBucket {
  readonly generation: number;
  /**
   * A {@link RawTask} is replaced by its decoded task when first read, in place: every snapshot
   * sharing this map holds that same record, so none sees a change.
   */
  readonly tasks: Map<TaskId, HeldTask>;
}

/** The decoded task of a held entry (decoding a raw one in place). */
function decoded(tasks: Map<TaskId, HeldTask>, id: TaskId, held: HeldTask | undefined): Task | undefined {
  if (!(held instanceof RawTask)) return held;
  let task: Task;
  try {
    task = held.decode(id);
  } catch {
    // Not reached: the record was checked when it arrived. Unknown, as a task not seen yet.
    return undefined;
  }
  tasks.set(id, task);
  return task;
}

/**
 * The live claims of machine `id` as `snapshot` judges them (`isClaimLive` on its own task
 * records, in the record's order), when it holds the task of every claim on it: then they are
 * what filtering the claims with a lookup that asks this snapshot first would keep. Undefined
 * when some claim's task is unknown to it, for an unknown machine, or for a snapshot not frozen
 * by {@link CellStateMaps}. Counted with its used resources and cached with them, so a commit
 * re-checking a machine the placement just looked at judges no claim again.
 */
export function knownLiveClaims(snapshot: CellSnapshot, id: MachineId): readonly Claim[] | undefined {
  return snapshot instanceof FrozenSnapshot ? snapshot.knownLive(id) : undefined;
}

class FrozenSnapshot implements CellSnapshot {
  private readonly usedCache = new Map<MachineId, Resources>();
  /** Per machine counted by `usedOn` whose every claim's task is held: its live claims. */
  private readonly liveCache = new Map<MachineId, readonly Claim[]>();
  private readonly lookup = (id: TaskId): Task | undefined => this.task(id);

  constructor(
    readonly revision: number,
    private readonly machineMap: FrozenMap<MachineId, Machine>,
    private readonly taskMap: FrozenMap<string, TaskBucket>,
    private readonly jobBucketMap: FrozenMap<JobId, readonly string[]>,
    private readonly jobMap: FrozenMap<JobId, Job>,
    private readonly statusMap: FrozenMap<JobId, JobStatus>,
    private readonly ownerMap: FrozenMap<JobId, Owner>,
    private readonly aliveMap: FrozenMap<MachineId, Alive>,
    private readonly statsMap: FrozenMap<string, SchedulerStats>,
    private readonly namespaceMap: FrozenMap<string, Namespace>,
  ) {}

  get machineCount(): number {
    return this.machineMap.size;
  }
  get jobCount(): number {
    return this.jobMap.size;
  }
  machine(id: MachineId): Machine | undefined {
    return this.machineMap.get(id);
  }
  machines(): IterableIterator<Machine> {
    return this.machineMap.values();
  }
  task(id: TaskId): Task | undefined {
    const tasks = this.taskMap.get(bucketOf(id).bucket)?.tasks;
    return tasks === undefined ? undefined : decoded(tasks, id, tasks.get(id));
  }
  *tasksOf(job: JobId): IterableIterator<Task> {
    for (const key of this.jobBucketMap.get(job) ?? []) {
      const bucket = this.taskMap.get(key);
      if (bucket === undefined) continue;
      // Replacing a raw entry by its decoded task keeps the map's order and its keys.
      for (const [id, held] of bucket.tasks) {
        const task = decoded(bucket.tasks, id, held);
        if (task !== undefined) yield task;
      }
    }
  }
  job(id: JobId): Job | undefined {
    return this.jobMap.get(id);
  }
  jobs(): IterableIterator<Job> {
    return this.jobMap.values();
  }
  status(job: JobId): JobStatus | undefined {
    return this.statusMap.get(job);
  }
  owner(job: JobId): Owner | undefined {
    return this.ownerMap.get(job);
  }
  owners(): IterableIterator<Owner> {
    return this.ownerMap.values();
  }
  alive(id: MachineId): Alive | undefined {
    return this.aliveMap.get(id);
  }
  aliveMachines(): IterableIterator<Alive> {
    return this.aliveMap.values();
  }
  schedulerStats(): IterableIterator<SchedulerStats> {
    return this.statsMap.values();
  }
  namespace(name: string): Namespace | undefined {
    return this.namespaceMap.get(name);
  }
  namespaces(): IterableIterator<Namespace> {
    return this.namespaceMap.values();
  }
  isLive(claim: Claim): boolean {
    return isClaimLive(claim, this.lookup);
  }
  used(id: MachineId): Resources {
    let used = this.usedCache.get(id);
    if (used === undefined) {
      const machine = this.machineMap.get(id);
      used = machine === undefined ? ZERO : this.usedOn(machine);
      this.usedCache.set(id, used);
    }
    return used;
  }
  /**
   * `usedResources` with each claim judged by `isClaimLive` on what it reads of the claim's task
   * (attempt, claim id, state), taken from an undecoded record without decoding it: a batch
   * scheduler asks this of every machine it considers, and most of those tasks are never read
   * otherwise.
   */
  private usedOn(machine: Machine): Resources {
    let cpuMillis = 0;
    let memoryBytes = 0;
    const claims = machine.claims;
    // The live claims, copied only once one is found dead (most machines have none).
    let live: Claim[] | undefined;
    let known = true;
    for (let i = 0; i < claims.length; i++) {
      const c = claims[i] as Claim;
      const tasks = this.taskMap.get(bucketOf(c.taskId).bucket)?.tasks;
      const held = tasks?.get(c.taskId);
      // isClaimLive reads only the task's attempt, claim id and state: read from the bytes when undecoded.
      const task = held instanceof RawTask ? (held.liveness(c.id) ?? decoded(tasks as Map<TaskId, HeldTask>, c.taskId, held)) : held;
      if (task === undefined) known = false;
      if (!isClaimLiveGiven(c, task)) {
        live ??= claims.slice(0, i);
        continue;
      }
      live?.push(c);
      cpuMillis += c.resources.cpuMillis;
      memoryBytes += c.resources.memoryBytes;
    }
    if (known) this.liveCache.set(machine.id, live ?? claims);
    return { cpuMillis, memoryBytes };
  }

  /** See {@link knownLiveClaims}. */
  knownLive(id: MachineId): readonly Claim[] | undefined {
    const live = this.liveCache.get(id);
    if (live !== undefined || this.usedCache.has(id)) return live;
    this.used(id);
    return this.liveCache.get(id);
  }
  free(id: MachineId): Resources {
    const machine = this.machineMap.get(id);
    if (machine === undefined) return ZERO;
    const used = this.used(id);
    return { cpuMillis: machine.capacity.cpuMillis - used.cpuMillis, memoryBytes: machine.capacity.memoryBytes - used.memoryBytes };
  }
}

