/**
 * Where a task attempt's files live on the agent's disk, and the only way any id becomes a path.
 *
 * ```
 * <data dir>/
 *   tasks/
 *     <job id>~<index>~<attempt>/      one directory per task attempt (root-owned, 0755)
 *       meta.json                     who this attempt is (task id, claim id, cgroup): written first
 *       started.json                  { pid, startedAtMs }: the user process is in its cgroup
 *       exit.json                     { exitCode | signal, finishedAtMs }: written by the supervisor
 *       reported.json                 the agent's terminal report was accepted: nothing left to do
 *       stdout.log, stderr.log        the task's output, written by the supervisor from pipes
 *                                     (root-owned 0640 as root); each at most the log cap
 *       stdout.log.1, stderr.log.1    the previous cap's worth, once a stream passed the cap
 *       truncated.json                { stdout, stderr }: which streams lost their oldest bytes
 *       supervisor.log                the supervisor's own errors (made on its first one)
 *       work/                         the task's working directory and HOME (task user, 0700);
 *                                     removed after the terminal report
 * ```
 *
 * Safety: ids come from etcd records that anyone able to submit a job influences. A name is built
 * only from a job id that passes cell-state's `checkId` AND this file's own stricter check, plus
 * integers; the separator `~` can appear in neither, so two attempts never share a name. Every
 * path is then resolved and asserted to stay inside its root ({@link insideRoot}), so even a bug
 * upstream cannot make `../../etc` a path.
 */
import { resolve, sep } from 'node:path';
import { checkId, parseTaskId, type TaskId } from '@omega/cell-state';
import { TASK_FILES } from './task-files.js';

/** A path would leave the directory it must stay in, or an id is not safe to use as a name. */
export class UnsafePathError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'UnsafePathError';
  }
}

/** The directory under the data dir holding one directory per task attempt. */
export const TASKS_DIR = 'tasks';


/** Our own check, on top of `checkId`: the same alphabet, and never a dot-only name. */
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SEPARATOR = '~';
/** What a task attempt name looks like: `<job>~<index>~<attempt>`. */
const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}~\d{1,9}~\d{1,9}$/;

function checkSegment(field: string, value: string): void {
  try {
    checkId(field, value);
  } catch (error) {
    throw new UnsafePathError(field, (error as Error).message);
  }
  if (!SAFE_SEGMENT.test(value) || value === '.' || value === '..') throw new UnsafePathError(field, `${JSON.stringify(value)} is not a safe name`);
}

function checkCount(field: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min || n > 999_999_999) throw new UnsafePathError(field, `must be an integer from ${min} to 999999999, got ${String(n)}`);
}

/**
 * The name of a task attempt: its directory name and its cgroup name. Throws
 * {@link UnsafePathError} for a task id that is not `<valid job id>/<index>` or a bad attempt.
 */
export function taskInstanceName(taskId: TaskId | string, attempt: number): string {
  const parsed = parseTaskId(taskId);
  if (parsed === undefined) throw new UnsafePathError('task.id', `${JSON.stringify(taskId)} is not <job id>/<index>`);
  checkSegment('task.jobId', parsed.jobId);
  checkCount('task.index', parsed.index, 0);
  checkCount('task.attempt', attempt, 1);
  return `${parsed.jobId}${SEPARATOR}${parsed.index}${SEPARATOR}${attempt}`;
}

/** Whether `name` is a name {@link taskInstanceName} could have made (for directory scans). */
export function isTaskInstanceName(name: string): boolean {
  return INSTANCE_NAME.test(name);
}

/**
 * `root` joined with `segments`, resolved, and asserted to be strictly inside `root`. Each
 * segment must itself be a plain name (no separator, not `.` or `..`).
 */
export function insideRoot(root: string, ...segments: string[]): string {
  const base = resolve(root);
  for (const s of segments) {
    if (s.length === 0 || s === '.' || s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0')) {
      throw new UnsafePathError('path', `${JSON.stringify(s)} is not a plain name`);
    }
  }
  const full = resolve(base, ...segments);
  if (!full.startsWith(base + sep)) throw new UnsafePathError('path', `${JSON.stringify(full)} is outside ${JSON.stringify(base)}`);
  return full;
}

/** `<data dir>/tasks`. */
export function tasksRoot(dataDir: string): string {
  return insideRoot(dataDir, TASKS_DIR);
}

/** A task attempt's directory: `<data dir>/tasks/<job>~<index>~<attempt>`. */
export function taskDir(dataDir: string, taskId: TaskId | string, attempt: number): string {
  return insideRoot(tasksRoot(dataDir), taskInstanceName(taskId, attempt));
}

/** The paths of a task attempt's files the API serves. */
export interface TaskLogPaths {
  readonly dir: string;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Where a task attempt's stdout and stderr are (or will be) captured. Pure: touches no file.
 * Throws {@link UnsafePathError} for ids that could not have been run.
 */
export function taskLogPaths(dataDir: string, taskId: TaskId | string, attempt: number): TaskLogPaths {
  const dir = taskDir(dataDir, taskId, attempt);
  return { dir, stdout: insideRoot(dir, TASK_FILES.stdout), stderr: insideRoot(dir, TASK_FILES.stderr) };
}

/**
 * Validates a cgroup parent such as `omega` or `omega/agents`: relative segments of letters,
 * digits, `.`, `_`, `-` (a leading `/` is ignored: parents are always relative to the root of
 * each hierarchy). Returns the segments.
 */
export function cgroupParentSegments(parent: string): string[] {
  const segments = parent.replace(/^\/+/, '').split('/').filter((s) => s.length > 0);
  if (segments.length === 0) throw new UnsafePathError('cgroup-parent', 'must name at least one cgroup');
  for (const s of segments) {
    if (!SAFE_SEGMENT.test(s) || /^\.+$/.test(s)) throw new UnsafePathError('cgroup-parent', `${JSON.stringify(s)} is not a safe cgroup name`);
  }
  return segments;
}
