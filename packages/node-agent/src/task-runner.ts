/**
 * Runs real task attempts: one directory, one cgroup and one supervisor process each (see
 * native/omega-supervisor.c for how the process gets into its cgroup before any user code runs,
 * supervisor-command.ts for how it is started, and task-paths.ts for the layout on disk).
 *
 * ```
 *  start ─► dir + meta.json ─► work/ (task user) ─► cgroup with limits ─► secret env (if any)
 *        ─► spawn supervisor (detached; what to run on its command line), env on its stdin
 *           (never on disk)
 *        ─► started.json ─► report running (pid, startedAtMs)
 *        ─► supervisor exits after exit.json ─► kill leftovers, read usage + OOM count,
 *           remove cgroup ─► report succeeded / failed (exit code, signal, oom-killed,
 *           disk-exceeded) / killed
 *        ─► reported.json, work/ removed (logs stay)
 *
 *  stop  ─► SIGTERM to every process in the cgroup ─► grace ─► kill all (cgroup.kill / freezer
 *           / repeated passes) ─► the supervisor records the signal ─► as above
 *
 *  after an agent restart (recover): for each task directory without reported.json
 *        exit.json present        ─► report its outcome (once: a record already terminal with
 *                                    finishedAtMs is taken as reported)
 *        supervisor still alive   ─► adopt: watch for exit.json (polling), stop on demand
 *        never started            ─► remove; the agent starts it again if still placed
 * ```
 *
 * Without enforcement (no usable cgroups, `--no-enforcement`), the same happens without a
 * cgroup: the task is its own process group and session, and stopping it signals the group
 * (a process that leaves the group escapes: that is what enforcement is for).
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { isTerminal, parseTaskId, type CellSnapshot, type Job, type JobId, type MachineId, type SecretEnv, type Task, type TaskId, type TaskPatch } from '@omega/cell-state';
import { cgroupLimits, sleep, type CgroupDriver, type CgroupUsage, type TaskCgroup } from './cgroup-driver.js';
import type { Executor, TaskAttempt } from './executor.js';
import { IsolationUnavailableError, taskIsolation, type HostIsolation } from './isolation.js';
import { ReporterClosedError, type StatusReporter } from './status-reporter.js';
import { LaunchFailedError, launcherPathFor, SupervisorLauncher } from './supervisor-launcher.js';
import { DEFAULT_DISK_CHECK_MS, DEFAULT_DISK_LIMIT_BYTES, DEFAULT_DISK_MAX_ENTRIES, DISK_EXCEEDED, taskDiskBound, type DiskBound } from './disk-limit.js';
import { DEFAULT_LOG_CAP_BYTES, defaultSupervisorPath, encodeSupervisorEnv, supervisorArgs, taskLogCap, taskMemoryLimit, type SupervisorCommand } from './supervisor-command.js';
import { MAX_SUPERVISOR_ENV_BYTES, readJson, TASK_FILES, writeJsonVolatile, writeJsonVolatileAsync, type ExitRecord, type ReportedRecord, type StartedRecord, type SupervisorEnv, type TaskMeta } from './task-files.js';
import { insideRoot, isTaskInstanceName, taskInstanceName, tasksRoot } from './task-paths.js';
import { DEFAULT_KEEP_ATTEMPTS, DEFAULT_TASK_RETENTION_MS, removeExpiredTasks, removeOldAttempts, sweepIntervalMs } from './task-retention.js';
import { TaskUidPool, type UidRange } from './task-uids.js';
import { checkTraversable, type TaskUser } from './task-user.js';
import { namedTaskUser, removeAsUser, TaskUserRefusedError } from './named-users.js';
import { HEALTH_CHECK_FAILED, type HealthCheck, type HealthState } from '@omega/cell-state';
import { watchAttemptHealth } from './attempt-health.js';
import { CheckSlots, DEFAULT_MAX_CONCURRENT_CHECKS, type HealthWatch } from './health-checks.js';
import { taskMessage } from './task-message.js';
import { supervisorAlive, supervisorsUnder } from './supervisor-processes.js';

/** PATH given to tasks that do not set their own. */
export const DEFAULT_TASK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_KILL_GRACE_MS = 10_000;
/**
 * How long a start waits for a uid when every uid of --task-uids is in use but some are held by
 * attempts that have ended and are cleaning up (report, then work dir removal: milliseconds).
 */
const UID_WAIT_MS = 5_000;

