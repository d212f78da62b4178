/**
 * How the agent starts a task's supervisor: the native `omega-supervisor` binary (source:
 * native/omega-supervisor.c, built into dist/ by scripts/build-supervisor.mjs), its command
 * line, and the framing of the environment it reads from its stdin.
 *
 * ```
 *   omega-supervisor [-u uid -g gid] [-p procs-file]... -c cap-bytes [-i [-t tmp-bytes]] [-N]
 *                    [-d disk-bytes] [-e entries] [-s check-ms] -w work-dir <task dir> -- <argv...>
 *   omega-supervisor --probe     (what the host lets it unshare; see isolation-detect.ts)
 *   stdin: NAME=value\0 ... NAME=value\0 \0   (the empty record ends it; then EOF)
 * ```
 *
 * The task dir is a whole argument of its own, right before `--`: a restarted agent recognises a
 * live supervisor by its command line naming the directory and its user being the agent's
 * (supervisor-processes.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiskBound } from './disk-limit.js';
import type { SupervisorEnv } from './task-files.js';

/** File name of the built supervisor in the package's dist/. */
export const SUPERVISOR_BINARY = 'omega-supervisor';

/** Default cap of each of a task's stdout.log and stderr.log (and of each rotated `.1` file): 64 MiB. */
export const DEFAULT_LOG_CAP_BYTES = 64 * 1024 * 1024;
/** The smallest cap the supervisor accepts. */
export const MIN_LOG_CAP_BYTES = 4096;

/**
 * The cap of a task's log files: the job's `logLimitBytes` when it sets one, but never more
 * than the agent's `--log-cap` (nor less than {@link MIN_LOG_CAP_BYTES}).
 */
export function taskLogCap(jobLimitBytes: number | undefined, agentCapBytes: number): number {
  if (jobLimitBytes === undefined || jobLimitBytes <= 0) return agentCapBytes;
  return Math.max(MIN_LOG_CAP_BYTES, Math.min(jobLimitBytes, agentCapBytes));
}

/**
 * Memory one supervisor costs while it holds a task, reserved out of the task's claim (the
 * task's cgroup memory limit is the claim minus this; see {@link taskMemoryLimit}). Measured:
 * 1.6 MiB resident of which 0.25 MiB proportional (PSS; the rest is the shared libc), plus up to
 * 128 KiB of pipe buffers and a few KiB of kernel stack and page tables. Rounded up to 1 MiB.
 */
export const SUPERVISOR_OVERHEAD_BYTES = 1024 * 1024;

/**
 * The memory limit of a task's cgroup for a claim of `claimBytes`: the claim minus the
 * supervisor's {@link SUPERVISOR_OVERHEAD_BYTES}, so task and supervisor together stay within
 * what the scheduler counted on the machine. A claim under twice the overhead keeps half of
 * itself (such a task could not run at all otherwise; its supervisor then exceeds the claim by
 * at most the difference). 0 (no limit) stays 0.
 */
export function taskMemoryLimit(claimBytes: number): number {
  if (claimBytes <= 0) return claimBytes;
  return Math.max(Math.ceil(claimBytes / 2), claimBytes - SUPERVISOR_OVERHEAD_BYTES);
}

/** The built supervisor is not where the agent looks for it. */
export class SupervisorMissingError extends Error {
  readonly retryable = false;
  constructor(readonly candidates: readonly string[]) {
    super(
      `the task supervisor is not built (looked for ${candidates.join(', ')}); build it with \`node packages/node-agent/scripts/build-supervisor.mjs\` ` +
        '(needs a C compiler: on Debian/Ubuntu `apt-get install gcc libc6-dev`), or `npm run build`',
    );
    this.name = 'SupervisorMissingError';
  }
}

/**
 * The built supervisor next to this module's dist files, also when this module runs from its
 * TypeScript source (tests). Throws {@link SupervisorMissingError}.
 */
export function defaultSupervisorPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [...new Set([join(here, SUPERVISOR_BINARY), join(here, '..', 'dist', SUPERVISOR_BINARY)])];
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new SupervisorMissingError(candidates);
  return found;
}

/** What one supervisor is asked to run. */
export interface SupervisorCommand {
  /** The task attempt's directory: logs, started.json and exit.json go there. */
  readonly dir: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  /** Run the task as this user (root agents); absent: as the supervisor's own user. */
  readonly uid?: number;
  readonly gid?: number;
  /** Files the task process's pid is written into before it runs user code; empty: no cgroup. */
  readonly procsFiles: readonly string[];
  /** Cap of each log file (see {@link DEFAULT_LOG_CAP_BYTES}). */
  readonly logCapBytes: number;
  /** Namespaces the task starts in (see isolation.ts); absent: none, the task shares the host's. */
  readonly isolation?: SupervisorIsolation;
  /** The work dir's bound (see disk-limit.ts); absent: its disk use is never measured. */
  readonly disk?: DiskBound;
}

/** The namespaces one task starts in. */
export interface SupervisorIsolation {
  /** `-i`: its own PID namespace (own /proc) and mount namespace (private /tmp). */
  readonly pidNamespace: boolean;
  /** `-N`: its own network namespace with only loopback. */
  readonly networkNone: boolean;
  /** `-t`: size of the private /tmp (default the supervisor's, 256 MiB). */
  readonly tmpBytes?: number;
}

/** The supervisor's arguments (after the binary) for `command`. */
export function supervisorArgs(command: SupervisorCommand): string[] {
  const args: string[] = [];
  if (command.uid !== undefined) args.push('-u', String(command.uid), '-g', String(command.gid ?? command.uid));
  for (const file of command.procsFiles) args.push('-p', file);
  args.push('-c', String(command.logCapBytes));
  if (command.isolation?.pidNamespace === true) {
    args.push('-i');
    if (command.isolation.tmpBytes !== undefined) args.push('-t', String(command.isolation.tmpBytes));
  }
  if (command.isolation?.networkNone === true) args.push('-N');
  const disk = command.disk;
  if (disk !== undefined && (disk.limitBytes > 0 || disk.maxEntries > 0)) {
    if (disk.limitBytes > 0) args.push('-d', String(disk.limitBytes));
    if (disk.maxEntries > 0) args.push('-e', String(disk.maxEntries));
    args.push('-s', String(disk.checkIntervalMs));
  }
  args.push('-w', command.cwd, command.dir, '--', ...command.argv);
  return args;
}

/** An environment entry cannot be passed to a process (the spec checks should have refused it). */
export class BadEnvEntryError extends Error {
  readonly retryable = false;
  constructor(readonly field: string, problem: string) {
    super(`env ${field}: ${problem}`);
    this.name = 'BadEnvEntryError';
  }
}

/**
 * The environment as the supervisor reads it from stdin: `NAME=value` records each ended by a
 * NUL, then an empty record. Throws {@link BadEnvEntryError} for a name that is empty or holds
 * `=` or NUL, or a value holding NUL (names only in the message: values may be secret).
 */
export function encodeSupervisorEnv(env: SupervisorEnv): Buffer {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (name === '' || name.includes('=') || name.includes('\0')) throw new BadEnvEntryError(JSON.stringify(name), 'a name must be non-empty, without "=" or NUL');
    if (value.includes('\0')) throw new BadEnvEntryError(name, 'the value holds a NUL byte');
    parts.push(`${name}=${value}\0`);
  }
  parts.push('\0');
  return Buffer.from(parts.join(''), 'utf8');
}
