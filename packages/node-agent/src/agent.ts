/**
 * Agent: the part of a node agent that decides, from the cell state, which task attempts run on
 * its machine(s), and hands them to an {@link Executor}. One Agent serves one real machine, or
 * N hollow machines sharing one mirror, one status reporter and one lease.
 *
 * ```
 *   start: register machine(s) ─► heartbeat ─► mirror ─► executor.recover ─► watch
 *          (each store step retried with backoff until etcd answers or stop())
 *
 *   mirror change ─► machines/<ours>      ─► placed tasks with a claim on it ─► start
 *                 ─► tasks/<job>/<index>  ─► ours and placed ─► start
 *                                         ─► local attempt: killed / other claim / gone ─► stop
 *                 ─► jobs/<id>            ─► desired killed ─► stop its local attempts
 *
 *   stop: unschedulable ─► (drain: stop every attempt) ─► flush reports ─► heartbeat off
 * ```
 *
 * A task runs when its record has this machine, state `placed`, and its claim is on the
 * machine's record (both written in one transaction, so one mirror revision shows both). An
 * attempt is started at most once per claim, even if its record is still `placed` in the
 * mirror after it ended (the `running` report not yet seen). Starts on a machine wait until every
 * attempt being stopped on that machine is gone: a preempted task is stopped before the task
 * that replaced it starts. Mirror changes are handled synchronously, in revision order.
 */
import pino, { type Logger } from 'pino';
import {
  isPermanentStoreError,
  isTerminal,
  RetryState,
  retryUntilDone,
  STORE_RETRY_BACKOFF,
  type BackoffPolicy,
  type Cell,
  type CellMirror,
  type CellSnapshot,
  type Job,
  type Machine,
  type JobId,
  type MachineId,
  type MachineRegistration,
  type MirrorChange,
  type Task,
  type TaskId,
} from '@omega/cell-state';
import type { Executor, TaskAttempt } from './executor.js';
import { HeartbeatKeeper, markUnschedulable, registerAll } from './registration.js';
import { StatusReporter } from './status-reporter.js';
import { JobInterest } from './job-interest.js';
import { DEFAULT_FENCE_AFTER_MS, FENCED_REASON, LeaseFence } from './fence.js';
import type { TimerClock } from './timer-clock.js';

export interface AgentOptions {
  readonly cell: Cell;
  /** The machine(s) this process serves: one for a real agent, many for a hollow one. */
  readonly machines: readonly MachineRegistration[];
  /** Builds the executor once the mirror and the reporter exist. */
  readonly executor: (context: { reporter: StatusReporter; mirror: CellMirror; logger: Logger }) => Executor | Promise<Executor>;
  readonly logger?: Logger;
  readonly heartbeatTtlSeconds?: number;
  /** `host:port` of this agent's log server, advertised in `alive/<id>`. */
  readonly logAddress?: string;
  /** Status batching window (default 50 ms). */
  readonly flushIntervalMs?: number;
  /** Written into `alive/<id>`. */
  readonly agentName?: string;
  /** Backoff while the store does not answer at start (default 250 ms doubling to 10 s). */
  readonly storeBackoff?: BackoffPolicy;
  /**
   * Kill every local task once the heartbeat lease went this long without an acknowledged
   * renewal (fence.ts; default 5000, the schedulers' default machine-loss grace; 0: never).
   */
  readonly fenceAfterMs?: number;
  /** The fence's monotonic clock (a fake in tests). */
  readonly fenceClock?: TimerClock;
}

/** Longest a stop waits for the store to mark the machines unschedulable (it may be down). */
const STOP_STORE_WAIT_MS = 10_000;

/** The start steps' log lines (the agent's README and operators know these). */
const START_RETRY_MESSAGES = { down: 'cell store unreachable; retrying with backoff', up: 'cell store reachable again' } as const;

/** Waits for `work` at most `ms`; calls `onTimeout` if it took longer (the work is not cancelled). */
async function withinMs(ms: number, work: Promise<unknown>, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)));
  const finished = work.then(
    () => false,
    () => false,
  );
  if (await Promise.race([finished, timedOut])) onTimeout();
  clearTimeout(timer);
}