export interface ProcessExecutorOptions {
  readonly dataDir: string;
  readonly machineId: MachineId;
  readonly reporter: StatusReporter;
  /** The prepared cgroup driver; undefined runs tasks without enforcement. */
  readonly cgroups: CgroupDriver | undefined;
  /** Run tasks as this user (the agent must be root); undefined: as the agent's own user. */
  readonly taskUser?: TaskUser;
  /**
   * Run each task attempt as its own uid (gid = uid) from this range (the agent must be root;
   * see task-uids.ts). Takes precedence over `taskUser`.
   */
  readonly taskUids?: UidRange;
  /**
   * Users a job may name (`user:`) to run its tasks as (`--allow-users`; see named-users.ts).
   * Empty or absent: none; a task of a job naming one fails `user-not-allowed`.
   */
  readonly allowUsers?: readonly string[];
  /** Where named users are looked up (default /etc/passwd). */
  readonly passwdPath?: string;
  /** Between TERM and KILL when stopping a task (default 10 s). */
  readonly killGraceMs?: number;
  readonly logger?: Logger;
  /** The supervisor binary (default: `omega-supervisor` of this package's build, see supervisor-command.ts). */
  readonly supervisorPath?: string;
  /**
   * Start supervisors through `omega-launcher` (built next to the supervisor; see
   * supervisor-launcher.ts) instead of forking the agent per task (default true; without a
   * launcher binary next to the supervisor, or false: `child_process.spawn`).
   */
  readonly useLauncher?: boolean;
  /** Cap of each of a task's stdout.log and stderr.log; one rotated file more is kept (default 64 MiB). */
  readonly logCapBytes?: number;
  /**
   * Most bytes a task's work dir may have allocated (`--disk-limit`; default 10 GiB; 0: none); a
   * job's `diskLimitBytes` may ask less. Measured by the supervisor (see disk-limit.ts).
   */
  readonly diskLimitBytes?: number;
  /** Most entries (inodes) a task's work dir may hold (`--disk-inodes`; default 1,000,000; 0: none). */
  readonly diskMaxEntries?: number;
  /** Between two measurements of a work dir (`--disk-check-ms`; default 5000; none at start). */
  readonly diskCheckIntervalMs?: number;
  /** How often adopted attempts are checked for their end (default 250 ms). */
  readonly pollIntervalMs?: number;
  /** How long a finished task's directory and logs are kept after its end was reported (default a day; 0: forever). */
  readonly taskRetentionMs?: number;
  /** Attempt directories kept per task: older ones go when a new attempt starts (default 3). */
  readonly keepAttempts?: number;
  /**
   * Reads a job's secret env values (`Cell.readSecretEnv`); undefined when the job has none
   * stored. Called only for jobs whose spec names secrets, when one of their tasks starts.
   * Without it such tasks end `failed`, reason `secret-env-unavailable`.
   */
  readonly secretEnv?: (job: JobId) => Promise<SecretEnv | undefined>;
  /** Backoff of the secret env read while the store does not answer (default 250 ms doubling to 5 s, 8 tries). */
  readonly secretEnvRetry?: { readonly initialMs: number; readonly maxMs: number; readonly attempts: number };
  /** Namespaces this host gives tasks (see isolation.ts; agents detect them at start); undefined: none. */
  readonly isolation?: HostIsolation;
  /** Health checks (of all tasks) run at once, at most (default 8; see health-checks.ts). */
  readonly maxConcurrentChecks?: number;
}

/** A task's secret env could not be had: the attempt ends failed with this reason. */
class SecretEnvError extends Error {
  readonly retryable = false;
  constructor(
    readonly reason: 'secret-env-unavailable' | 'secret-env-missing',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SecretEnvError';
  }
}

interface Context {
  readonly options: ProcessExecutorOptions;
  readonly tasksRoot: string;
  readonly supervisorPath: string;
  readonly logCapBytes: number;
  /** The agent's work-dir bound, before a job lowers its byte limit. */
  readonly disk: DiskBound;
  /** Set with `taskUids`: who holds which uid. */
  readonly uids: TaskUidPool | undefined;
  readonly killGraceMs: number;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
  /** Starts supervisors without forking the agent; undefined: `child_process.spawn` each. */
  readonly launcher: SupervisorLauncher | undefined;
  /** Bounds the health checks running at once over all attempts. */
  readonly checkSlots: CheckSlots;
}

