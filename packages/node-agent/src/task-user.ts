/**
 * The user tasks run as. A root agent never runs tasks as root unless told to
 * (`--allow-root-tasks`): by default they run as `nobody`. A non-root agent runs them as itself
 * (it could not switch users anyway).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface TaskUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The task user could not be resolved or is not allowed. */
export class TaskUserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskUserError';
  }
}

/**
 * Resolves `spec`: a user name from `/etc/passwd`, or numeric `uid` / `uid:gid`. Throws
 * {@link TaskUserError} for an unknown user.
 */
export function resolveTaskUser(spec: string, passwdPath = '/etc/passwd'): TaskUser {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (numeric !== null) {
    const uid = Number(numeric[1]);
    return { name: spec, uid, gid: numeric[2] === undefined ? uid : Number(numeric[2]) };
  }
  let passwd: string;
  try {
    passwd = readFileSync(passwdPath, 'utf8');
  } catch (error) {
    throw new TaskUserError(`cannot read ${passwdPath} to find user ${JSON.stringify(spec)}: ${(error as Error).message}`);
  }
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === spec && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  throw new TaskUserError(`no user ${JSON.stringify(spec)} in ${passwdPath}`);
}

/**
 * Checks that `user` may enter `path` and every directory above it (search permission), so a
 * task's working directory under the data dir is reachable. Throws naming the first directory
 * that is not.
 */
export function checkTraversable(path: string, user: TaskUser): void {
  let dir = resolve(path);
  for (;;) {
    const st = statSync(dir);
    const ok = user.uid === 0 || (st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001);
    if (!ok) {
      throw new TaskUserError(`task user ${user.name} (uid ${user.uid}) cannot enter ${dir} (mode ${(st.mode & 0o777).toString(8)}); make it searchable (chmod o+x) or pick another --data-dir`);
    }
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}
