/**
 * Starts task supervisors through one long-lived `omega-launcher` (native/omega-launcher.c,
 * built next to `omega-supervisor`) instead of `child_process.spawn` per task: a spawn forks the
 * whole agent (100+ MiB of page tables, ~3-13 ms of blocked event loop per task, more under
 * load), while a request to the launcher is one pipe write and its fork copies a process of a
 * few hundred KiB.
 *
 * ```
 *  agent ──request (binary, log, argv, env)──► launcher ──fork, setsid, exec──► supervisor
 *        ◄──spawned (id, pid) / exited (pid)──        (env on the supervisor's stdin, then EOF)
 * ```
 *
 * The supervisors are the launcher's children, each in its own session; when the agent dies the
 * launcher exits (EOF on its stdin) without touching them: they are re-parented and keep writing
 * their exit status into their task directories, which is what adoption reads. If the launcher
 * itself dies, every supervisor it started is reported `unknown` (its end is then watched by
 * polling, as after an agent restart) and the next launch starts a new launcher.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';

export const LAUNCHER_BINARY = 'omega-launcher';

/** The launcher built next to `supervisorPath`, or undefined when there is none (spawn directly). */
export function launcherPathFor(supervisorPath: string): string | undefined {
  const path = join(dirname(supervisorPath), LAUNCHER_BINARY);
  return existsSync(path) ? path : undefined;
}

/** The launcher could not start the process (fork or pipe failed): `errno` says why. */
export class LaunchFailedError extends Error {
  readonly retryable = true;
  constructor(readonly errno: number) {
    super(`the launcher could not start the supervisor (errno ${errno})`);
    this.name = 'LaunchFailedError';
  }
}

/** The launcher died before it said whether it started the process: it may be running. */
export class LauncherGoneError extends Error {
  readonly retryable = true;
  constructor(options?: { cause?: unknown }) {
    super('the supervisor launcher exited before answering', options);
    this.name = 'LauncherGoneError';
  }
}

/** How a launched process ended, as far as the launcher knows. */
export type LaunchedEnd = 'exited' | 'unknown';

/**
 * What to start: `binary` with `args` (after argv0, as for `spawn`), `stdin` then EOF. Its
 * stderr is the launcher's own, which is the agent's.
 */
export interface LaunchRequest {
  readonly binary: string;
  readonly args: readonly string[];
  readonly stdin: Buffer;
}

interface Pending {
  readonly resolve: (pid: number) => void;
  readonly reject: (error: Error) => void;
  readonly onEnd: (end: LaunchedEnd) => void;
}

const LE = endianness() === 'LE';
const KIND_SPAWNED = 1;
const KIND_EXITED = 2;

/** One launcher process, started on the first launch and again after it died. */
export class SupervisorLauncher {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly running = new Map<number, (end: LaunchedEnd) => void>();
  private received: Buffer = Buffer.alloc(0);
  private closed = false;

  /** `path`: the launcher binary; `env`: its (and so every supervisor's) environment. */
  constructor(
    private readonly path: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * Starts a process; resolves with its pid once it runs (`onEnd` is called once when it is
   * gone, or `unknown` when the launcher died first). Rejects with {@link LaunchFailedError}
   * (nothing started) or {@link LauncherGoneError} (it may have started).
   */
  launch(request: LaunchRequest, onEnd: (end: LaunchedEnd) => void): Promise<number> {
    if (this.closed) return Promise.reject(new LauncherGoneError());
    const child = this.child ?? this.startLauncher();
    const id = this.nextId++;
    const args = Buffer.from([request.binary, request.binary, ...request.args].map((s) => `${s}\0`).join(''), 'utf8');
    const header = Buffer.alloc(12);
    const write = (LE ? header.writeUInt32LE : header.writeUInt32BE).bind(header);
    write(id, 0);
    write(args.length, 4);
    write(request.stdin.length, 8);
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEnd });
      child.stdin?.write(Buffer.concat([header, args, request.stdin]));
    });
  }

  /** Ends the launcher (EOF on its stdin): the processes it started keep running. */
  close(): void {
    this.closed = true;
    this.child?.stdin?.end();
    this.lost(new LauncherGoneError());
  }

  private startLauncher(): ChildProcess {
    const child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'inherit'], env: this.env });
    this.child = child;
    child.stdin?.on('error', () => undefined);
    child.stdout?.on('data', (chunk: Buffer) => this.onReplies(chunk));
    child.once('error', (error) => this.onLauncherGone(child, error));
    child.once('exit', () => this.onLauncherGone(child, undefined));
    // The agent may exit with the launcher still running: it then sees EOF and exits too.
    child.unref();
    (child.stdin as unknown as Socket | null)?.unref?.();
    (child.stdout as unknown as Socket | null)?.unref?.();
    return child;
  }

  private onReplies(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    let at = 0;
    for (; this.received.length - at >= 12; at += 12) {
      const kind = LE ? this.received.readUInt32LE(at) : this.received.readUInt32BE(at);
      const a = LE ? this.received.readUInt32LE(at + 4) : this.received.readUInt32BE(at + 4);
      const b = LE ? this.received.readInt32LE(at + 8) : this.received.readInt32BE(at + 8);
      if (kind === KIND_SPAWNED) {
        const waiting = this.pending.get(a);
        if (waiting === undefined) continue;
        this.pending.delete(a);
        if (b > 0) {
          this.running.set(b, waiting.onEnd);
          waiting.resolve(b);
        } else waiting.reject(new LaunchFailedError(-b));
      } else if (kind === KIND_EXITED) {
        const onEnd = this.running.get(a);
        this.running.delete(a);
        onEnd?.('exited');
      }
    }
    this.received = this.received.subarray(at);
  }

  private onLauncherGone(child: ChildProcess, error: Error | undefined): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.received = Buffer.alloc(0);
    this.lost(new LauncherGoneError({ cause: error }));
  }

  private lost(error: LauncherGoneError): void {
    const pending = [...this.pending.values()];
    const running = [...this.running.values()];
    this.pending.clear();
    this.running.clear();
    for (const waiting of pending) waiting.reject(error);
    for (const onEnd of running) onEnd('unknown');
  }
}
