/**
 * What a process costs, read from Linux's /proc: CPU time (its own and that of the children it
 * reaped, and exact run time from schedstat), resident and proportional set sizes, and the
 * process tree. The agent benchmark looks at the node agent's supervisors only through these
 * (processes and their files), so it measures any supervisor implementation the agent spawns.
 *
 * Every reader returns NaN / undefined for a process that is gone (they come and go while
 * sampled) instead of throwing.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux the bench runs on (sysconf is not reachable from Node). */
const CLOCK_TICKS = 100;

/** CPU seconds of a process: its own (user + system) and its reaped children's. */
export interface ProcCpu {
  readonly self: number;
  readonly children: number;
}

/** One row of the process table. */
export interface ProcEntry {
  readonly pid: number;
  readonly ppid: number;
  /** The kernel's short name (`comm`, at most 15 characters). */
  readonly comm: string;
  /** argv joined by spaces ('' for a zombie or a kernel thread). */
  readonly cmdline: string;
  /** The state letter of /proc/<pid>/stat: `R`, `S`, `Z` (a zombie: exited, not yet reaped), ... */
  readonly state: string;
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces or parentheses) start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime and cutime + cstime (fields 14-17 of /proc/<pid>/stat) in seconds; NaN when gone. */
export function procCpu(pid: number | undefined): ProcCpu {
  const f = pid === undefined ? undefined : statFields(pid);
  if (f === undefined) return { self: NaN, children: NaN };
  return { self: (Number(f[11]) + Number(f[12])) / CLOCK_TICKS, children: (Number(f[13]) + Number(f[14])) / CLOCK_TICKS };
}

/**
 * Time the process's main thread has run on a CPU, in seconds, from /proc/<pid>/schedstat (its
 * first field, nanoseconds): exact, where /proc/<pid>/stat counts in 10 ms ticks, which is too
 * coarse for a process that runs a millisecond. Only the main thread: right for the
 * single-threaded supervisor, init and launcher, not for a Node process (use `procCpu`). NaN
 * when gone or when the kernel keeps no schedstat.
 */
export function procRunSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const ns = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns / 1e9 : NaN;
  } catch {
    return NaN;
  }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...) in bytes; NaN when gone or absent. */
export function statusBytes(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number {
  if (pid === undefined) return NaN;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) * 1024;
  } catch {
    return NaN;
  }
}

/**
 * Rss and Pss of /proc/<pid>/smaps_rollup in bytes (Pss: each shared page divided by the
 * processes mapping it, so the Pss of many supervisors adds up to what they really hold).
 * Needs root (or the same user) to read; NaN when gone or unreadable.
 */
export function smapsRollup(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number => {
      const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
      return m === null ? NaN : Number(m[1]) * 1024;
    };
    return { rss: field('Rss'), pss: field('Pss') };
  } catch {
    return { rss: NaN, pss: NaN };
  }
}

/** /proc/<pid>/cgroup as one string ('' when gone). */
export function procCgroups(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return '';
  }
}

/** Every process now (a snapshot; processes that vanish while it is read are left out). */
export function processTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      const [state = '?', ppid] = stat.slice(close + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '').join(' ');
      out.push({ pid, ppid: Number(ppid), comm: stat.slice(open + 1, close), cmdline, state });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The processes below `root` in `table` (children, grandchildren, ...), not `root` itself. */
export function descendants(table: readonly ProcEntry[], root: number): ProcEntry[] {
  const children = new Map<number, ProcEntry[]>();
  for (const p of table) {
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [p]);
    else list.push(p);
  }
  const out: ProcEntry[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const c of children.get(stack.pop() as number) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  return out;
}

/** Percentile `q` (0-1) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
