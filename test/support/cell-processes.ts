/**
 * The processes of a cell under test, each one a {@link CellProcess} that the test supervises:
 * it can be SIGKILLed and restarted with the same command line (as a supervisor would), frozen
 * with SIGSTOP and let go with SIGCONT, and it remembers every exit the test did not cause, with
 * its log tail, so "no process exited for good" can be checked at the end.
 *
 * Every process writes stdout and stderr to `<logDir>/<name>.log` (appended across restarts,
 * one marker line per start), is spawned so that the kernel kills it when the test runner dies
 * (`dieWithParent`), and is stopped by {@link stopCellProcesses} (call it in afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { dieWithParent } from '@omega/cell-state';

/** An exit that the test did not ask for. */
export interface UnexpectedExit {
  readonly name: string;
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines of its log when it exited. */
  readonly tail: string;
}

export interface CellProcessOptions {
  readonly name: string;
  /** A built entry point (`packages/<x>/dist/main.js`). */
  readonly script: string;
  readonly args: readonly string[];
  /** A line of output that says it is up; matched against the output of the current run only. */
  readonly ready: RegExp;
  readonly logDir: string;
}

const all = new Set<CellProcess>();
const MAX_READY_BUFFER = 1 << 20;

/** One supervised process. Not safe for overlapping calls of `kill`/`restart` on the same instance. */
export class CellProcess {
  readonly name: string;
  readonly logFile: string;
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** How many times it was started (1 after the first start). */
  starts = 0;
  private child: ChildProcess | undefined;
  private log: WriteStream;
  private expectExit = false;
  private stopped = false;
  private readyMatch: RegExpExecArray | undefined;

  constructor(private readonly options: CellProcessOptions) {
    this.name = options.name;
    this.logFile = join(options.logDir, `${options.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
    all.add(this);
  }

  /** The current process id; undefined while it is down. */
  get pid(): number | undefined {
    return this.isRunning() ? this.child?.pid : undefined;
  }

  /** Its process exists (a SIGSTOPped process still does). */
  isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The match of `ready` in the current run's output, once seen. */
  get ready(): RegExpExecArray | undefined {
    return this.readyMatch;
  }

  /**
   * Starts it. With `waitReady` (default true) resolves once `ready` is printed and rejects with
   * the log tail if it exits first or `timeoutMs` passes; without, resolves once spawned.
   */
  async start(options: { waitReady?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (!existsSync(this.options.script)) throw new Error(`${this.options.script} is missing: run \`npx tsc -b\` first`);
    if (this.isRunning()) throw new Error(`${this.name} is already running`);
    this.stopped = false;
    this.expectExit = false;
    this.readyMatch = undefined;
    this.starts++;
    const command = dieWithParent(process.execPath, [this.options.script, ...this.options.args]);
    const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.log.write(`----- ${new Date().toISOString()} start #${this.starts} pid ${child.pid} -----\n`);
    let text = '';
    const onData = (chunk: Buffer): void => {
      this.log.write(chunk);
      if (this.readyMatch !== undefined || text.length > MAX_READY_BUFFER) return;
      text += chunk.toString();
      const m = this.options.ready.exec(text);
      if (m !== null) this.readyMatch = m;
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      this.log.write(`----- ${new Date().toISOString()} pid ${child.pid} exited (${code ?? signal}) -----\n`);
      if (this.expectExit || this.stopped) return;
      // Give the log stream a moment: the tail is read from the file.
      setTimeout(() => this.unexpectedExits.push({ name: this.name, pid: child.pid as number, code, signal, tail: this.tail(30) }), 100);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    if (options.waitReady === false) return;
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    while (this.readyMatch === undefined) {
      if (!this.isRunning()) throw new Error(`${this.name} exited (${child.exitCode ?? child.signalCode}) before it was ready; its log:\n${this.tail(40)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${this.options.ready} in time; its log:\n${this.tail(40)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends SIGSTOP or SIGCONT (ignored while it is down). */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.isRunning()) this.child?.kill(signal);
  }

  /** SIGKILLs it and resolves once it is gone; that exit is expected. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.isRunning()) return;
    this.expectExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Kills it if it runs, then starts it again with the same command line. */
  async restart(options: { waitReady?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.kill();
    await this.start(options);
  }

  /** SIGCONT, SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. Idempotent. */
  async stop(graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    this.stopped = true;
    const child = this.child;
    if (child === undefined) return undefined;
    if (this.isRunning()) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    return { code: child.exitCode, signal: child.signalCode };
  }

  /** The last `lines` lines of its log file. */
  tail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Stops it and closes its log. */
  async close(): Promise<void> {
    await this.stop(5_000);
    all.delete(this);
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}

/** Stops and closes every {@link CellProcess} not closed yet (the safety net for afterAll). */
export async function stopCellProcesses(): Promise<void> {
  await Promise.all([...all].map((p) => p.close()));
}

/** The log tails of `processes`, for a failure message. */
export function logTails(processes: Iterable<CellProcess>, lines = 15): string {
  return [...processes].map((p) => `--- ${p.name} (${p.logFile}):\n${p.tail(lines)}`).join('\n');
}
