/**
 * The records a task attempt keeps on disk (see task-paths.ts for the layout), shared by the
 * agent and the supervisor process (native/omega-supervisor.c writes started.json, exit.json and
 * truncated.json in these same shapes). They are what lets an agent restart without losing an
 * outcome: the supervisor writes `started.json` and `exit.json` whether or not an agent is alive.
 *
 * Every record is written atomically (temporary file, rename), so a reader sees either nothing or
 * the whole record. What must also survive a power loss is fsynced, and only that: the page cache
 * outlives a `kill -9` of the agent, so a record needs an fsync only if a restart after a machine
 * crash (when no supervisor survives) still needs it. Per record:
 *
 * - `meta.json`: written by the agent without fsync ({@link writeJsonVolatile}), fsynced by the
 *   supervisor before it writes `started.json` (whose directory fsync also persists the name), so
 *   it is on disk before any user code runs: after a crash it is what names the attempt's task,
 *   claim and uid, so a task the cell saw start is reported from its files, not guessed. The
 *   agent does not wait for the disk itself: an fsync on its event loop's four libuv threads
 *   queued every other file operation of every starting task behind it (170 ms per start
 *   measured at ~100 starts/s on a disk etcd also syncs to).
 * - `reported.json`: not fsynced: if a crash loses it, recovery either sees the record terminal
 *   with the exit's own finish time (marks it, no second report) or reports again at the same
 *   claim, which the cell takes as a repeat.
 * - `started.json`, `exit.json`: the supervisor's, fsynced by it (omega-supervisor.c): they are
 *   what proves a start and carries the real outcome.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, constants as fsc } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HealthCheck } from '@omega/cell-state';

/** File names inside a task attempt's directory (see the layout above). */
export const TASK_FILES = Object.freeze({
  meta: 'meta.json',
  started: 'started.json',
  exit: 'exit.json',
  reported: 'reported.json',
  stdout: 'stdout.log',
  stderr: 'stderr.log',
  /** The previous cap's worth of a stream once it passed the cap (see supervisor-command.ts). */
  stdoutRotated: 'stdout.log.1',
  stderrRotated: 'stderr.log.1',
  /** Written by the supervisor once a stream lost bytes (a rotated file was replaced). */
  truncated: 'truncated.json',
  work: 'work',
});

/** Who a task attempt is: written by the agent before anything else happens for it. */
export interface TaskMeta {
  readonly taskId: string;
  readonly jobId: string;
  readonly index: number;
  readonly attempt: number;
  readonly claimId: string;
  readonly machineId: string;
  /** The attempt's cgroup name; empty when enforcement is disabled. */
  readonly cgroup: string;
  readonly createdAtMs: number;
  /** The uid/gid it runs as, when not the agent's own (a restarted agent keeps it reserved). */
  readonly uid?: number;
  readonly gid?: number;
  /** The job's named user (`user:`), when it runs as one: its uid is not the agent's to reserve. */
  readonly user?: string;
  /** The spec's health check, so an adopted attempt resumes the check it started with. */
  readonly healthCheck?: HealthCheck;
  /** A command check's environment (the task's without secret values). */
  readonly healthEnv?: Readonly<Record<string, string>>;
}

/**
 * The task's whole environment, as the agent sends it on the supervisor's stdin (then EOF;
 * framed by supervisor-command.ts's `encodeSupervisorEnv`): never on disk, it may hold secrets.
 */
export type SupervisorEnv = Readonly<Record<string, string>>;

/** Largest environment the supervisor reads from its stdin (MAX_ENV_BYTES in omega-supervisor.c; the spec limits keep it far below). */
export const MAX_SUPERVISOR_ENV_BYTES = 1024 * 1024;

/** The user process runs (it joined its cgroup). */
export interface StartedRecord {
  readonly pid: number;
  readonly startedAtMs: number;
}

/** How the user process ended, as its parent (the supervisor) saw it. */
export interface ExitRecord {
  /** Set when it exited; null when a signal ended it. */
  readonly exitCode: number | null;
  /** Signal name (`SIGKILL`) or null. */
  readonly signal: string | null;
  readonly finishedAtMs: number;
  /** The task could not be started (spawn, setup, cgroup join or its exec failed): what went wrong (the record's message). */
  readonly error?: string;
  /** Set when the supervisor itself killed the task for a bound it enforces: `disk-exceeded`. */
  readonly reason?: string;
  /** What the bound was and what was measured (the agent's log and the record's message). */
  readonly reasonMessage?: string;
  /** The stream lost its oldest bytes to the log cap. */
  readonly stdoutTruncated?: boolean;
  readonly stderrTruncated?: boolean;
}

/** Which of a task's streams lost their oldest bytes to the log cap (`truncated.json`). */
export interface TruncatedRecord {
  readonly stdout: boolean;
  readonly stderr: boolean;
}

/** The terminal report was accepted by the cell (or was refused as stale): nothing left to do. */
export interface ReportedRecord {
  readonly state: string;
  readonly outcome: string;
  readonly atMs: number;
}

/**
 * Writes `value` as JSON to `path` atomically and durably. Synchronous on purpose: the agent
 * writes the supervisor's pid in the same tick as the spawn.
 */
export function writeJsonAtomic(path: string, value: unknown, mode = 0o644): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, mode);
  try {
    writeSync(fd, `${JSON.stringify(value)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dirFd = openSync(dirname(path), fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

/**
 * Writes `value` as JSON to `path` atomically, without fsync: for records that only matter while
 * the machine stays up (they survive the agent's death in the page cache). Synchronous: about
 * 0.1 ms, for a write that must land in the same tick as what it records.
 */
export function writeJsonVolatile(path: string, value: unknown, mode = 0o644): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, mode);
  try {
    writeSync(fd, `${JSON.stringify(value)}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** {@link writeJsonVolatile} off the event loop. */
export async function writeJsonVolatileAsync(path: string, value: unknown, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC | fsc.O_NOFOLLOW, mode);
  try {
    await file.writeFile(`${JSON.stringify(value)}\n`);
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

/** Reads a JSON record; `undefined` when the file does not exist. Other errors are thrown. */
export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}
