/**
 * Finding the supervisors of task attempts among the machine's processes, for an agent that did
 * not start them (a restart: adoption) or lost track of one (its launcher died before naming
 * it). A supervisor's command line names its attempt's directory right before `--`
 * (supervisor-command.ts), but a command line is whatever a process says it is: a task can run
 * a process whose arguments name another attempt's directory. And the supervisor's own forks
 * (the task's init under `-i`, the task's process until it execs) carry its command line too.
 * So a supervisor is a process that
 *
 * - names the directory right before `--`,
 * - runs as the agent's own user (the agent starts its supervisors; a task of a root agent runs
 *   as its own uid, never root, so it cannot pass for one), and
 * - is not the child of another process naming the same directory (that is its init, or its
 *   task before the exec).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** A process whose command line names an attempt directory right before `--`. */
export interface SupervisorCandidate {
  readonly pid: number;
  readonly ppid: number;
  /** Its real user id. */
  readonly uid: number;
  readonly dir: string;
}

/** The directory a supervisor's command line names: the argument right before the first `--`. */
export function commandLineDir(cmdline: string): string | undefined {
  const args = cmdline.split('\0');
  const end = args.indexOf('--');
  return end > 0 ? args[end - 1] : undefined;
}

/**
 * The candidate `pid` is, read from /proc (its command line, parent and real uid); undefined
 * when it is gone, a zombie (empty command line) or names no directory starting with `prefix`.
 */
export function readCandidate(pid: number, prefix = ''): SupervisorCandidate | undefined {
  try {
    const dir = commandLineDir(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    if (dir === undefined || !dir.startsWith(prefix)) return undefined;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ppid = /^PPid:\s+(\d+)/m.exec(status);
    const uid = /^Uid:\s+(\d+)/m.exec(status);
    if (ppid === null || uid === null) return undefined;
    return { pid, ppid: Number(ppid[1]), uid: Number(uid[1]), dir };
  } catch {
    return undefined;
  }
}

/** Per attempt directory, its supervisor among `candidates` (see the file header); `uid` is the agent's. */
export function supervisorsOf(candidates: readonly SupervisorCandidate[], uid: number): Map<string, number> {
  const byPid = new Map(candidates.map((c) => [c.pid, c]));
  const found = new Map<string, number>();
  for (const c of candidates) {
    if (c.uid !== uid) continue;
    if (byPid.get(c.ppid)?.dir === c.dir) continue;
    found.set(c.dir, c.pid);
  }
  return found;
}

/** The agent's own user id (0 where the platform has none to tell). */
export function agentUid(): number {
  return process.getuid?.() ?? 0;
}

/**
 * The supervisors of attempts whose directories start with `prefix` (the agent's tasks
 * directory and a `/`), from one pass over /proc.
 */
export function supervisorsUnder(prefix: string): Map<string, number> {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return new Map();
  }
  const candidates: SupervisorCandidate[] = [];
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const candidate = readCandidate(Number(entry), prefix);
    if (candidate !== undefined) candidates.push(candidate);
  }
  return supervisorsOf(candidates, agentUid());
}

/**
 * Whether `pid` is still the supervisor of the attempt in `dir`: alive, not a zombie, not a
 * reused pid (it names the directory), and running as the agent's user.
 */
export function supervisorAlive(pid: number, dir: string): boolean {
  const candidate = readCandidate(pid);
  return candidate !== undefined && candidate.dir === dir && candidate.uid === agentUid();
}
