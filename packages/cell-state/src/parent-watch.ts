/**
 * A child process that ends when the process that started it dies, however that one dies.
 *
 * ```
 *   omega dev (pid P) ── spawn, env OMEGA_PARENT_PID=P, stdin = a pipe it never writes ──► child
 *   P dies (even SIGKILL): the kernel closes the pipe's write end ─► the child reads EOF
 *                          the child is re-parented            ─► process.ppid !== P
 *   either one ─► onParentDeath (default: SIGTERM to itself, SIGKILL after a grace period)
 * ```
 *
 * `omega dev` prefers Linux's parent-death signal (`setpriv --pdeathsig SIGKILL`), which needs no
 * cooperation from the child. This is the fallback for hosts without util-linux's `setpriv`: an
 * entry point calls {@link exitWithParent} once at startup. Without `OMEGA_PARENT_PID` in the
 * environment (started by hand, by a test, by systemd) it does nothing.
 */

/** The environment variable a supervising parent sets to its own pid. */
export const PARENT_PID_ENV = 'OMEGA_PARENT_PID';

const DEFAULT_POLL_MS = 1_000;
const DEFAULT_GRACE_MS = 10_000;

/** The bits of a readable stream the watch uses (process.stdin satisfies it). */
export interface ParentPipe {
  on(event: 'end' | 'close' | 'error', listener: () => void): unknown;
  resume(): unknown;
  /** Present on pipes and sockets: lets the process exit while it still reads. */
  unref?(): unknown;
}

export interface ParentWatchOptions {
  /** Where `OMEGA_PARENT_PID` is read (and removed); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** The current parent pid; default `() => process.ppid`. */
  readonly ppid?: () => number;
  /** The pipe from the parent; default `process.stdin`. */
  readonly stdin?: ParentPipe;
  /** How often the parent pid is checked; default 1 s. */
  readonly pollMs?: number;
  /**
   * What to do once the parent is gone (called at most once). Default: SIGTERM to this process,
   * so the entry point's own stop path runs, then SIGKILL if it is still alive after `graceMs`.
   */
  readonly onParentDeath?: () => void;
  /** The default `onParentDeath`'s grace period; default 10 s. */
  readonly graceMs?: number;
}

/** A running watch; `stop()` ends it (idempotent). */
export interface ParentWatch {
  /** The parent pid being watched. */
  readonly parentPid: number;
  stop(): void;
}

/**
 * Watches the parent named by `OMEGA_PARENT_PID` and calls `onParentDeath` once when it dies.
 * Returns undefined (and watches nothing) when the variable is unset or malformed, or when this
 * process's parent is not that pid: then the variable was inherited from further up (a task
 * started by an agent that `omega dev` started) and the pipe on stdin, if any, is not ours.
 *
 * The variable is removed from `env` either way, so this process's own children do not inherit
 * it. Neither the timer nor the pipe keeps the process alive. Call once, early in `main`.
 */
export function exitWithParent(options: ParentWatchOptions = {}): ParentWatch | undefined {
  const env = options.env ?? process.env;
  const raw = env[PARENT_PID_ENV];
  delete env[PARENT_PID_ENV];
  if (raw === undefined || !/^[1-9]\d*$/.test(raw)) return undefined;
  const parentPid = Number(raw);
  const ppid = options.ppid ?? (() => process.ppid);
  if (ppid() !== parentPid) return undefined;

  let done = false;
  const onParentDeath = options.onParentDeath ?? (() => terminateSelf(options.graceMs ?? DEFAULT_GRACE_MS));
  const fire = (): void => {
    if (done) return;
    stop();
    onParentDeath();
  };
  const timer = setInterval(() => {
    if (ppid() !== parentPid) fire();
  }, options.pollMs ?? DEFAULT_POLL_MS);
  timer.unref();
  const pipe = options.stdin ?? (process.stdin as unknown as ParentPipe);
  // EOF or an error on the pipe: its write end closed, which only the parent's death does.
  pipe.on('end', fire);
  pipe.on('close', fire);
  pipe.on('error', fire);
  pipe.resume();
  pipe.unref?.();

  function stop(): void {
    done = true;
    clearInterval(timer);
  }
  return { parentPid, stop };
}

function terminateSelf(graceMs: number): void {
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), graceMs).unref();
  process.kill(process.pid, 'SIGTERM');
}
