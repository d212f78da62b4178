/**
 * Named task users: a job may ask `user: NAME` to run its tasks as a user of the machine, and an
 * agent runs it so only when its `--allow-users` names that user (default: none). The agent
 * advertises each allowed user as the machine attribute `omega.users.<name>=true`, which
 * cell-state's `specRequirements` makes a job with `user:` require: schedulers place such a job
 * only where it will run, and a job asking a user no agent allows is unschedulable with that
 * attribute in `ruledOut`. The check at the agent stays (a stale placement, a changed flag).
 *
 * Tasks of different jobs with the same named user share its uid, so root never removes such a
 * task's work dir by path: the contents are removed as that user (whatever link another live
 * task of the user plants leads only where the user could write anyway), then the empty
 * directory, which sits in a root-owned directory the user cannot change, by root.
 */
import { spawn } from 'node:child_process';
import { rmdir } from 'node:fs/promises';
import { taskUserProblem, userAttribute } from '@omega/cell-state';
import { resolveTaskUser, TaskUserError, type TaskUser } from './task-user.js';

/** The failure reason of a task whose job asks a user its agent does not allow. */
export const USER_NOT_ALLOWED = 'user-not-allowed';
/** The failure reason of a task whose allowed user is not (or no longer) on the machine. */
export const USER_UNKNOWN = 'user-unknown';

/** A job's `user:` cannot be run here; the attempt ends failed with `reason` and nothing runs. */
export class TaskUserRefusedError extends Error {
  readonly retryable = false;
  constructor(
    readonly reason: typeof USER_NOT_ALLOWED | typeof USER_UNKNOWN,
    readonly user: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaskUserRefusedError';
  }
}

/**
 * Parses `--allow-users a,b` (comma-separated POSIX user names, never root; empty entries and
 * repeats are dropped). Returns the names, sorted, or the problem.
 */
export function parseAllowUsers(text: string): readonly string[] | { readonly problem: string } {
  const names = [...new Set(text.split(',').map((s) => s.trim()).filter((s) => s !== ''))].sort();
  if (names.length === 0) return { problem: `must name at least one user, e.g. builder,ci, got ${JSON.stringify(text)}` };
  for (const name of names) {
    const problem = taskUserProblem(name);
    if (problem !== undefined) return { problem: `${JSON.stringify(name)}: ${problem}` };
  }
  return names;
}

/** The machine attributes that advertise `users` (`omega.users.<name>=true` each). */
export function allowedUserAttributes(users: readonly string[]): Record<string, string> {
  return Object.fromEntries(users.map((user) => [userAttribute(user), 'true']));
}

/**
 * The user a task of a job asking `user` runs as: resolved from `passwdPath` when `allowed`
 * names it. Throws {@link TaskUserRefusedError}: `user-not-allowed` when it is not in `allowed`
 * (or resolves to uid 0), `user-unknown` when it is not on the machine.
 */
export function namedTaskUser(user: string, allowed: readonly string[], passwdPath?: string): TaskUser {
  if (!allowed.includes(user)) {
    throw new TaskUserRefusedError(USER_NOT_ALLOWED, user, `the job asks to run as user ${JSON.stringify(user)}, which this agent's --allow-users does not name (${allowed.length === 0 ? 'it names none' : allowed.join(',')})`);
  }
  let resolved: TaskUser;
  try {
    resolved = resolveTaskUser(user, passwdPath);
  } catch (error) {
    if (!(error instanceof TaskUserError)) throw error;
    throw new TaskUserRefusedError(USER_UNKNOWN, user, `the job's user ${JSON.stringify(user)} is allowed but not on this machine: ${error.message}`, { cause: error });
  }
  if (resolved.uid === 0 || resolved.gid === 0) throw new TaskUserRefusedError(USER_NOT_ALLOWED, user, `the job's user ${JSON.stringify(user)} has uid or gid 0: tasks never run as root this way`);
  return resolved;
}

/**
 * Removes `dir` (a task's work dir, owned by `user`, in a root-owned directory): its contents as
 * `user` (`setpriv` + `rm -rf`, which never follows links), then the empty directory. Resolves
 * when `dir` is gone or was never there; rejects when something is left.
 */
export async function removeAsUser(dir: string, user: TaskUser): Promise<void> {
  await new Promise<void>((resolveRun, rejectRun) => {
    const child = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', 'rm', '-rf', '--', dir], {
      stdio: 'ignore',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    child.once('error', rejectRun);
    // rm's status is not the verdict: it cannot unlink `dir` itself (its parent is root's), which
    // is expected; the rmdir below says whether the contents are gone.
    child.once('exit', () => resolveRun());
  });
  try {
    await rmdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
