/**
 * StatusReporter: every task status an agent process writes goes through one of these, so a
 * machine running thousands of tasks (or a hollow process serving a thousand machines) makes a
 * few etcd requests per flush interval, not one per task event.
 *
 * ```
 *  report(task, claim, patch) ─► pending (one entry per task attempt: later patches merge over
 *                                earlier ones, so `running` + `succeeded` within one window
 *                                become one write)
 *        every flushIntervalMs ─► base records from the mirror ─► cell.updateTasks (one request
 *                                per chunk of maxTxnOps, each update guarded by the record's
 *                                revision and claim) ─► promises resolve with the outcome
 * ```
 *
 * Guarantees: updates for one task attempt are written in the order they were reported (one
 * flush at a time; merged patches keep the later value of each field); a terminal state is never
 * changed (cell-state merges) and a terminal record keeps its reason and message; an update is only applied
 * to the record while it is at the reported claim id (`stale` otherwise). Writes that failed
 * (etcd unavailable) stay pending and are retried with backoff (100 ms doubling to 5 s) until
 * `close()`, however long the outage: memory stays bounded by the number of task attempts with
 * something to report (later reports of one attempt merge into its pending entry), not by the
 * number of reports or retries. A report for a claim the task has moved on from (the machine
 * was taken for lost meanwhile and the task placed again) resolves `stale` and writes nothing.
 *
 * Why wait for the mirror: `updateTasks` guards each update with the revision of the record the
 * caller knows. After we wrote a record, the mirror's copy is stale until the watch delivers our
 * write (usually within milliseconds); a second update based on it would fail its guard and cost
 * a read and a write of its own. So an update whose previous write the mirror has not shown yet
 * waits for the next flush (at most {@link MAX_DEFER_MS}, then it goes anyway: correctness never
 * depends on this, only the number of requests).
 */
import pino, { type Logger } from 'pino';
import { FENCED_REASON } from './fence.js';
import { isTerminal, type Cell, type CellMirror, type Task, type TaskId, type TaskPatch, type TaskUpdateOutcome } from '@omega/cell-state';

/** Longest an update waits for the mirror to show the previous write of the same task. */
export const MAX_DEFER_MS = 1_000;

export interface StatusReporterOptions {
  /** How long reports are collected before they are written (default 50 ms). */
  readonly flushIntervalMs?: number;
  /** Most task updates per flush (default 2,000); the rest go in the next one, at once. */
  readonly maxBatch?: number;
  readonly logger?: Logger;
}

export interface StatusReporterCounters {
  /** `report()` calls. */
  reports: number;
  /** Task updates sent (after merging). */
  updates: number;
  /** `updateTasks` requests. */
  batches: number;
  /** Updates written one by one because the mirror did not hold the record at that claim. */
  solo: number;
  /** Times an update waited for the mirror to show the previous write. */
  deferred: number;
  /** Flushes that failed and were retried. */
  failures: number;
  /** Reports of an attempt's end, by reason (`oom-killed`, `disk-exceeded`, ...; `exited` when none). */
  readonly endings: Map<string, number>;
}

/** The reporter was closed before the update could be written; it was not. */
export class ReporterClosedError extends Error {
  constructor() {
    super('the status reporter was closed');
    this.name = 'ReporterClosedError';
  }
}

interface Pending {
  readonly taskId: TaskId;
  readonly claimId: string;
  patch: TaskPatch;
  waiters: { resolve: (outcome: TaskUpdateOutcome) => void; reject: (error: Error) => void }[];
}

/**
 * A terminal record keeps the reason it ended with (e.g. `preempted`) and its message: an agent
 * reporting how the process really ended adds exit code, signal and usage, not a second reason
 * nor words about one.
 */
function forRecord(task: Task, patch: TaskPatch): TaskPatch {
  if (!isTerminal(task.state) || (patch.reason === undefined && patch.message === undefined)) return patch;
  const { reason: _reason, message: _message, ...rest } = patch;
  return rest;
}

const keyOf = (taskId: string, claimId: string): string => `${taskId}#${claimId}`;