/** Runs task attempts as supervised processes, in cgroups when a driver is given. */
export class ProcessExecutor implements Executor {
  private readonly context: Context;
  private readonly live = new Set<ProcessAttempt>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: ProcessExecutorOptions) {
    const supervisorPath = options.supervisorPath ?? defaultSupervisorPath();
    const launcherPath = options.useLauncher === false ? undefined : launcherPathFor(supervisorPath);
    this.context = {
      options,
      tasksRoot: tasksRoot(options.dataDir),
      supervisorPath,
      launcher: launcherPath === undefined ? undefined : new SupervisorLauncher(launcherPath, { PATH: DEFAULT_TASK_PATH }),
      checkSlots: new CheckSlots(options.maxConcurrentChecks ?? DEFAULT_MAX_CONCURRENT_CHECKS),
      logCapBytes: options.logCapBytes ?? DEFAULT_LOG_CAP_BYTES,
      disk: { limitBytes: options.diskLimitBytes ?? DEFAULT_DISK_LIMIT_BYTES, maxEntries: options.diskMaxEntries ?? DEFAULT_DISK_MAX_ENTRIES, checkIntervalMs: options.diskCheckIntervalMs ?? DEFAULT_DISK_CHECK_MS },
      uids: options.taskUids === undefined ? undefined : new TaskUidPool(options.taskUids),
      killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      pollIntervalMs: options.pollIntervalMs ?? 250,
      logger: (options.logger ?? pino({ level: 'silent' })).child({ component: 'task-runner', machineId: options.machineId }),
    };
  }

  /**
   * Creates the data directories (0755) and checks that the task user can reach them. Call
   * before `recover`/`start`.
   */
  async init(): Promise<void> {
    await mkdir(this.context.options.dataDir, { recursive: true, mode: 0o755 });
    await mkdir(this.context.tasksRoot, { recursive: true, mode: 0o755 });
    const range = this.context.options.taskUids;
    // Any uid of the range stands for all of them: none owns the data directories.
    const user = range !== undefined ? { name: `uid ${range.first}`, uid: range.first, gid: range.first } : this.context.options.taskUser;
    if (user !== undefined) checkTraversable(this.context.tasksRoot, user);
  }

  start(task: Task, job: Job): TaskAttempt {
    const attempt = new ProcessAttempt(this.context, identityOf(task, this.context.options.machineId));
    this.track(attempt);
    void attempt.runFresh(task, job);
    const { logger, options } = this.context;
    removeOldAttempts(this.context.tasksRoot, task.id, task.attempt, options.keepAttempts ?? DEFAULT_KEEP_ATTEMPTS, logger).catch((error: unknown) => logger.warn({ err: error, taskId: task.id }, 'could not remove old attempt directories'));
    return attempt;
  }

  async recover(snapshot: CellSnapshot): Promise<TaskAttempt[]> {
    const { logger, options } = this.context;
    const adopted: ProcessAttempt[] = [];
    const seen = new Set<string>();
    const names = await readdir(this.context.tasksRoot).catch(() => [] as string[]);
    // Supervisors by the directory on their command line, read from /proc once if needed
    // (supervisor-processes.ts: the process table, not a file, says which supervisor runs).
    let byDir: Map<string, number> | undefined;
    for (const name of names) {
      if (!isTaskInstanceName(name)) {
        logger.warn({ entry: name }, 'unexpected entry in the tasks directory; left alone');
        continue;
      }
      seen.add(name);
      const dir = insideRoot(this.context.tasksRoot, name);
      let meta: TaskMeta | undefined;
      try {
        meta = readJson<TaskMeta>(join(dir, TASK_FILES.meta));
      } catch {
        meta = undefined;
      }
      if (meta !== undefined && meta.machineId !== options.machineId) {
        logger.warn({ entry: name, owner: meta.machineId }, 'task directory of another machine; left alone');
        continue;
      }
      if (meta === undefined || !sameName(meta, name)) {
        await this.discard(dir, name);
        continue;
      }
      const log = logger.child({ taskId: meta.taskId, attempt: meta.attempt });
      if (existsSync(join(dir, TASK_FILES.reported))) {
        await this.removeCgroup(name, log);
        continue;
      }
      const record = snapshot.task(meta.taskId as TaskId);
      const atClaim = record !== undefined && record.claimId === meta.claimId;
      const exit = safeRead<ExitRecord>(join(dir, TASK_FILES.exit));
      if (atClaim && isTerminal(record.state) && exit !== undefined && record.finishedAtMs === exit.finishedAtMs) {
        // Our report landed before the previous agent died, but was not marked: the record
        // carries this exit's own finish time (a preemption's time would differ). Not twice.
        await this.removeCgroup(name, log);
        await writeJsonVolatileAsync(join(dir, TASK_FILES.reported), { state: record.state, outcome: 'already-reported', atMs: Date.now() } satisfies ReportedRecord);
        const work = insideRoot(dir, TASK_FILES.work);
        if (meta.user !== undefined && meta.uid !== undefined && meta.gid !== undefined) await removeAsUser(work, { name: meta.user, uid: meta.uid, gid: meta.gid }).catch((error: unknown) => log.warn({ err: error }, 'could not remove the work dir'));
        else await rm(work, { recursive: true, force: true });
        continue;
      }
      const started = safeRead<StartedRecord>(join(dir, TASK_FILES.started));
      const exited = exit !== undefined;
      const supervisorPid = (byDir ??= supervisorsByDir(this.context.tasksRoot)).get(dir);
      const alive = supervisorPid !== undefined;
      if (started === undefined && !exited && !alive) {
        // It never got to run user code: start from scratch if it is still placed.
        log.info('task attempt never started; removing it');
        await this.discard(dir, name);
        continue;
      }
      log.info({ exited, supervisorAlive: alive, state: record?.state }, exited ? 'reporting task that ended while the agent was away' : 'adopting running task');
      // Before any start: the uid stays this attempt's until its work dir is gone.
      if (meta.uid !== undefined && meta.user === undefined && this.context.uids !== undefined && !this.context.uids.mark(name, meta.uid)) {
        log.warn({ uid: meta.uid }, 'adopted task runs as a uid outside --task-uids or held by another attempt');
      }
      const attempt = new ProcessAttempt(this.context, {
        taskId: meta.taskId as TaskId,
        jobId: meta.jobId as JobId,
        index: meta.index,
        attempt: meta.attempt,
        claimId: meta.claimId,
        machineId: options.machineId,
      });
      this.track(attempt);
      void attempt.runAdopted(meta, { started, supervisorPid }, atClaim ? record : undefined);
      adopted.push(attempt);
    }
    // Cgroups with no task directory: a previous agent died between creating one and its
    // directory, or the directory was deleted. Nothing can report them: kill and remove.
    for (const name of (await options.cgroups?.list()) ?? []) {
      if (!isTaskInstanceName(name) || seen.has(name)) continue;
      logger.warn({ cgroup: name }, 'removing a task cgroup with no task directory');
      await this.removeCgroup(name, logger);
    }
    this.startRetention();
    return adopted;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const attempt of this.live) attempt.detach();
    // EOF to the launcher: it exits; the supervisors it started keep running, for adoption.
    this.context.launcher?.close();
    // Nothing left to adopt: leave no empty parent cgroup behind (a busy one stays).
    if (this.live.size === 0) await this.context.options.cgroups?.removeParentIfEmpty().catch((error: unknown) => this.context.logger.warn({ err: error }, 'could not remove the empty parent cgroup'));
  }

  /** Removes finished tasks' directories once their retention has passed: now, then periodically. */
  private startRetention(): void {
    const retention = this.context.options.taskRetentionMs ?? DEFAULT_TASK_RETENTION_MS;
    if (retention <= 0 || this.sweeper !== undefined) return;
    const sweep = (): void => {
      removeExpiredTasks(this.context.tasksRoot, retention, Date.now(), this.context.logger).catch((error: unknown) => this.context.logger.warn({ err: error }, 'task retention sweep failed'));
    };
    sweep();
    this.sweeper = setInterval(sweep, sweepIntervalMs(retention));
    this.sweeper.unref();
  }

  private track(attempt: ProcessAttempt): void {
    this.live.add(attempt);
    void attempt.done.then(() => this.live.delete(attempt));
  }

  private async removeCgroup(name: string, log: Logger): Promise<void> {
    const cgroups = this.context.options.cgroups;
    if (cgroups === undefined) return;
    try {
      const cgroup = cgroups.open(name);
      if (!(await cgroup.exists())) return;
      await cgroup.killAll();
      await cgroup.remove();
    } catch (error) {
      log.warn({ err: error, cgroup: name }, 'could not remove a task cgroup');
    }
  }

  private async discard(dir: string, name: string): Promise<void> {
    await this.removeCgroup(name, this.context.logger);
    await rm(dir, { recursive: true, force: true });
  }
}

