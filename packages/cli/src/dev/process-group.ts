/**
 * The child processes of `omega dev`: started with their output appended to a log file each,
 * watched for unexpected exits, and stopped in stages (SIGTERM, a grace period, SIGKILL).
 *
 * Each child runs in its own process group (`detached`), so a Ctrl-C on the terminal reaches
 * only `omega dev`, which then stops the children in the order the cell needs (schedulers and
 * API, then agents while etcd still runs, then etcd). Signals go to the whole group, so helpers a
 * child started in its group go with it. If `omega dev` itself exits while children run, a
 * synchronous exit handler SIGKILLs them: none is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

export interface ChildSpec {
  /** Short name: `api`, `agent-0`, `batch-1`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Where stdout and stderr go (appended). */
  readonly logFile: string;
  /** What the process is, for the table `omega dev` prints. */
  readonly what: string;
}

export interface ManagedChild {
  readonly spec: ChildSpec;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
}

export type ExitListener = (child: ManagedChild, code: number | null, signal: NodeJS.Signals | null) => void;

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

export class ProcessGroup {
  private readonly children: { process: ChildProcess; managed: ManagedChild }[] = [];
  private stopping = false;

  constructor(private readonly onUnexpectedExit: ExitListener) {}

  /** Starts a child. Throws if it cannot be spawned at all (missing binary). */
  async start(spec: ChildSpec): Promise<ManagedChild> {
    installExitHandler();
    const fd = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(spec.command, [...spec.args], { stdio: ['ignore', fd, fd], detached: true });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    live.add(child);
    let running = true;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => {
        running = false;
        live.delete(child);
        resolve({ code, signal });
      });
    });
    const managed: ManagedChild = {
      spec,
      pid: child.pid as number,
      exited,
      get running() {
        return running;
      },
    };
    void exited.then(({ code, signal }) => {
      if (!this.stopping) this.onUnexpectedExit(managed, code, signal);
    });
    this.children.push({ process: child, managed });
    return managed;
  }

  /** Every child started, in start order. */
  list(): readonly ManagedChild[] {
    return this.children.map((c) => c.managed);
  }

  /** From now on exits are expected: no more reports. */
  beginShutdown(): void {
    this.stopping = true;
  }

  /**
   * Stops the children that `select` picks: SIGTERM to each, then SIGKILL to those still running
   * after `graceMs`. Resolves once all of them have exited.
   */
  async stop(select: (child: ManagedChild) => boolean, graceMs: number): Promise<void> {
    this.beginShutdown();
    const chosen = this.children.filter((c) => select(c.managed) && c.managed.running);
    for (const c of chosen) signalGroup(c.process, 'SIGTERM');
    const all = Promise.all(chosen.map((c) => c.managed.exited));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = await Promise.race([all.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
    clearTimeout(timer);
    if (graceOver) {
      for (const c of chosen) if (c.managed.running) signalGroup(c.process, 'SIGKILL');
      await all;
    }
  }
}