export class StatusReporter {
  readonly counters: StatusReporterCounters = { reports: 0, updates: 0, batches: 0, solo: 0, deferred: 0, failures: 0, endings: new Map() };
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly logger: Logger;
  private pending = new Map<string, Pending>();
  /** Per task attempt: the record revision our last write was based on, and when. */
  private readonly lastBase = new Map<string, { revision: number; atMs: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private consecutiveFailures = 0;
  private closed = false;

  constructor(
    private readonly cell: Cell,
    private readonly mirror: CellMirror,
    options: StatusReporterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 50;
    this.maxBatch = options.maxBatch ?? 2_000;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'status-reporter' });
  }

  /**
   * Queues an update of a task attempt's observed state. Resolves with the outcome once written
   * (`stale` when the task moved on to another claim); rejects with {@link ReporterClosedError}
   * if the reporter is closed first.
   */
  report(taskId: TaskId, claimId: string, reported: TaskPatch): Promise<TaskUpdateOutcome> {
    if (this.closed) return Promise.reject(new ReporterClosedError());
    this.counters.reports++;
    // Executors know one outcome of a stop the agent decided: `killed` with its reason. A fenced
    // task was stopped because its machine's lease lapsed: the cell must read `lost` (fence.ts).
    const patch: TaskPatch = reported.state === 'killed' && reported.reason === FENCED_REASON ? { ...reported, state: 'lost' } : reported;
    if (patch.state !== undefined && isTerminal(patch.state)) {
      const why = patch.reason === undefined || patch.reason === '' ? 'exited' : patch.reason;
      this.counters.endings.set(why, (this.counters.endings.get(why) ?? 0) + 1);
    }
    return new Promise((resolve, reject) => {
      const key = keyOf(taskId, claimId);
      const entry = this.pending.get(key);
      if (entry === undefined) this.pending.set(key, { taskId, claimId, patch: { ...patch }, waiters: [{ resolve, reject }] });
      else {
        entry.patch = { ...entry.patch, ...patch };
        entry.waiters.push({ resolve, reject });
      }
      this.schedule(this.flushIntervalMs);
    });
  }

  /** Number of task attempts with an unwritten update. */
  get backlog(): number {
    return this.pending.size;
  }

  /** Writes everything pending now (not waiting for the mirror); resolves when done or failed. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce(true));
    return this.flushing;
  }

  /**
   * Flushes what is pending (up to `timeoutMs`, default 5 s), then stops. Updates still unwritten
   * are rejected with {@link ReporterClosedError}: an agent's outcomes are on disk and reported
   * again after its restart.
   */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.pending.size > 0) await new Promise((r) => setTimeout(r, 100));
    }
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const entry of this.pending.values()) for (const w of entry.waiters) w.reject(new ReporterClosedError());
    this.pending.clear();
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = this.flushing.then(() => this.flushOnce(false));
      void this.flushing.then(() => {
        if (this.pending.size > 0) this.schedule(this.retryDelay());
      });
    }, delayMs);
  }

  private retryDelay(): number {
    return this.consecutiveFailures === 0 ? this.flushIntervalMs : Math.min(5_000, 100 * 2 ** Math.min(this.consecutiveFailures, 6));
  }

  private async flushOnce(force: boolean): Promise<void> {
    if (this.pending.size === 0) return;
    // The oldest maxBatch, taken out in place: copying the whole backlog per flush made a
    // reporter that fell behind spend its time copying what it could not send yet.
    const taken: Pending[] = [];
    for (const [key, entry] of this.pending) {
      if (taken.length >= this.maxBatch) break;
      taken.push(entry);
      this.pending.delete(key);
    }
    const snapshot = this.mirror.snapshot();
    const now = Date.now();
    const batch: { entry: Pending; task: NonNullable<ReturnType<typeof snapshot.task>> }[] = [];
    const solo: Pending[] = [];
    for (const entry of taken) {
      const key = keyOf(entry.taskId, entry.claimId);
      const record = snapshot.task(entry.taskId);
      if (record === undefined || record.claimId !== entry.claimId) {
        solo.push(entry);
        continue;
      }
      const base = this.lastBase.get(key);
      if (!force && base !== undefined && record.revision <= base.revision && now - base.atMs < MAX_DEFER_MS) {
        this.counters.deferred++;
        this.requeue(entry);
        continue;
      }
      batch.push({ entry, task: record });
    }
    const done: [Pending, TaskUpdateOutcome][] = [];
    try {
      if (batch.length > 0) {
        this.counters.batches++;
        this.counters.updates += batch.length;
        const outcomes = await this.cell.updateTasks(batch.map(({ entry, task }) => ({ task, patch: forRecord(task, entry.patch) })));
        for (const [i, { entry, task }] of batch.entries()) {
          const key = keyOf(entry.taskId, entry.claimId);
          // Deleted first, so the map stays in the order of `atMs` (prune reads it from the front).
          this.lastBase.delete(key);
          this.lastBase.set(key, { revision: task.revision, atMs: now });
          done.push([entry, outcomes[i] ?? 'updated']);
        }
      }
      for (const entry of solo) {
        // The mirror does not hold this attempt's record: ask the store, which knows.
        this.counters.solo++;
        this.counters.updates++;
        done.push([entry, await this.cell.updateTask(entry.taskId, entry.claimId, entry.patch)]);
      }
      if (this.consecutiveFailures > 0) this.logger.info({ failures: this.consecutiveFailures, backlog: this.pending.size }, 'task status writes resumed');
      this.consecutiveFailures = 0;
    } catch (error) {
      this.consecutiveFailures++;
      this.counters.failures++;
      // Once per outage: the retries that follow are counted, not logged.
      if (this.consecutiveFailures === 1) this.logger.warn({ err: error, updates: batch.length + solo.length }, 'task status write failed; retrying with backoff');
      const written = new Set(done.map(([e]) => e));
      for (const { entry } of batch) if (!written.has(entry)) this.requeue(entry);
      for (const entry of solo) if (!written.has(entry)) this.requeue(entry);
    }
    for (const [entry, outcome] of done) for (const w of entry.waiters) w.resolve(outcome);
    this.prune(now);
  }

  /** Puts an entry back, under any update reported since (which is newer and wins per field). */
  private requeue(entry: Pending): void {
    const key = keyOf(entry.taskId, entry.claimId);
    const newer = this.pending.get(key);
    if (newer === undefined) this.pending.set(key, entry);
    else this.pending.set(key, { ...entry, patch: { ...entry.patch, ...newer.patch }, waiters: [...entry.waiters, ...newer.waiters] });
  }

  private prune(now: number): void {
    if (this.lastBase.size < 10_000) return;
    // Oldest first: stop at the first one still young. A full pass per flush was most of a
    // flush at thousands of reports a second (the map then holds more than 10,000 all along).
    for (const [key, base] of this.lastBase) {
      if (now - base.atMs <= MAX_DEFER_MS) break;
      this.lastBase.delete(key);
    }
  }
}
