/**
 * Hollow machines: one process serves N simulated machines (`<prefix>-0000` ...), each
 * registered and kept alive like a real one, whose tasks "run" for the `runDurationMs` of their
 * spec and then succeed (exit code 0) or, with `hollowFail`, fail (exit code 1). No process is
 * started. Everything else (which tasks run, kills, preemption order, status batching) is the
 * same Agent code as a real machine's, so a hollow cell exercises schedulers and etcd as a real
 * one would.
 *
 * Scale choices: one mirror, one status reporter and ONE lease for all machines of the process
 * (`alive/<id>` is still one key per machine, all bound to that lease): a thousand leases would
 * mean a thousand keep-alive streams for nothing. Machines are registered in batched
 * transactions (`cell.registerMachines`).
 */
import pino, { type Logger } from 'pino';
import { HEALTH_CHECK_FAILED, machineId, resolveHealthCheck, type CellSnapshot, type Job, type MachineId, type MachineRegistration, type Resources, type Task, type TaskPatch } from '@omega/cell-state';
import type { Executor, TaskAttempt } from './executor.js';
import { ReporterClosedError, type StatusReporter } from './status-reporter.js';

/** `<prefix>-0000`, `<prefix>-0001`, ...: at least four digits, more when n needs them. */
export function hollowMachineIds(prefix: string, n: number): MachineId[] {
  const width = Math.max(4, String(Math.max(0, n - 1)).length);
  return Array.from({ length: n }, (_, i) => machineId(`${prefix}-${String(i).padStart(width, '0')}`));
}

/** Registrations for `n` hollow machines of the same capacity and attributes. */
export function hollowMachines(prefix: string, n: number, capacity: Resources, attributes: Readonly<Record<string, string>> = {}): MachineRegistration[] {
  return hollowMachineIds(prefix, n).map((id) => ({ id, capacity, attributes: { ...attributes }, hollow: true }));
}

/** Runs tasks as timers. */
export class HollowExecutor implements Executor {
  private readonly live = new Set<HollowAttempt>();
  private readonly logger: Logger;

  constructor(
    private readonly reporter: StatusReporter,
    options: { logger?: Logger } = {},
  ) {
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'hollow' });
  }

  /** Hollow machines keep nothing on disk: their running tasks are reported lost by the agent. */
  recover(_snapshot: CellSnapshot): Promise<TaskAttempt[]> {
    return Promise.resolve([]);
  }

  start(task: Task, job: Job): TaskAttempt {
    const attempt = new HollowAttempt(task, job, this.reporter, this.logger);
    this.live.add(attempt);
    void attempt.ended.then(() => this.live.delete(attempt));
    return attempt;
  }

  close(): Promise<void> {
    for (const attempt of this.live) attempt.detach();
    return Promise.resolve();
  }
}

class HollowAttempt implements TaskAttempt {
  readonly taskId;
  readonly jobId;
  readonly claimId;
  readonly machineId;
  readonly ended: Promise<void>;
  readonly done: Promise<void>;
  private resolveEnded!: () => void;
  private resolveDone!: () => void;
  private timer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private over = false;

  constructor(
    task: Task,
    job: Job,
    private readonly reporter: StatusReporter,
    private readonly logger: Logger,
  ) {
    this.taskId = task.id;
    this.jobId = task.jobId;
    this.claimId = task.claimId;
    this.machineId = task.machineId;
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const startedAtMs = Date.now();
    void this.send({ state: 'running', pid: 0, startedAtMs });
    const fail = job.spec.task.hollowFail;
    this.at('timer', startedAtMs + Math.max(0, job.spec.task.runDurationMs), () => {
      this.finish(fail ? { state: 'failed', reason: 'nonzero-exit', exitCode: 1 } : { state: 'succeeded', exitCode: 0 });
    });
    if (job.spec.task.healthCheck !== undefined) this.simulateHealth(job, startedAtMs);
  }

  /**
   * Runs `fn` in `slot` once the wall clock the record's stamps come from (`Date.now()`) reaches
   * `atMs`. Timers run on the monotonic clock and may fire a millisecond before `Date.now()` says
   * their delay has passed; one that fires early is armed again for the rest.
   */
  private at(slot: 'timer' | 'healthTimer', atMs: number, fn: () => void): void {
    this[slot] = setTimeout(() => {
      this[slot] = undefined;
      if (Date.now() < atMs) this.at(slot, atMs, fn);
      else fn();
    }, Math.max(0, atMs - Date.now()));
  }

  /**
   * A hollow task's health check runs nothing: at the end of its grace period it reports
   * `passing`, or with `hollowFailing` `failing`, and then fails the task `health-check-failed`
   * when a real check failing every time would: `failureThreshold - 1` intervals later.
   */
  private simulateHealth(job: Job, startedAtMs: number): void {
    const check = resolveHealthCheck(job.spec.task.healthCheck ?? {});
    this.at('healthTimer', startedAtMs + check.gracePeriodMs, () => {
      if (this.over) return;
      const healthSinceMs = Date.now();
      void this.send({ health: check.hollowFailing ? 'failing' : 'passing', healthSinceMs });
      if (!check.hollowFailing) return;
      this.at('healthTimer', healthSinceMs + (check.failureThreshold - 1) * check.intervalMs, () => {
        this.finish({ state: 'failed', reason: HEALTH_CHECK_FAILED, signal: 'SIGTERM' });
      });
    });
  }

  stop(reason?: string): Promise<void> {
    // A hollow task obeys TERM at once.
    this.finish({ state: 'killed', signal: 'SIGTERM', ...(reason === undefined ? {} : { reason }) });
    return this.ended;
  }

  detach(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.healthTimer !== undefined) clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
    this.over = true;
    this.resolveEnded();
    this.resolveDone();
  }

  private finish(patch: TaskPatch): void {
    if (this.over) return;
    this.over = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.healthTimer !== undefined) clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
    this.resolveEnded();
    void this.send({ cpuSeconds: 0, peakMemoryBytes: 0, ...patch, finishedAtMs: Date.now() }).then(() => this.resolveDone());
  }

  private send(patch: TaskPatch): Promise<void> {
    return this.reporter.report(this.taskId, this.claimId, patch).then(
      () => undefined,
      (error: unknown) => {
        if (!(error instanceof ReporterClosedError)) this.logger.warn({ err: error, taskId: this.taskId }, 'hollow task status not written');
      },
    );
  }
}