/** What the agent did, for tests and logs. */
export interface AgentCounters {
  started: number;
  stopped: number;
  recovered: number;
  /** Running records found on our machines with no local attempt after a restart. */
  reportedLost: number;
  /** Local attempts stopped by the fence (reported `lost`, reason `fenced`). */
  fenced: number;
}

export class Agent {
  readonly counters: AgentCounters = { started: 0, stopped: 0, recovered: 0, reportedLost: 0, fenced: 0 };
  private readonly logger: Logger;
  private readonly machineIds: Set<MachineId>;
  private mirrorHandle: CellMirror | undefined;
  private reporterHandle: StatusReporter | undefined;
  private executor: Executor | undefined;
  private heartbeat: HeartbeatKeeper | undefined;
  private unsubscribe: (() => void) | undefined;
  /** The current local attempt of each task (a replaced one being stopped is in `stopping`). */
  private readonly attempts = new Map<TaskId, TaskAttempt>();
  private readonly byJob = new Map<JobId, Set<TaskId>>();
  /** The last claim we started (or decided about) per task: never start a claim twice. */
  private readonly handled = new Map<TaskId, string>();
  /** Stops in progress, per machine: starts on that machine wait for them. */
  private readonly stopping = new Map<MachineId, Set<Promise<void>>>();
  private stopped = false;
  private starting: Promise<void> | undefined;
  private registered = false;
  private running = false;
  /** The start steps' store retry (one state for all steps: they run one after another). */
  private readonly retry: RetryState;
  /** Aborted by `stop()`: a start waiting for the store gives up at once. */
  private readonly startAbort = new AbortController();
  /** Which jobs' records we hold; the mirror's filter (only our part of the cell). */
  private readonly interest: JobInterest;
  /** Closed while the heartbeat lease is not being renewed: local tasks are killed, none start. */
  private readonly fence: LeaseFence;