interface Identity {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly index: number;
  readonly attempt: number;
  readonly claimId: string;
  readonly machineId: MachineId;
}

function identityOf(task: Task, machineId: MachineId): Identity {
  return { taskId: task.id, jobId: task.jobId, index: task.index, attempt: task.attempt, claimId: task.claimId, machineId };
}

function sameName(meta: TaskMeta, name: string): boolean {
  try {
    return taskInstanceName(meta.taskId, meta.attempt) === name && parseTaskId(meta.taskId)?.jobId === meta.jobId;
  } catch {
    return false;
  }
}

/**
 * Removes `dir` if it is an empty directory (the usual work dir of a finished task: one rmdir,
 * not the lstat, readdir and rmdir of a recursive removal); false when it is not (non-empty,
 * gone, a file), for a full removal. rmdir never follows a link. Off the event loop: freeing an
 * inode waits for ext4's journal, milliseconds while tasks and etcd fsync.
 */
async function removedIfEmpty(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch {
    return false;
  }
}

function safeRead<T>(path: string): T | undefined {
  try {
    return readJson<T>(path);
  } catch {
    return undefined;
  }
}

/** The supervisors of attempts under `tasksRoot`, by attempt directory (supervisor-processes.ts). */
function supervisorsByDir(tasksRoot: string): Map<string, number> {
  return supervisorsUnder(`${resolve(tasksRoot)}/`);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 1) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

class ProcessAttempt implements TaskAttempt {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly claimId: string;
  readonly machineId: MachineId;
  readonly ended: Promise<void>;
  readonly done: Promise<void>;
  private resolveEnded!: () => void;
  private resolveDone!: () => void;
  private readonly supervisorGone: Promise<void>;
  private resolveSupervisorGone!: () => void;
  private readonly log: Logger;
  private readonly name: string;
  private readonly dir: string;
  private cgroup: TaskCgroup | undefined;
  private pid: number | undefined;
  private stopRequest: { readonly reason: string | undefined; readonly graceMs: number } | undefined;
  private terminating: Promise<void> | undefined;
  private detached = false;
  private poll: NodeJS.Timeout | undefined;
  /** The job's named user, when it runs as one (its work dir is then removed as that user). */
  private namedUser: TaskUser | undefined;
  /** The uid/gid the task runs as (its command check too); undefined: the agent's own. */
  private runAs: { readonly uid: number; readonly gid: number } | undefined;
  /** The spec's health check and a command check's environment (from meta.json when adopted). */
  private healthSpec: { readonly check: HealthCheck; readonly env: Readonly<Record<string, string>> } | undefined;
  private health: HealthWatch | undefined;
  /** When the health check's threshold stopped the task (wall clock). */
  private healthStopAtMs: number | undefined;
  /** Why the supervisor could not be run (the launcher's or spawn's error), for the record's message. */
  private supervisorError: string | undefined;

  constructor(
    private readonly context: Context,
    private readonly id: Identity,
  ) {
    this.taskId = id.taskId;
    this.jobId = id.jobId;
    this.claimId = id.claimId;
    this.machineId = id.machineId;
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.supervisorGone = new Promise((resolve) => (this.resolveSupervisorGone = resolve));
    this.log = context.logger.child({ taskId: id.taskId, attempt: id.attempt });
    // May throw UnsafePathError: the caller's runFresh/recover turn that into an outcome.
    this.name = safeName(id);
    this.dir = this.name === '' ? '' : insideRoot(context.tasksRoot, this.name);
  }

