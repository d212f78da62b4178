/**
 * The three kinds of health check, as {@link HealthProbe}s for health-checks.ts:
 *
 * - **http**: `GET http://127.0.0.1:<port><path>` (no keep-alive, no redirects followed); a
 *   2xx or 3xx status passes.
 * - **tcp**: a connect to `127.0.0.1:<port>` passes.
 * - **command**: the check's argv run the way the task runs, so it sees what the task sees and
 *   is held to the same limits:
 *
 *   ```
 *   sh (root) ─ writes its own pid into the task cgroup's procs file(s) ─ exec
 *     nsenter -t <task pid> [-p] [-m] [-n]   the task's namespaces, those that differ from the
 *             -S uid -G gid --wd=<work dir>    agent's (found in /proc/<pid>/ns); uid/gid with
 *             -- argv                          supplementary groups dropped
 *   (no namespaces: setpriv --reuid --regid --clear-groups -- argv, in the work dir)
 *   ```
 *
 *   The cgroup is joined before anything of the check runs, so the check counts against the
 *   task's memory, CPU and pids limits and is killed with the task's cgroup. No shell parses the
 *   argv (the wrapper passes it as "$@"). Exit 0 passes. The environment is the task's without
 *   its secret values (PATH, HOME, the spec's env, `OMEGA_*`). On a timeout the check's process
 *   group is SIGKILLed; a process the check moved out of its group is still in the task's cgroup
 *   and PID namespace, and goes with the task.
 *
 * http and tcp connect from the agent, i.e. the host's network: the spec validation refuses
 * them for tasks with `network: none` (see cell-state's health-check.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthProbe, ProbeResult } from './health-checks.js';

/** Where nsenter / setpriv / sh are looked for (the agent's env may have no PATH). */
const TOOL_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

function tool(name: string): string {
  for (const dir of TOOL_DIRS) {
    const path = `${dir}/${name}`;
    if (existsSync(path)) return path;
  }
  return name;
}

/** How much of a failing command check's stderr goes into its log line. */
const DETAIL_BYTES = 256;

export function httpProbe(port: number, path: string): HealthProbe {
  return (signal) =>
    new Promise<ProbeResult>((resolve) => {
      let settled = false;
      const done = (result: ProbeResult): void => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, signal, headers: { connection: 'close', 'user-agent': 'omega-agent-health-check' } }, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        res.on('error', () => undefined);
        done({ passed: status >= 200 && status < 400, detail: `HTTP ${status}` });
        req.destroy();
      });
      req.on('error', (error) => done({ passed: false, detail: signal.aborted ? 'aborted' : error.message }));
      req.end();
    });
}

export function tcpProbe(port: number): HealthProbe {
  return (signal) =>
    new Promise<ProbeResult>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      let settled = false;
      const done = (result: ProbeResult): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(result);
      };
      const onAbort = (): void => done({ passed: false, detail: 'aborted' });
      signal.addEventListener('abort', onAbort);
      socket.once('connect', () => done({ passed: true, detail: 'connected' }));
      socket.once('error', (error) => done({ passed: false, detail: error.message }));
    });
}

/** Namespaces the process `pid` is in that the agent is not (what nsenter must enter). */
export function namespacesApart(pid: number): { pid: boolean; mount: boolean; network: boolean } {
  const apart = (ns: string): boolean => readlinkSync(`/proc/${pid}/ns/${ns}`) !== readlinkSync(`/proc/self/ns/${ns}`);
  return { pid: apart('pid'), mount: apart('mnt'), network: apart('net') };
}

export interface CommandProbeTarget {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** The task's work dir (the check's cwd). */
  readonly cwd: string;
  /** The task's uid/gid; undefined: the agent's own. */
  readonly uid?: number;
  readonly gid?: number;
  /** The task cgroup's procs file(s); empty without enforcement. */
  readonly procsFiles: readonly string[];
  /** The task's pid on the host (with isolation: its namespace init), read when each check runs. */
  readonly pid: () => number | undefined;
}

/** The argv that runs `target`'s check (exported for tests). Throws when the task's process is gone. */
export function commandProbeArgv(target: CommandProbeTarget): { file: string; args: string[]; cwd: string } {
  const pid = target.pid();
  if (pid === undefined || pid <= 1) throw new Error('the task has no process to check');
  const ns = namespacesApart(pid);
  const ids = target.uid !== undefined && target.gid !== undefined;
  let inner: string[];
  if (ns.pid || ns.mount || ns.network) {
    inner = [tool('nsenter'), '-t', String(pid), ...(ns.pid ? ['-p'] : []), ...(ns.mount ? ['-m'] : []), ...(ns.network ? ['-n'] : []), ...(ids ? ['-S', String(target.uid), '-G', String(target.gid)] : []), `--wd=${target.cwd}`, '--', ...target.argv];
  } else if (ids) {
    inner = [tool('setpriv'), '--reuid', String(target.uid), '--regid', String(target.gid), '--clear-groups', '--', ...target.argv];
  } else inner = [...target.argv];
  if (target.procsFiles.length === 0) return { file: inner[0] as string, args: inner.slice(1), cwd: target.cwd };
  // Joins the cgroup(s) first, then becomes the check: nothing of it runs outside the cgroup.
  const script = 'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
  return { file: tool('sh'), args: ['-c', script, 'omega-health-check', ...target.procsFiles, '--', ...inner], cwd: target.cwd };
}

export function commandProbe(target: CommandProbeTarget): HealthProbe {
  return (signal) =>
    new Promise<ProbeResult>((resolve) => {
      let command: ReturnType<typeof commandProbeArgv>;
      try {
        command = commandProbeArgv(target);
      } catch (error) {
        resolve({ passed: false, detail: (error as Error).message });
        return;
      }
      let settled = false;
      let stderr = '';
      const child = spawn(command.file, command.args, { cwd: command.cwd, env: { ...target.env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      const kill = (): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // The group is gone already.
        }
      };
      const done = (result: ProbeResult): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', kill);
        resolve(result);
      };
      signal.addEventListener('abort', kill);
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        if (stderr.length < DETAIL_BYTES) stderr = (stderr + chunk).slice(0, DETAIL_BYTES);
      });
      child.stderr?.on('error', () => undefined);
      child.once('error', (error) => done({ passed: false, detail: `could not run the check: ${error.message}` }));
      child.once('exit', (code, sig) => {
        // Whatever the check left in its group goes with it.
        kill();
        const why = sig !== null ? `killed by ${sig}` : `exit ${code}`;
        done({ passed: code === 0, detail: stderr.trim() === '' ? why : `${why}: ${stderr.trim()}` });
      });
    });
}
