/**
 * The child processes of `omega dev`: started with their output appended to a log file each,
 * restarted with backoff when they die unexpectedly, and stopped in stages (SIGTERM, a grace
 * period, SIGKILL).
 *
 * ```
 *   start(spec) ─► running ──exit, not asked for──► restarting ──backoff (1 s .. 30 s)──► running
 *                     │                                  │
 *                     └──── stop() / beginShutdown() ────┴──► stopped   (no restart after that)
 * ```
 *
 * Each child runs in its own process group (`detached`), so a Ctrl-C on the terminal reaches
 * only `omega dev`, which then stops the children in the order the cell needs (schedulers and
 * API, then agents while etcd still runs, then etcd). Signals go to the whole group, so helpers a
 * child started in its group go with it. Children die with `omega dev` however it dies: through
 * the parent-death signal (see parent-death.ts) when it is killed, and through a synchronous exit
 * handler that SIGKILLs them when it exits while they run.
 *
 * Only a stop initiated here (stop(), beginShutdown()) is expected; any other exit is reported
 * through {@link SupervisionEvents} and, when the child's `restart` is on, followed by a restart.
 * Single-threaded: all callbacks run on the event loop, in the order things happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { PARENT_PID_ENV } from '@omega/cell-state';
import { withParentDeath } from './parent-death.js';
import { DEFAULT_RESTART_BACKOFF, RestartBackoff, type BackoffSettings } from './restart-backoff.js';

export interface ChildSpec {
  /** Short name: `api`, `agent-0`, `batch-1`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Where stdout and stderr go (appended). */
  readonly logFile: string;
  /** What the process is, for the table `omega dev` prints. */
  readonly what: string;
  /** Where it serves Prometheus metrics (`http://127.0.0.1:PORT/metrics`), if it does. */
  readonly metricsUrl?: string;
}

/** How one run of a child ended. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** How long that run lasted. */
  readonly upMs: number;
  readonly atMs: number;
}

export type ChildState = 'running' | 'restarting' | 'stopped';

export interface ManagedChild {
  readonly spec: ChildSpec;
  /** The current (or last) run's pid. */
  readonly pid: number;
  readonly state: ChildState;
  readonly running: boolean;
  /** Restarts so far (0 for the first run). */
  readonly restarts: number;
  readonly startedAtMs: number;
  /** The log file's size when the current run started: what it wrote begins there. */
  readonly logOffset: number;
  readonly lastExit: ChildExit | undefined;
  /** Resolves when the current run has exited. */
  readonly exited: Promise<ChildExit>;
  /** Restart it when it dies unexpectedly. May be turned on later (the API, once it is up). */
  restart: boolean;
}

/** What the group tells its owner. Every callback is optional. */
export interface SupervisionEvents {
  /** A child exited without being asked to; `restartInMs` is undefined when it stays down. */
  exited?(child: ManagedChild, exit: ChildExit, restartInMs: number | undefined): void;
  /** A child was started again (its new pid is `child.pid`). */
  restarted?(child: ManagedChild): void;
  /** A restart could not even spawn the command; it is tried again after `retryInMs`. */
  restartFailed?(child: ManagedChild, error: Error, retryInMs: number): void;
  /** Any change of pid, state or restart count (to keep a status file current). */
  changed?(): void;
}