  /** Stops the task: TERM, `graceMs` (default the agent's kill grace), then KILL to the whole cgroup. */
  stop(reason?: string, graceMs?: number): Promise<void> {
    if (this.stopRequest === undefined) {
      this.stopRequest = { reason, graceMs: graceMs ?? this.context.killGraceMs };
      this.health?.stop();
      if (this.pid !== undefined) void this.terminate();
    }
    return this.ended;
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    if (this.poll !== undefined) clearInterval(this.poll);
    this.health?.stop();
    this.resolveSupervisorGone();
    this.resolveEnded();
    this.resolveDone();
  }

  /** A new attempt: prepare, spawn, watch, report. Never rejects. */
  async runFresh(task: Task, job: Job): Promise<void> {
    if (this.name === '') {
      this.log.error('task id is not safe to use as a name; refusing to run it');
      return this.conclude({ state: 'failed', reason: 'invalid-task-id', finishedAtMs: Date.now() });
    }
    try {
      const { command, env } = await this.prepare(task, job);
      if (this.stopRequest !== undefined) {
        await this.cgroup?.remove();
        return await this.conclude({ state: 'killed', ...this.stopReasonField(), finishedAtMs: Date.now() });
      }
      this.spawnSupervisor(command, env);
    } catch (error) {
      this.log.error({ err: error }, 'could not start task');
      await this.cgroup?.remove().catch(() => undefined);
      const reason = error instanceof SecretEnvError || error instanceof IsolationUnavailableError || error instanceof TaskUserRefusedError ? error.reason : 'start-failed';
      return this.conclude({ state: 'failed', reason, ...messageField(error instanceof Error ? error.message : String(error)), finishedAtMs: Date.now() });
    }
    await this.waitForStart(task.state === 'placed');
    this.startHealth(undefined);
    await this.supervisorGone;
    await this.complete();
  }

  /** An attempt found on disk after a restart. Never rejects. */
  async runAdopted(meta: TaskMeta, found: { started: StartedRecord | undefined; supervisorPid: number | undefined }, record: Task | undefined): Promise<void> {
    const cgroups = this.context.options.cgroups;
    this.cgroup = meta.cgroup !== '' && cgroups !== undefined ? cgroups.open(meta.cgroup) : undefined;
    if (meta.user !== undefined && meta.uid !== undefined && meta.gid !== undefined) this.namedUser = { name: meta.user, uid: meta.uid, gid: meta.gid };
    if (meta.uid !== undefined && meta.gid !== undefined) this.runAs = { uid: meta.uid, gid: meta.gid };
    if (meta.healthCheck !== undefined) this.healthSpec = { check: meta.healthCheck, env: meta.healthEnv ?? {} };
    if (found.supervisorPid === undefined) this.resolveSupervisorGone();
    else this.watchByPolling(found.supervisorPid);
    await this.waitForStart(record?.state === 'placed');
    this.startHealth(record?.health);
    await this.supervisorGone;
    await this.complete();
  }

  /**
   * For a supervisor that is not our child (adopted) or whose launcher died: no exit event, so
   * its files and its pid are watched. `pid` undefined: the launcher died before naming it; it
   * is looked up in /proc by its directory.
   */
  private watchByPolling(pid: number | undefined): void {
    if (this.detached || this.poll !== undefined) return;
    this.poll = setInterval(() => {
      if (this.detached) return;
      const alive = pid !== undefined ? supervisorAlive(pid, this.dir) : supervisorsByDir(this.context.tasksRoot).has(this.dir);
      if (existsSync(join(this.dir, TASK_FILES.exit)) || !alive) {
        clearInterval(this.poll);
        this.resolveSupervisorGone();
      }
    }, this.context.pollIntervalMs);
  }

