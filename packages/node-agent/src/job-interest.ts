/**
 * JobInterest: which part of the cell an agent holds in memory. An agent needs its own
 * machines' records, the task records placed on them, and the job records of the tasks it may
 * run or is running, nothing else: not other machines, not their tasks, not the jobs that never
 * had a task here, not statuses, owners or heartbeats. Its mirror is given {@link filter}, so
 * everything else is dropped as it arrives and memory does not grow with the cell.
 *
 * ```
 *   task record on our machine, not terminal ─┐
 *   local attempt of the job (running here)  ─┴─► job wanted ─► its record read once
 *                                                               (mirror.refilter), then kept
 *                                                               current by the watch: a kill
 *                                                               arrives like any change
 *   neither any more (tasks ended, moved, deleted) ─► job record dropped
 * ```
 *
 * A job is wanted while a non-terminal task record of it is on one of our machines or one of
 * its attempts runs here; its record is taken from the mirror's recall cache of refused job
 * records ({@link JOB_RECALL}) when it is there, else read from the store (retried
 * with backoff while the store is unreachable) and dropped when it stops being wanted. Until
 * the read is done the job is `loading`: the agent waits for it before starting the task (a
 * job that is gone once read is `job-missing`). All calls come from the agent's mirror
 * listener, synchronously and in revision order.
 */
import pino, { type Logger } from 'pino';
import { backoffDelayMs, isTerminal, parseTaskId, STORE_RETRY_BACKOFF, type BackoffPolicy, type CellMirror, type CellSnapshot, type JobId, type KeyKind, type MachineId, type MirrorFilter, type TaskId } from '@omega/cell-state';

/**
 * The job records refused (not wanted yet) that the mirror remembers, newest first kept: the
 * records of jobs submitted since, whose first task here then starts without a read. 1,024
 * records or 2 MiB of values, whichever comes first (~2.5 MiB of memory at most, whatever the
 * cell's size); a job whose record fell out is read from the store, as without the cache.
 */
export const JOB_RECALL = { maxEntries: 1024, maxBytes: 2 * 1024 * 1024 } as const;

export interface JobInterestOptions {
  /** The machines this agent serves. */
  readonly machineIds: ReadonlySet<MachineId>;
  /** Whether an attempt of the job runs here now. */
  readonly hasLocal: (job: JobId) => boolean;
  /** Called once a read of a job's record is over (held, or found missing). */
  readonly onLoaded: (job: JobId) => void;
  readonly backoff?: BackoffPolicy;
  readonly logger?: Logger;
}

export class JobInterest {
  /** For the agent's mirror: our machines, tasks placed on them, wanted jobs. */
  readonly filter: MirrorFilter;
  /** Non-terminal task records held (so: on our machines), per job. */
  private readonly active = new Map<JobId, Set<TaskId>>();
  private readonly wanted = new Set<JobId>();
  private readonly loads = new Map<JobId, Promise<void>>();
  private mirror: CellMirror | undefined;
  private readonly logger: Logger;
  private failing = false;
  private closed = false;

  constructor(private readonly options: JobInterestOptions) {
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'job-interest' });
    const machines = options.machineIds;
    this.filter = {
      key: (kind: KeyKind, id: string) => {
        switch (kind) {
          case 'machine':
            return machines.has(id as MachineId);
          case 'task':
            return true;
          case 'job':
            return this.wanted.has(id as JobId);
          default:
            return false;
        }
      },
      taskMachine: (machine: MachineId) => machines.has(machine),
      // A job's record arrives before its first task is placed, while nobody here wants it yet.
      recall: { kinds: ['job'], ...JOB_RECALL },
    };
  }

  /** The mirror built with {@link filter}; call before any other method. */
  attach(mirror: CellMirror): void {
    this.mirror = mirror;
  }

  /** Whether the job's record is being read (the agent waits before starting its tasks). */
  loading(job: JobId): boolean {
    return this.loads.has(job);
  }

  /** Jobs whose records are wanted now. */
  get wantedCount(): number {
    return this.wanted.size;
  }

  /** The non-terminal task records of the job held now (on our machines). */
  activeTasks(job: JobId): readonly TaskId[] {
    return [...(this.active.get(job) ?? [])];
  }

  /** A task record changed (put, moved away, deleted): update its job's interest. */
  taskChanged(snapshot: CellSnapshot, id: TaskId): void {
    const job = parseTaskId(id)?.jobId as JobId | undefined;
    if (job === undefined) return;
    const task = snapshot.task(id);
    const isActive = task !== undefined && !isTerminal(task.state);
    let set = this.active.get(job);
    if (isActive) {
      if (set === undefined) this.active.set(job, (set = new Set()));
      set.add(id);
    } else if (set !== undefined) {
      set.delete(id);
      if (set.size === 0) this.active.delete(job);
    }
    this.reconsider(job);
  }

  /**
   * After a (re-)list: rebuilds the active tasks from `taskIds` (the claims on our machines) and
   * reconsiders every job that was or now is of interest, plus `localJobs`.
   */
  rescan(snapshot: CellSnapshot, taskIds: Iterable<TaskId>, localJobs: Iterable<JobId>): void {
    const before = new Set([...this.wanted, ...this.active.keys()]);
    this.active.clear();
    for (const id of taskIds) {
      const task = snapshot.task(id);
      if (task === undefined || isTerminal(task.state)) continue;
      let set = this.active.get(task.jobId);
      if (set === undefined) this.active.set(task.jobId, (set = new Set()));
      set.add(id);
    }
    for (const job of new Set([...before, ...this.active.keys(), ...localJobs])) this.reconsider(job);
  }

  /** Holds the job's record if it is wanted now, drops it if not. */
  reconsider(job: JobId): void {
    if (this.closed || this.mirror === undefined) return;
    const want = this.active.has(job) || this.options.hasLocal(job);
    if (want === this.wanted.has(job)) return;
    if (want) {
      this.wanted.add(job);
      this.load(job);
    } else {
      this.wanted.delete(job);
      // Dropping needs no store: refilter forgets the record before its first await.
      this.mirror.refilter('job', job).catch(() => undefined);
    }
  }

  /** Ends pending reads. */
  close(): void {
    this.closed = true;
  }

  private load(job: JobId): void {
    const mirror = this.mirror;
    if (mirror === undefined || this.loads.has(job)) return;
    const run = async (): Promise<void> => {
      for (let attempt = 0; this.wanted.has(job) && !this.closed; attempt++) {
        try {
          await mirror.refilter('job', job);
          if (this.failing) {
            this.failing = false;
            this.logger.info('job records readable again');
          }
          return;
        } catch (error) {
          if (!this.failing) {
            this.failing = true;
            this.logger.warn({ err: error, jobId: job }, 'could not read a job record; retrying with backoff');
          }
          await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(attempt, this.options.backoff ?? STORE_RETRY_BACKOFF)).unref());
        }
      }
    };
    this.loads.set(
      job,
      run().finally(() => {
        this.loads.delete(job);
        if (!this.closed) this.options.onLoaded(job);
      }),
    );
  }
}
