/**
 * The task supervisor: a tiny process per task attempt, started by the agent as
 * `node supervisor.js <task dir>`. It is the parent of the user process for its whole life, so
 * it, and only it, learns the exact exit code or signal; it writes that to `exit.json` whether or
 * not an agent is alive, which is how an outcome survives an agent restart.
 *
 * ```
 *   agent ──spawn (detached)──► supervisor (root, agent's cgroup, ignores TERM/INT/HUP)
 *         ──stdin: the env (JSON), EOF──►  (never on disk: it may hold secret values)
 *                                  │ spawn as task user, setsid, stdin = pipe, stdout/err = log files
 *                                  ▼
 *                               /bin/sh -c 'read go; exec "$@" </dev/null' omega-task <argv...>
 *                                  │   blocked in `read` (a shell builtin: no user code yet)
 *   supervisor writes the child's pid into the cgroup's procs file(s), writes started.json,
 *   then sends "go": the shell execs the task's argv, keeping its pid (now in the cgroup)
 *                                  ▼
 *   child exits ──► supervisor writes exit.json (atomic) ──► supervisor exits
 * ```
 *
 * Why a stopped child rather than a wrapper that joins the cgroup itself: the child runs as the
 * unprivileged task user from its first instruction, and an unprivileged process may not move
 * itself into a root-owned cgroup (v2 requires write access to the common ancestor's
 * `cgroup.procs`); the root supervisor may. Why the supervisor stays outside the task's cgroup:
 * its ~10 MB of its own memory (43 MB resident, mostly the shared Node binary) would be charged to a 32 MiB task, and it must survive the task's kill
 * (every process in the cgroup) to record how the task ended.
 *
 * The shell does no word splitting or globbing of the argv (`"$@"`), so no shell is involved
 * unless the task's own argv runs one. A missing program ends with sh's exit code 127.
 */
import { spawn } from 'node:child_process';
import { closeSync, fchownSync, openSync, unlinkSync, writeFileSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
// Only task-files.js: a supervisor must start fast and small, without cell-state or etcd.
import { SHIM_SCRIPT } from './supervisor-shim.js';
import { MAX_SUPERVISOR_ENV_BYTES, TASK_FILES, readJson, writeJsonAtomic, type ExitRecord, type SupervisorEnv, type SupervisorSpec } from './task-files.js';


function openLog(path: string, uid: number | undefined, gid: number | undefined): number {
  // O_NOFOLLOW: the directory is root-owned, but never follow a planted link anyway.
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND | fsc.O_NOFOLLOW, 0o640);
  if (uid !== undefined) fchownSync(fd, uid, gid ?? -1);
  return fd;
}

/**
 * The task's environment from stdin, to EOF. Undefined when it is missing or malformed (the
 * agent died before sending it all): the task then does not start. Never echoed anywhere.
 */
async function readEnv(): Promise<SupervisorEnv | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of process.stdin) {
      size += (chunk as Buffer).length;
      if (size > MAX_SUPERVISOR_ENV_BYTES) return undefined;
      chunks.push(chunk as Buffer);
    }
    const env: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (env === null || typeof env !== 'object' || Array.isArray(env)) return undefined;
    if (Object.values(env).some((v) => typeof v !== 'string')) return undefined;
    return env as SupervisorEnv;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('usage: supervisor.js <task dir>\n');
    process.exit(2);
  }
  const specPath = join(dir, TASK_FILES.spec);
  const spec = readJson<SupervisorSpec>(specPath);
  if (spec === undefined) {
    process.stderr.write(`no ${specPath}\n`);
    process.exit(2);
  }
  unlinkSync(specPath);
  // The task is stopped through its cgroup; the supervisor must outlive it to record the end.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const env = await readEnv();

  let failure: string | undefined;
  let finished = false;
  const finish = (exit: Omit<ExitRecord, 'finishedAtMs'>): void => {
    if (finished) return;
    finished = true;
    const record: ExitRecord = { ...exit, finishedAtMs: Date.now(), ...(failure === undefined ? {} : { error: failure }) };
    writeJsonAtomic(spec.exitPath, record);
    process.exit(0);
  };

  if (env === undefined) {
    failure = 'the environment did not arrive from the agent (stdin closed early or malformed)';
    finish({ exitCode: null, signal: null });
    return;
  }
  let out: number;
  let err: number;
  try {
    out = openLog(spec.stdoutPath, spec.uid, spec.gid);
    err = openLog(spec.stderrPath, spec.uid, spec.gid);
  } catch (error) {
    failure = `could not open the log files: ${(error as Error).message}`;
    finish({ exitCode: null, signal: null });
    return;
  }
  const child = spawn('/bin/sh', ['-c', SHIM_SCRIPT, 'omega-task', ...spec.argv], {
    cwd: spec.cwd,
    env: { ...env },
    stdio: ['pipe', out, err],
    // Own session and process group: without cgroups, the group is what gets killed.
    detached: true,
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.gid === undefined ? {} : { gid: spec.gid }),
  });
  closeSync(out);
  closeSync(err);
  child.stdin?.on('error', () => undefined);
  child.on('error', (error) => {
    failure = `could not start the task: ${error.message}`;
    finish({ exitCode: null, signal: null });
  });
  child.on('exit', (code, signal) => finish({ exitCode: code, signal }));
  child.on('spawn', () => {
    const pid = child.pid as number;
    try {
      for (const file of spec.procsFiles) writeFileSync(file, String(pid));
    } catch (error) {
      failure = `could not put the task into its cgroup: ${(error as Error).message}`;
      child.kill('SIGKILL');
      return;
    }
    writeJsonAtomic(spec.startedPath, { pid, startedAtMs: Date.now() });
    child.stdin?.end('go\n');
  });
}

void main();
