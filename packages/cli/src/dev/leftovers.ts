/**
 * Processes a killed `omega dev` left behind, found again from its `dev-status.json`.
 *
 * With the parent-death signal no child should outlive `omega dev`; this is the net under it: a
 * host without setpriv (children that do not watch their pipe), or a death in the instant
 * between a fork and its prctl. At start, before it probes its port, `omega dev` reads the
 * status file the last one left; each process listed there that still runs *and* has the same
 * start time (field 22 of `/proc/<pid>/stat`, so a recycled pid is never touched) is SIGKILLed
 * with its process group.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Whether a process with this pid exists (one we may not signal counts: EPERM). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's start time in clock ticks since boot, or undefined (gone, or not Linux). */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): field 22 is fields[19]. A zombie has exited already.
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export interface Leftover {
  readonly name: string;
  readonly pid: number;
}

interface RecordedProcess {
  name?: unknown;
  pid?: unknown;
  startTicks?: unknown;
}

/**
 * The processes listed in `statusFile` (written by an `omega dev` other than this one) that still
 * run with the start time recorded there. No file, a malformed file, or our own: none.
 */
export async function findLeftovers(statusFile: string, self = process.pid): Promise<Leftover[]> {
  let recorded: { pid?: unknown; processes?: unknown };
  try {
    recorded = JSON.parse(await readFile(statusFile, 'utf8')) as typeof recorded;
  } catch {
    return [];
  }
  if (recorded.pid === self || !Array.isArray(recorded.processes)) return [];
  const found: Leftover[] = [];
  for (const p of recorded.processes as RecordedProcess[]) {
    if (typeof p.name !== 'string' || typeof p.pid !== 'number' || typeof p.startTicks !== 'string') continue;
    if (processStartTicks(p.pid) === p.startTicks) found.push({ name: p.name, pid: p.pid });
  }
  return found;
}

/** SIGKILLs each leftover's process group (or the process); resolves once all are gone or after `timeoutMs`. */
export async function killLeftovers(leftovers: readonly Leftover[], timeoutMs = 5_000): Promise<Leftover[]> {
  for (const { pid } of leftovers) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
  const deadline = Date.now() + timeoutMs;
  let remaining = leftovers.filter((l) => processStartTicks(l.pid) !== undefined);
  while (remaining.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    remaining = remaining.filter((l) => processStartTicks(l.pid) !== undefined);
  }
  return remaining;
}