  constructor(private readonly options: AgentOptions) {
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'agent' });
    this.machineIds = new Set(options.machines.map((m) => m.id));
    this.retry = new RetryState(this.logger.child({ component: 'store-retry' }), options.storeBackoff ?? STORE_RETRY_BACKOFF, START_RETRY_MESSAGES);
    this.interest = new JobInterest({
      machineIds: this.machineIds,
      hasLocal: (job) => this.byJob.has(job),
      onLoaded: (job) => this.onJobLoaded(job),
      logger: this.logger,
      ...(options.storeBackoff === undefined ? {} : { backoff: options.storeBackoff }),
    });
    this.fence = new LeaseFence({
      afterMs: options.fenceAfterMs ?? DEFAULT_FENCE_AFTER_MS,
      onFence: () => this.onFenced(),
      onLifted: () => this.onFenceLifted(),
      logger: this.logger,
      ...(options.fenceClock === undefined ? {} : { clock: options.fenceClock }),
    });
  }

  /** The agent's mirror (after `start()`). */
  get mirror(): CellMirror {
    if (this.mirrorHandle === undefined) throw new Error('the agent is not started');
    return this.mirrorHandle;
  }

  get reporter(): StatusReporter {
    if (this.reporterHandle === undefined) throw new Error('the agent is not started');
    return this.reporterHandle;
  }

  /** Local attempts now (running, starting or stopping). */
  get attemptCount(): number {
    return this.attempts.size;
  }

  /**
   * Registers the machine(s), starts the heartbeat, replicates the cell, recovers attempts left
   * by a previous agent, and starts running what is placed here. Each step that needs the store
   * is retried with capped exponential backoff (cell-state's `retryUntilDone`: 250 ms doubling
   * to 10 s, logged once per state change) for as long as it takes, so an agent started before
   * etcd (or during an outage) comes up once etcd answers. Resolves once running, or once
   * `stop()` was called; rejects only for what retrying cannot fix (an invalid registration,
   * an executor that cannot start). Attempts found on disk are recovered only after the first
   * complete list, so adoption always sees the cell as it is.
   */
  start(): Promise<void> {
    this.starting ??= this.startSteps();
    return this.starting;
  }

  private async startSteps(): Promise<void> {
    const { cell } = this.options;
    if ((await this.untilStoreAnswers('register', () => registerAll(cell, this.options.machines))) === undefined) return;
    this.registered = true;
    const heartbeat = new HeartbeatKeeper(cell, [...this.machineIds], {
      ttlSeconds: this.options.heartbeatTtlSeconds ?? 10,
      agent: this.options.agentName ?? '',
      logAddress: this.options.logAddress ?? '',
      logger: this.logger,
      renewals: this.fence,
    });
    this.heartbeat = heartbeat;
    if ((await this.untilStoreAnswers('heartbeat', () => heartbeat.start())) === undefined) return;
    try {
      await this.startRunning();
    } catch (error) {
      // A machine that cannot run tasks must not look alive: schedulers would place tasks on it.
      await this.mirrorHandle?.stop().catch(() => undefined);
      await heartbeat.stop().catch(() => undefined);
      await markUnschedulable(cell, [...this.machineIds], 'agent failed to start', this.logger).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Runs one start step until the store answers: `{ value }`, or `undefined` once `stop()` was
   * called. What retrying cannot fix (an invalid registration, a refused request) is thrown.
   */
  private untilStoreAnswers<T>(step: string, fn: () => Promise<T>): Promise<{ readonly value: T } | undefined> {
    return retryUntilDone(fn, { state: this.retry, signal: this.startAbort.signal, isFatal: isPermanentStoreError, fields: { step } });
  }

  private async startRunning(): Promise<void> {
    const { cell } = this.options;
    // Only our part of the cell: our machines, the tasks placed on them, those tasks' jobs.
    const mirror = cell.mirror({ logger: this.logger, filter: this.interest.filter });
    this.mirrorHandle = mirror;
    this.interest.attach(mirror);
    if ((await this.untilStoreAnswers('list', () => mirror.start())) === undefined || this.stopped) return;
    const reporter = new StatusReporter(cell, mirror, { flushIntervalMs: this.options.flushIntervalMs ?? 50, logger: this.logger });
    this.reporterHandle = reporter;
    this.executor = await this.options.executor({ reporter, mirror, logger: this.logger });
    const recovered = await this.executor.recover(mirror.snapshot());
    for (const attempt of recovered) {
      this.track(attempt);
      this.handled.set(attempt.taskId, attempt.claimId);
    }
    this.counters.recovered = recovered.length;
    if (this.stopped) return;
    this.reportOrphans(mirror.snapshot());
    this.unsubscribe = mirror.onChange((change) => this.onChange(change));
    this.fullScan(mirror.snapshot());
    this.running = true;
    this.logger.info({ machines: this.machineIds.size, recovered: recovered.length }, 'agent started');
  }

  /** Whether `start()` got the agent running (false while it waits for the store, and after a stop during start). */
  get isRunning(): boolean {
    return this.running && !this.stopped;
  }

  /**
   * Leaves the cell: marks the machine(s) unschedulable first, then either stops every attempt
   * (`drain`, reported `killed` with reason `machine-drained`) or leaves them running for the
   * next agent to adopt, writes what is still to be reported, and revokes the heartbeat.
   */
  async stop(options: { drain?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.fence.stop();
    // A start still waiting for the store gives up at once; one in the middle of a step
    // finishes it (bounded by the store's call deadline) before we tear down what it built.
    this.startAbort.abort();
    await this.starting?.catch(() => undefined);
    // Never registered (the store never answered): nothing to mark.
    if (this.registered) await withinMs(STOP_STORE_WAIT_MS, markUnschedulable(this.options.cell, [...this.machineIds], 'agent stopping', this.logger), () => this.logger.warn('could not mark the machine(s) unschedulable in time; stopping anyway'));
    this.unsubscribe?.();
    this.interest.close();
    const attempts = [...this.attempts.values()];
    if (options.drain === true) {
      await Promise.all(attempts.map((a) => a.stop('machine-drained')));
      await Promise.all(attempts.map((a) => a.done));
    } else {
      for (const a of attempts) a.detach();
    }
    await this.reporterHandle?.close();
    await this.executor?.close();
    const revoke = this.heartbeat?.stop().catch((error: unknown) => this.logger.warn({ err: error }, 'could not revoke the heartbeat lease'));
    await withinMs(STOP_STORE_WAIT_MS, revoke ?? Promise.resolve(), () => this.logger.warn('could not revoke the heartbeat lease in time; it expires with its TTL'));
    await this.mirrorHandle?.stop();
    this.logger.info({ drained: options.drain === true, attempts: attempts.length }, 'agent stopped');
  }

  // ---- reacting to the cell -----------------------------------------------------------------

  private onChange(change: MirrorChange): void {
    if (this.stopped) return;
    // A (re-)list: anything may have changed.
    if (change.full) {
      this.fullScan(this.mirror.snapshot());
      return;
    }
    // A batch of records the filter refused (other jobs' owners, statuses, requests): nothing of ours.
    if (change.changes.length === 0) return;
    const snapshot = this.mirror.snapshot();
    // Stops first, starts second: a preemption commits the victim's kill and the new claim in
    // one revision, and the new task must find the victim already stopping.
    for (const c of change.changes) if (c.kind === 'task') this.interest.taskChanged(snapshot, c.id as TaskId);
    for (const c of change.changes) {
      if (c.kind === 'task') this.checkLocal(snapshot, c.id as TaskId);
      else if (c.kind === 'job') this.onJob(snapshot, c.id as JobId);
    }
    for (const c of change.changes) {
      if (c.kind === 'machine' && this.machineIds.has(c.id as MachineId)) this.scanMachine(snapshot, c.id as MachineId);
      else if (c.kind === 'task') this.considerStart(snapshot, c.id as TaskId);
    }
  }

  private fullScan(snapshot: CellSnapshot): void {
    const claimed: TaskId[] = [];
    for (const id of this.machineIds) for (const claim of snapshot.machine(id)?.claims ?? []) claimed.push(claim.taskId);
    this.interest.rescan(snapshot, claimed, this.byJob.keys());
    for (const id of [...this.handled.keys()]) if (snapshot.task(id) === undefined && !this.attempts.has(id)) this.handled.delete(id);
    for (const id of [...this.attempts.keys()]) this.checkLocal(snapshot, id);
    for (const id of this.machineIds) this.scanMachine(snapshot, id);
  }

  /** Starts every placed task whose claim is on the machine. */
  private scanMachine(snapshot: CellSnapshot, id: MachineId): void {
    const machine = snapshot.machine(id);
    if (machine === undefined) return;
    for (const claim of machine.claims) {
      const task = snapshot.task(claim.taskId);
      if (task !== undefined && task.claimId === claim.id) this.maybeStart(snapshot, task);
    }
  }

  /** Stops the local attempt of a task whose record says it must not run (any more). */
  private checkLocal(snapshot: CellSnapshot, id: TaskId): void {
    const local = this.attempts.get(id);
    if (local === undefined) return;
    const task = snapshot.task(id);
    if (task === undefined || task.claimId !== local.claimId) this.stopAttempt(local, undefined);
    else if (task.state === 'killed' || task.state === 'lost') this.stopAttempt(local, undefined);
    else if (snapshot.job(local.jobId)?.desired === 'killed') this.stopAttempt(local, 'job-killed');
  }

  private considerStart(snapshot: CellSnapshot, id: TaskId): void {
    const task = snapshot.task(id);
    if (task === undefined) {
      // Deleted (retention) or moved to another machine: its claim here can never start again,
      // and what we remember about it would only grow with every task this machine ever ran.
      if (this.attempts.get(id) === undefined) this.handled.delete(id);
      return;
    }
    // Once the record left `placed` at the claim we handled, it can never be placed again at
    // that claim: forget it.
    if (this.handled.get(id) === task.claimId && task.state !== 'placed' && this.attempts.get(id)?.claimId !== task.claimId) this.handled.delete(id);
    this.maybeStart(snapshot, task);
  }

  private onJob(snapshot: CellSnapshot, id: JobId): void {
    if (snapshot.job(id)?.desired !== 'killed') return;
    for (const taskId of this.byJob.get(id) ?? []) {
      const attempt = this.attempts.get(taskId);
      if (attempt !== undefined) this.stopAttempt(attempt, 'job-killed');
    }
  }

  private maybeStart(snapshot: CellSnapshot, task: Task): void {
    // Fenced: the schedulers may be replacing this machine's tasks; the lift rescans.
    if (this.stopped || this.fence.fenced || task.state !== 'placed' || !this.machineIds.has(task.machineId)) return;
    if (this.handled.get(task.id) === task.claimId) return;
    const machine = snapshot.machine(task.machineId);
    if (machine === undefined || !holdsClaim(machine, task.claimId)) return;
    // The job's record is being read (its first task here just appeared): onJobLoaded retries.
    if (snapshot.job(task.jobId) === undefined && this.interest.loading(task.jobId)) return;
    this.handled.set(task.id, task.claimId);
    // Fields, not a child logger: one per start was a third of a hollow agent's allocations.
    const named = { machineId: task.machineId, taskId: task.id, attempt: task.attempt };
    const job = snapshot.job(task.jobId);
    if (job === undefined || job.desired === 'killed') {
      const patch = job === undefined ? { state: 'failed' as const, reason: 'job-missing' } : { state: 'killed' as const, reason: 'job-killed' };
      this.logger.info({ ...named, reason: patch.reason }, 'task not started');
      void this.reporter.report(task.id, task.claimId, { ...patch, finishedAtMs: Date.now() }).catch(() => undefined);
      return;
    }
    const stopping = this.stopping.get(task.machineId);
    if (stopping === undefined || stopping.size === 0) {
      this.launch(task, job);
      return;
    }
    this.logger.info({ ...named, waitingFor: stopping.size }, 'task waits for stopping tasks on its machine');
    void Promise.allSettled([...stopping]).then(() => {
      // Re-read: the task may have been killed or moved while we waited.
      const now = this.mirror.snapshot();
      const fresh = now.task(task.id);
      const freshJob = now.job(task.jobId);
      // Fenced meanwhile: it waits for the lift's rescan (maybeStart refuses it until then).
      if (this.stopped || this.fence.fenced || fresh === undefined || fresh.claimId !== task.claimId || fresh.state !== 'placed' || freshJob === undefined || freshJob.desired === 'killed') {
        this.handled.delete(task.id);
        if (fresh !== undefined) this.maybeStart(now, fresh);
        return;
      }
      // Another stop may have begun meanwhile: wait for it too.
      if ((this.stopping.get(task.machineId)?.size ?? 0) > 0) {
        this.handled.delete(task.id);
        this.maybeStart(now, fresh);
        return;
      }
      this.launch(fresh, freshJob);
    });
  }

  private launch(task: Task, job: Job): void {
    if (this.executor === undefined) return;
    this.logger.info({ machineId: task.machineId, taskId: task.id, attempt: task.attempt }, 'starting task');
    this.counters.started++;
    this.track(this.executor.start(task, job));
  }

  private track(attempt: TaskAttempt): void {
    this.attempts.set(attempt.taskId, attempt);
    let ofJob = this.byJob.get(attempt.jobId);
    if (ofJob === undefined) this.byJob.set(attempt.jobId, (ofJob = new Set()));
    ofJob.add(attempt.taskId);
    // Recovered while fenced (the fence closed during the start steps): it goes too.
    if (this.fence.fenced) this.fenceAttempt(attempt);
    void attempt.ended.then(() => {
      if (this.attempts.get(attempt.taskId) !== attempt) return;
      this.attempts.delete(attempt.taskId);
      const set = this.byJob.get(attempt.jobId);
      set?.delete(attempt.taskId);
      if (set?.size === 0) this.byJob.delete(attempt.jobId);
      if (!this.stopped) this.interest.reconsider(attempt.jobId);
    });
  }

  /** A job's record was read (or found missing): start its tasks that waited for it. */
  private onJobLoaded(job: JobId): void {
    if (this.stopped || this.mirrorHandle === undefined) return;
    const snapshot = this.mirrorHandle.snapshot();
    for (const id of this.interest.activeTasks(job)) {
      const task = snapshot.task(id);
      if (task !== undefined) this.maybeStart(snapshot, task);
    }
  }

  /** Jobs whose records the agent holds or is reading now (for tests and metrics). */
  get wantedJobs(): number {
    return this.interest.wantedCount;
  }

  private stopAttempt(attempt: TaskAttempt, reason: string | undefined, graceMs?: number): void {
    let set = this.stopping.get(attempt.machineId);
    if (set === undefined) this.stopping.set(attempt.machineId, (set = new Set()));
    const stopping = attempt.stop(reason, graceMs);
    if (set.has(stopping)) return;
    this.counters.stopped++;
    this.logger.info({ machineId: attempt.machineId, taskId: attempt.taskId, reason: reason ?? 'record' }, 'stopping task');
    set.add(stopping);
    void stopping.then(() => {
      set.delete(stopping);
      if (set.size === 0) this.stopping.delete(attempt.machineId);
    });
  }

  /** Whether the fence is closed now (for tests and metrics). */
  get isFenced(): boolean {
    return this.fence.fenced;
  }

  /**
   * The lease went unrenewed past the fence time: the schedulers may already have marked these
   * tasks lost and placed them elsewhere, so none may keep running here. Each is killed at once
   * (the whole cgroup, no grace: a graceful stop could outlast the replacement's start) and
   * reported `lost`, reason `fenced`, when the store answers again; one that ended before keeps
   * its real outcome.
   */
  private onFenced(): void {
    if (this.stopped) return;
    const attempts = [...this.attempts.values()];
    this.logger.warn({ attempts: attempts.length }, 'fenced: stopping every local task');
    for (const attempt of attempts) this.fenceAttempt(attempt);
  }

  private fenceAttempt(attempt: TaskAttempt): void {
    this.counters.fenced++;
    this.stopAttempt(attempt, FENCED_REASON, 0);
  }

  /** Renewed again: whatever is placed here now (the cell as the mirror shows it) may start. */
  private onFenceLifted(): void {
    if (this.stopped || !this.running || this.mirrorHandle === undefined) return;
    this.fullScan(this.mirrorHandle.snapshot());
  }

  /**
   * After a restart: a record that says `running` on one of our machines, at a claim we know
   * nothing about, cannot be watched or stopped any more (its files are gone): report it lost.
   */
  private reportOrphans(snapshot: CellSnapshot): void {
    for (const id of this.machineIds) {
      for (const claim of snapshot.machine(id)?.claims ?? []) {
        const task = snapshot.task(claim.taskId);
        if (task === undefined || task.claimId !== claim.id || task.machineId !== id || task.state !== 'running') continue;
        if (this.attempts.get(task.id)?.claimId === task.claimId || isTerminal(task.state)) continue;
        this.counters.reportedLost++;
        this.handled.set(task.id, task.claimId);
        this.logger.warn({ machineId: id, taskId: task.id }, 'running task has no local state; reporting it lost');
        void this.reporter.report(task.id, task.claimId, { state: 'lost', reason: 'agent-state-missing', finishedAtMs: Date.now() }).catch(() => undefined);
      }
    }
  }
}

/** Machines with more claims than this get a set of their claim ids (one per record version). */
const CLAIM_SET_FROM = 16;
const claimSets = new WeakMap<Machine, ReadonlySet<string>>();

/**
 * Whether the machine record holds the claim. A packed machine holds hundreds of claims and
 * every start asks once, so a scan per start was quadratic in the machine's tasks (a tenth of
 * a hollow agent's time at a few thousand starts a second); records are immutable, so a set per
 * record version is built once and dropped with the record.
 */
function holdsClaim(machine: Machine, claimId: string): boolean {
  if (machine.claims.length <= CLAIM_SET_FROM) return machine.claims.some((c) => c.id === claimId);
  let ids = claimSets.get(machine);
  if (ids === undefined) claimSets.set(machine, (ids = new Set(machine.claims.map((c) => c.id))));
  return ids.has(claimId);
}