  /** Makes the attempt's directory and cgroup; returns what the supervisor runs and the environment for its stdin. */
  private async prepare(task: Task, job: Job): Promise<{ command: SupervisorCommand; env: Buffer }> {
    const { options } = this.context;
    const spec = job.spec.task;
    if (spec.command.length === 0) throw new Error('the task has no command');
    // Before anything is made on disk: a job asking isolation this machine lacks does not start.
    const isolation = taskIsolation(options.isolation, spec.network);
    // Before anything is made on disk: a user the agent does not allow runs nothing.
    if (spec.user !== undefined) {
      try {
        this.namedUser = namedTaskUser(spec.user, options.allowUsers ?? [], options.passwdPath);
      } catch (error) {
        if (error instanceof TaskUserRefusedError) this.log.error({ user: error.user, flag: '--allow-users', allowed: options.allowUsers ?? [], reason: error.reason }, 'refusing to run a task as the user its job names');
        throw error;
      }
    }
    // Before anything is made on disk: a task whose secrets cannot be had does not start.
    const secrets = await this.readSecretEnv(job);
    // A directory of this attempt left by a previous agent that never ran it (recover removes
    // those too; this covers a crash in between): start clean.
    // Synchronous, as the work dir below: a few metadata syscalls in the page cache, where each
    // through fs/promises would queue behind other tasks' fsyncs on libuv's four threads.
    // (existsSync first: rmSync's `force` still builds and drops an ENOENT error per start.)
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { mode: 0o755 });
    const user = this.namedUser ?? (await this.taskUser());
    if (user !== undefined) this.runAs = { uid: user.uid, gid: user.gid };
    if (spec.healthCheck !== undefined) {
      // The task's environment without its secret values: a check's command line and env may end up in logs.
      const healthEnv = { PATH: DEFAULT_TASK_PATH, HOME: this.file('work'), ...spec.env, OMEGA_JOB_ID: task.jobId, OMEGA_TASK_INDEX: String(task.index), OMEGA_TASK_ID: task.id, OMEGA_TASK_ATTEMPT: String(task.attempt) };
      this.healthSpec = { check: spec.healthCheck, env: healthEnv };
    }
    const meta: TaskMeta = { ...this.id, cgroup: options.cgroups === undefined ? '' : this.name, createdAtMs: Date.now(), ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }), ...(this.namedUser === undefined ? {} : { user: this.namedUser.name }), ...(this.healthSpec === undefined ? {} : { healthCheck: this.healthSpec.check, healthEnv: this.healthSpec.env }) };
    // Not fsynced here: the supervisor syncs it before it writes started.json, so it is on disk
    // before any user code runs (see task-files.ts: what a restart after a crash needs) and no
    // start waits for the disk on libuv's threads.
    writeJsonVolatile(this.file('meta'), meta);
    const work = this.file('work');
    mkdirSync(work, { mode: 0o700 });
    if (user !== undefined) chownSync(work, user.uid, user.gid);
    if (options.cgroups !== undefined) this.cgroup = await options.cgroups.create(this.name, cgroupLimits({ ...task.resources, memoryBytes: taskMemoryLimit(task.resources.memoryBytes) }, spec.pidsLimit));
    const env: SupervisorEnv = {
      PATH: DEFAULT_TASK_PATH,
      HOME: work,
      ...spec.env,
      ...secrets,
      OMEGA_JOB_ID: task.jobId,
      OMEGA_TASK_INDEX: String(task.index),
      OMEGA_TASK_ID: task.id,
      OMEGA_TASK_ATTEMPT: String(task.attempt),
    };
    const disk = taskDiskBound(spec.diskLimitBytes, this.context.disk);
    const command: SupervisorCommand = {
      dir: this.dir,
      argv: [...spec.command],
      cwd: work,
      ...(user === undefined ? {} : { uid: user.uid, gid: user.gid }),
      procsFiles: this.cgroup?.procsFiles ?? [],
      logCapBytes: taskLogCap(spec.logLimitBytes, this.context.logCapBytes),
      ...(isolation === undefined ? {} : { isolation }),
      ...(disk === undefined ? {} : { disk }),
    };
    const encoded = encodeSupervisorEnv(env);
    if (encoded.length > MAX_SUPERVISOR_ENV_BYTES) throw new Error(`the task's environment is ${encoded.length} bytes, more than the supervisor reads (${MAX_SUPERVISOR_ENV_BYTES})`);
    return { command, env: encoded };
  }

  /**
   * The job's secret env values, when its spec names any: read from the cell (retried with
   * backoff while the store does not answer, given up when the attempt is stopped) and checked
   * to hold every name. Throws {@link SecretEnvError}. Logs names counts, never values.
   */
  private async readSecretEnv(job: Job): Promise<SecretEnv> {
    const names = job.spec.task.secretEnvNames ?? [];
    if (names.length === 0) return {};
    const read = this.context.options.secretEnv;
    if (read === undefined) throw new SecretEnvError('secret-env-unavailable', 'this agent was given no way to read secret env values');
    const retry = this.context.options.secretEnvRetry ?? { initialMs: 250, maxMs: 5_000, attempts: 8 };
    let delay = retry.initialMs;
    for (let attempt = 1; ; attempt++) {
      let values: SecretEnv | undefined;
      try {
        values = await read(job.id);
      } catch (error) {
        if (attempt >= retry.attempts || this.stopRequest !== undefined) throw new SecretEnvError('secret-env-unavailable', `could not read the job's secret env: ${(error as Error).message}`, { cause: error });
        if (attempt === 1) this.log.warn({ err: error }, 'could not read the secret env; retrying');
        await sleep(delay);
        delay = Math.min(retry.maxMs, delay * 2);
        continue;
      }
      const missing = names.filter((name) => values === undefined || !Object.hasOwn(values, name));
      if (missing.length > 0) throw new SecretEnvError('secret-env-missing', `the job's secret env lacks ${missing.length} of its ${names.length} name(s): ${missing.join(', ')}`);
      // Only the names the spec lists, so the task's environment is exactly what the job says.
      return Object.fromEntries(names.map((name) => [name, (values as SecretEnv)[name] as string]));
    }
  }

  private spawnSupervisor(command: SupervisorCommand, env: Buffer): void {
    const launcher = this.context.launcher;
    if (launcher === undefined) return this.spawnDirectly(command, env);
    let pid: number | undefined;
    launcher
      .launch({ binary: this.context.supervisorPath, args: supervisorArgs(command), stdin: env }, (end) => {
        if (end === 'exited') this.resolveSupervisorGone();
        else this.watchByPolling(pid);
      })
      .then(
        (launched) => {
          // A restarted agent finds the supervisor in /proc by its directory (see recover).
          pid = launched;
        },
        (error: unknown) => {
          if (error instanceof LaunchFailedError) {
            this.log.error({ err: error }, 'could not run the task supervisor');
            this.supervisorError = error.message;
            this.resolveSupervisorGone();
          } else this.watchByPolling(undefined);
        },
      );
  }

  private spawnDirectly(command: SupervisorCommand, env: Buffer): void {
    const child = spawn(this.context.supervisorPath, supervisorArgs(command), {
      // Its own session: the supervisor outlives the agent (and a Ctrl-C in the agent's terminal).
      detached: true,
      // Its stderr only until it knows its task dir; then its errors go to supervisor.log.
      stdio: ['pipe', 'ignore', 'inherit'],
      env: { PATH: DEFAULT_TASK_PATH },
    });
    // The environment goes through a pipe, never a file: secret values must not persist. If
    // the supervisor is gone before reading it, the write fails quietly and so does the start.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(env);
    child.once('exit', () => this.resolveSupervisorGone());
    child.once('error', (error) => {
      this.log.error({ err: error }, 'could not run the task supervisor');
      this.supervisorError = error.message;
      this.resolveSupervisorGone();
    });
    child.unref();
  }

  /**
   * Once the task runs: its health check, if its spec has one, until it stops or ends. `initial`
   * is what the record says already (an adopted attempt: nothing is rewritten while unchanged).
   */
  private startHealth(initial: HealthState | undefined): void {
    const spec = this.healthSpec;
    if (spec === undefined || this.pid === undefined || this.detached || this.stopRequest !== undefined) return;
    const started = safeRead<StartedRecord>(this.file('started'));
    this.health = watchAttemptHealth({
      check: spec.check,
      env: spec.env,
      cwd: this.file('work'),
      ...(this.runAs ?? {}),
      procsFiles: this.cgroup?.procsFiles ?? [],
      pid: () => this.pid,
      startedAtMs: started?.startedAtMs ?? Date.now(),
      ...(initial === undefined ? {} : { initial }),
      report: (patch) => void this.send(patch),
      onThreshold: () => {
        this.healthStopAtMs = Date.now();
        void this.stop(HEALTH_CHECK_FAILED);
      },
      slots: this.context.checkSlots,
      logger: this.log,
    });
    // Ended by itself: no check may run against a pid that is no longer the task's.
    void this.supervisorGone.then(() => this.health?.stop());
  }

  /** Waits for started.json (or the supervisor's end); reports `running` if the record is placed. */
  private async waitForStart(reportRunning: boolean): Promise<void> {
    let gone = false;
    void this.supervisorGone.then(() => (gone = true));
    for (;;) {
      if (this.detached) return;
      // existsSync first: a read of a missing file throws, and this is polled every 10 ms.
      const path = this.file('started');
      const started = existsSync(path) ? safeRead<StartedRecord>(path) : undefined;
      if (started !== undefined) {
        this.pid = started.pid;
        if (reportRunning) {
          this.log.info({ pid: started.pid }, 'task running');
          void this.send({ state: 'running', pid: started.pid, startedAtMs: started.startedAtMs });
        }
        if (this.stopRequest !== undefined) void this.terminate();
        return;
      }
      if (gone) return;
      await Promise.race([sleep(10), this.supervisorGone]);
    }
  }

  /** TERM to every process, the grace period, then KILL to all of them. */
  private terminate(): Promise<void> {
    this.terminating ??= (async () => {
      const grace = this.stopRequest?.graceMs ?? this.context.killGraceMs;
      const cgroup = this.cgroup;
      if (cgroup !== undefined) {
        await cgroup.signal('SIGTERM');
        const deadline = Date.now() + grace;
        while (Date.now() < deadline && (await cgroup.pids()).length > 0) await sleep(50);
        await cgroup.killAll();
        // An isolated task joins its cgroup a moment after started.json (its namespace init forks
        // it after the supervisor's go): a stop in between found the cgroup empty, and the task
        // would run on. Until the supervisor is gone, whatever turns up in the cgroup is killed too.
        let gone = false;
        void this.supervisorGone.then(() => (gone = true));
        for (let i = 0; i < 600 && !gone && !this.detached; i++) {
          await Promise.race([this.supervisorGone, sleep(100)]);
          if (!gone && !this.detached) await cgroup.killAll();
        }
      } else if (this.pid !== undefined) {
        signalGroup(this.pid, 'SIGTERM');
        await Promise.race([this.supervisorGone, sleep(grace)]);
        signalGroup(this.pid, 'SIGKILL');
      }
    })().catch((error: unknown) => this.log.error({ err: error }, 'could not kill the task'));
    return this.terminating;
  }

  /** After the user process ended: clean up, read what the cgroup counted, report. */
  private async complete(): Promise<void> {
    if (this.detached) return;
    const exit = safeRead<ExitRecord>(this.file('exit'));
    if (exit?.error !== undefined) this.log.warn({ error: exit.error }, 'task could not start');
    this.health?.stop();
    if (exit?.reason !== undefined) this.log.warn({ reason: exit.reason, message: exit.reasonMessage }, 'the supervisor killed the task');
    if (this.terminating !== undefined) await this.terminating;
    let usage: CgroupUsage | undefined;
    if (this.cgroup !== undefined) {
      try {
        // The task is over when its main process is: whatever it left behind goes too.
        await this.cgroup.killAll();
        usage = await this.cgroup.usage();
        await this.cgroup.remove();
      } catch (error) {
        this.log.warn({ err: error }, 'could not clean up the task cgroup');
      }
    } else if (this.pid !== undefined) {
      signalGroup(this.pid, 'SIGKILL');
    }
    await this.conclude(this.outcome(exit, usage));
  }

  private outcome(exit: ExitRecord | undefined, usage: CgroupUsage | undefined): TaskPatch {
    const ended: TaskPatch = {
      ...(exit?.exitCode !== null && exit?.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      signal: exit?.signal ?? '',
      finishedAtMs: exit?.finishedAtMs ?? Date.now(),
      ...(usage === undefined ? {} : { cpuSeconds: Math.round(usage.cpuSeconds * 1e6) / 1e6, peakMemoryBytes: usage.peakMemoryBytes }),
    };
    // Stopped for failing its health check: a failure, which the job's restart policy replaces.
    // A task that ended by itself before that stop (its last check raced its exit) ends as it did.
    const endedFirst = this.stopRequest?.reason === HEALTH_CHECK_FAILED && exit !== undefined && this.healthStopAtMs !== undefined && exit.finishedAtMs < this.healthStopAtMs;
    if (this.stopRequest?.reason === HEALTH_CHECK_FAILED && !endedFirst) return { state: 'failed', reason: HEALTH_CHECK_FAILED, ...ended };
    if (this.stopRequest !== undefined && !endedFirst) return { state: 'killed', ...this.stopReasonField(), ...ended };
    if (exit === undefined) return { state: 'failed', reason: 'exit-status-lost', ...messageField(this.supervisorError === undefined ? undefined : `could not run the task supervisor: ${this.supervisorError}`), ...ended };
    // The supervisor's own words: what failed before the task's program ran (a failed exec too).
    if (exit.error !== undefined) return { state: 'failed', reason: 'start-failed', ...messageField(exit.error), ...ended };
    // The supervisor killed it for a bound it enforces (its work dir's disk use): what it measured.
    if (exit.reason === DISK_EXCEEDED) return { state: 'failed', reason: DISK_EXCEEDED, ...messageField(exit.reasonMessage), ...ended };
    if (exit.exitCode === 0) return { state: 'succeeded', ...ended };
    // From the kernel's count, not guessed from SIGKILL: only the cgroup knows why it was killed.
    if (usage !== undefined && usage.oomKills > 0) return { state: 'failed', reason: 'oom-killed', ...ended };
    return { state: 'failed', reason: exit.signal !== null ? 'signaled' : 'nonzero-exit', ...ended };
  }

  private stopReasonField(): { reason?: string } {
    const reason = this.stopRequest?.reason;
    return reason === undefined ? {} : { reason };
  }

  /**
   * Who this attempt runs as: its own uid from `--task-uids` (taken here, given back in
   * {@link conclude}), else the configured task user, else undefined (the agent's own user).
   */
  private async taskUser(): Promise<TaskUser | undefined> {
    const pool = this.context.uids;
    if (pool === undefined) return this.context.options.taskUser;
    const uid = await pool.takeSoon(this.name, UID_WAIT_MS);
    if (uid === undefined) throw new Error(`every uid of --task-uids ${pool.range.first}-${pool.range.last} is in use by a task on this machine`);
    return { name: `uid ${uid}`, uid, gid: uid };
  }

  /** Ends the attempt: the terminal report, then the marker that nothing is left to do. */
  private async conclude(patch: TaskPatch): Promise<void> {
    this.resolveEnded();
    // Its uid comes back below, after the report and the work dir's removal: a start meanwhile
    // that finds the range used up waits for it (TaskUidPool.takeSoon).
    this.context.uids?.ended(this.name);
    this.log.info({ state: patch.state, reason: patch.reason, exitCode: patch.exitCode, signal: patch.signal }, 'task ended');
    const outcome = await this.send(patch);
    if (outcome !== undefined && this.dir !== '') {
      try {
        // No fsync: lost in a crash, it is rebuilt by recovery (see task-files.ts).
        await writeJsonVolatileAsync(this.file('reported'), { state: patch.state ?? '', outcome, atMs: Date.now() } satisfies ReportedRecord);
        // Its processes are gone (killed with the cgroup) and no other process has its uid, so
        // nothing can swap a link into the tree while it is removed. A named user's uid may be
        // other live tasks' too: removed as that user instead.
        if (this.namedUser !== undefined) await removeAsUser(this.file('work'), this.namedUser);
        else if (!(await removedIfEmpty(this.file('work')))) await rm(this.file('work'), { recursive: true, force: true });
        this.context.uids?.release(this.name);
      } catch (error) {
        this.context.uids?.stayHeld(this.name);
        this.log.warn({ err: error }, 'could not mark the task reported');
      }
    } else {
      // Not reported (the reporter closed: the agent is stopping): the next agent cleans up.
      this.context.uids?.stayHeld(this.name);
    }
    this.resolveDone();
  }

  /** Reports; resolves with the outcome, or undefined when it could not be written (reporter closed). */
  private send(patch: TaskPatch): Promise<string | undefined> {
    return this.context.options.reporter.report(this.taskId, this.claimId, patch).then(
      (outcome) => outcome,
      (error: unknown) => {
        if (!(error instanceof ReporterClosedError)) this.log.warn({ err: error }, 'task status not written');
        return undefined;
      },
    );
  }

  private file(which: keyof typeof TASK_FILES): string {
    return insideRoot(this.dir, TASK_FILES[which]);
  }
}

/** A record's message from `text` (nothing when there is none to add). */
function messageField(text: string | undefined): { message?: string } {
  const message = text === undefined ? '' : taskMessage(text);
  return message === '' ? {} : { message };
}

function safeName(id: Identity): string {
  try {
    return taskInstanceName(id.taskId, id.attempt);
  } catch {
    return '';
  }
}