const live = new Set<ChildProcess>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  // 'exit' handlers must be synchronous: a signal is all that can be sent from here.
  process.on('exit', () => {
    for (const child of live) signalGroup(child, 'SIGKILL');
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** One supervised child: its spec, its current run, its restart bookkeeping. */
class Supervised implements ManagedChild {
  process!: ChildProcess;
  /** Held, never written: its write end closing is the child's sign that we died. */
  stdin: Writable | null = null;
  state: ChildState = 'running';
  restarts = 0;
  startedAtMs = 0;
  logOffset = 0;
  lastExit: ChildExit | undefined;
  exited!: Promise<ChildExit>;
  timer: NodeJS.Timeout | undefined;
  readonly backoff: RestartBackoff;

  constructor(
    readonly spec: ChildSpec,
    public restart: boolean,
    backoff: BackoffSettings,
  ) {
    this.backoff = new RestartBackoff(backoff);
  }

  get pid(): number {
    return this.process.pid as number;
  }

  get running(): boolean {
    return this.state === 'running' && this.process.exitCode === null && this.process.signalCode === null;
  }
}

export class ProcessGroup {
  private readonly children: Supervised[] = [];
  private stopping = false;

  constructor(
    private readonly events: SupervisionEvents = {},
    private readonly backoff: BackoffSettings = DEFAULT_RESTART_BACKOFF,
  ) {}

  /**
   * Starts a child (restarted on unexpected exits when `restart`). Throws if it cannot be spawned
   * at all (missing binary); then nothing is kept.
   */
  async start(spec: ChildSpec, options: { restart: boolean } = { restart: true }): Promise<ManagedChild> {
    installExitHandler();
    const child = new Supervised(spec, options.restart, this.backoff);
    await this.run(child);
    this.children.push(child);
    this.events.changed?.();
    return child;
  }

  /** Every child started, in start order. */
  list(): readonly ManagedChild[] {
    return this.children;
  }

  /** From now on exits are expected: no more reports, no more restarts (pending ones are dropped). */
  beginShutdown(): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const child of this.children) {
      clearTimeout(child.timer);
      if (child.state === 'restarting') child.state = 'stopped';
    }
    this.events.changed?.();
  }

  /**
   * Stops the children that `select` picks: SIGTERM to each, then SIGKILL to those still running
   * after `graceMs`. Resolves once all of them have exited. Begins the shutdown (no restarts).
   */
  async stop(select: (child: ManagedChild) => boolean, graceMs: number): Promise<void> {
    this.beginShutdown();
    const chosen = this.children.filter((c) => select(c) && c.running);
    for (const c of chosen) signalGroup(c.process, 'SIGTERM');
    const all = Promise.all(chosen.map((c) => c.exited));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = await Promise.race([all.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
    clearTimeout(timer);
    if (graceOver) {
      for (const c of chosen) if (c.running) signalGroup(c.process, 'SIGKILL');
      await all;
    }
  }

  /** Spawns one run of `child` and wires its exit; resolves once it runs. */
  private async run(child: Supervised): Promise<void> {
    const { spec } = child;
    const fd = openSync(spec.logFile, 'a');
    let proc: ChildProcess;
    try {
      child.logOffset = fstatSync(fd).size;
      const { command, args } = withParentDeath(spec.command, spec.args);
      proc = spawn(command, args, {
        stdio: ['pipe', fd, fd],
        detached: true,
        env: { ...process.env, [PARENT_PID_ENV]: String(process.pid) },
      });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
    await new Promise<void>((resolve, reject) => {
      proc.once('spawn', resolve);
      proc.once('error', reject);
    });
    // The pipe breaks when the child exits: nothing is ever written, so that is not an error.
    proc.stdin?.on('error', () => undefined);
    child.process = proc;
    child.stdin = proc.stdin;
    child.state = 'running';
    child.startedAtMs = Date.now();
    live.add(proc);
    child.exited = new Promise<ChildExit>((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        const now = Date.now();
        const exit: ChildExit = { code, signal, upMs: now - child.startedAtMs, atMs: now };
        child.lastExit = exit;
        this.exitedOnItsOwn(child, exit);
        resolve(exit);
      });
    });
    if (this.stopping) {
      // A restart that raced a shutdown: this run was not wanted.
      signalGroup(proc, 'SIGKILL');
    }
  }

  private exitedOnItsOwn(child: Supervised, exit: ChildExit): void {
    if (this.stopping) {
      child.state = 'stopped';
      this.events.changed?.();
      return;
    }
    if (!child.restart) {
      child.state = 'stopped';
      this.events.exited?.(child, exit, undefined);
      this.events.changed?.();
      return;
    }
    const delay = child.backoff.next(exit.upMs);
    child.state = 'restarting';
    this.events.exited?.(child, exit, delay);
    this.events.changed?.();
    this.scheduleRestart(child, delay);
  }

  private scheduleRestart(child: Supervised, delayMs: number): void {
    child.timer = setTimeout(() => {
      child.timer = undefined;
      if (this.stopping) return;
      this.run(child).then(
        () => {
          if (this.stopping) return;
          child.restarts++;
          this.events.restarted?.(child);
          this.events.changed?.();
        },
        (error: unknown) => {
          if (this.stopping) return;
          const retry = child.backoff.next(0);
          this.events.restartFailed?.(child, error as Error, retry);
          this.scheduleRestart(child, retry);
        },
      );
    }, delayMs);
  }
}

/** What a child's current run has written to its log so far (from `logOffset`). */
export function currentLog(child: ManagedChild): string {
  try {
    return readFileSync(child.spec.logFile).subarray(child.logOffset).toString('utf8');
  } catch {
    return '';
  }
}
