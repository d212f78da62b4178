/**
 * The cgroup contract the task runner uses, with one implementation per cgroup version
 * (cgroup-v1.ts, cgroup-v2.ts) chosen at start by cgroup-detect.ts. Both are rooted at a
 * configurable directory (normally `/sys/fs/cgroup`), so tests run them against a temporary
 * directory holding the files a kernel would have.
 *
 * Every task attempt gets one cgroup named after it (task-paths.ts `taskInstanceName`) under
 * the agent's parent cgroup (`omega` by default). Names are checked and every path is asserted
 * to stay inside the parent, as for the data directory.
 */
// Synchronous on purpose: an interface file is read or written in the kernel's memory in a few
// microseconds, while each fs/promises call costs tens of microseconds of promise and FileHandle
// work on the event loop and a turn through libuv's four threads, where it queues behind the
// fsyncs of task records (tens of milliseconds each on a busy disk). A task's cgroup is made,
// read and removed in ~0.6 ms this way, against 100-300 ms of queueing measured before.
import { accessSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import type { Resources } from '@omega/cell-state';

export type CgroupVersion = 'v1' | 'v2';

/** The limits of one task's cgroup, in the units the kernel files take. */
export interface CgroupLimits {
  /** CFS quota per period in µs; undefined: no quota. */
  readonly cpuQuotaUs: number | undefined;
  readonly cpuPeriodUs: number;
  /** v1 `cpu.shares` (2..262144). */
  readonly cpuShares: number;
  /** v2 `cpu.weight` (1..10000), converted from the shares as runc does. */
  readonly cpuWeight: number;
  /** Memory limit in bytes; undefined: none. Swap is never allowed beyond it. */
  readonly memoryBytes: number | undefined;
  readonly pidsMax: number;
}

/** What a task's cgroup counted, read after its processes are gone. */
export interface CgroupUsage {
  /** CPU time of all its processes, in seconds. */
  readonly cpuSeconds: number;
  /** Peak memory in bytes; 0 where the kernel does not keep it. */
  readonly peakMemoryBytes: number;
  /** Processes the OOM killer killed because of this cgroup's memory limit. */
  readonly oomKills: number;
}

/** One task attempt's cgroup (in every hierarchy it lives in, for v1). */
export interface TaskCgroup {
  readonly name: string;
  /** The files a pid is written into to move a process into this cgroup (one per hierarchy). */
  readonly procsFiles: readonly string[];
  /** Whether the cgroup exists. */
  exists(): Promise<boolean>;
  /** The processes in it now. */
  pids(): Promise<number[]>;
  /** Sends `signal` to every process in it now; returns how many were signalled. */
  signal(signal: NodeJS.Signals): Promise<number>;
  /**
   * Kills every process in it, including ones forked while killing (v2 `cgroup.kill`, v1 freezer
   * when present, else repeated passes over `cgroup.procs`); resolves when it is empty.
   */
  killAll(): Promise<void>;
  usage(): Promise<CgroupUsage>;
  /** Removes the cgroup (it must be empty); no-op when it does not exist. */
  remove(): Promise<void>;
}

/** Creates and finds task cgroups under the agent's parent cgroup. */
export interface CgroupDriver {
  readonly version: CgroupVersion;
  /** The hierarchy root (`/sys/fs/cgroup` on a real machine). */
  readonly root: string;
  /**
   * Creates the parent cgroup (and, for v2, enables the cpu, memory and pids controllers down to
   * it). Throws {@link CgroupUnavailableError} when that cannot be done. Call once, first.
   */
  prepare(): Promise<void>;
  /** Creates a task's cgroup with its limits written. Throws when the name is unsafe or a write fails. */
  create(name: string, limits: CgroupLimits): Promise<TaskCgroup>;
  /** The task cgroup of that name, whether or not it exists (for adoption after a restart). */
  open(name: string): TaskCgroup;
  /** Names of the task cgroups under the parent now. */
  list(): Promise<string[]>;
  /**
   * Removes the parent cgroup if no task cgroup is left in it (an agent leaving with nothing
   * running, so stopped cells leave no empty directories behind). A parent still in use, or
   * already gone, stays as it is; any other failure rejects.
   */
  removeParentIfEmpty(): Promise<void>;
}


/** cgroups cannot be used for enforcement here: not mounted, a controller missing, or not writable. */
export class CgroupUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CgroupUnavailableError';
  }
}

/** Used when a task asks for no particular number of processes. */
export const DEFAULT_PIDS_LIMIT = 1024;
export const CPU_PERIOD_US = 100_000;
/** The kernel refuses a CFS quota under 1 ms. */
const MIN_QUOTA_US = 1_000;

/**
 * The cgroup limits for a task's resources: CPU quota = cpuMillis / 1000 CPUs per period
 * (none for 0), shares = cpuMillis × 1024 / 1000 (at least 2), weight converted from shares as
 * runc does, memory = memoryBytes (none for 0), pids = `pidsLimit` or {@link DEFAULT_PIDS_LIMIT}.
 */
export function cgroupLimits(resources: Resources, pidsLimit = 0): CgroupLimits {
  const cpuShares = Math.min(262_144, Math.max(2, Math.round((resources.cpuMillis * 1024) / 1000)));
  return {
    cpuQuotaUs: resources.cpuMillis > 0 ? Math.max(MIN_QUOTA_US, Math.round((resources.cpuMillis * CPU_PERIOD_US) / 1000)) : undefined,
    cpuPeriodUs: CPU_PERIOD_US,
    cpuShares,
    cpuWeight: Math.min(10_000, 1 + Math.floor(((cpuShares - 2) * 9999) / 262_142)),
    memoryBytes: resources.memoryBytes > 0 ? resources.memoryBytes : undefined,
    pidsMax: pidsLimit > 0 ? pidsLimit : DEFAULT_PIDS_LIMIT,
  };
}

// ---- helpers shared by both versions --------------------------------------------------------

export async function fileExists(path: string): Promise<boolean> {
  try {
    // F_OK only: some interface files are write-only (cgroup.kill) and still count.
    accessSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes one interface file; the error names the file and value. */
export async function writeControl(path: string, value: string): Promise<void> {
  try {
    writeFileSync(path, value);
  } catch (error) {
    throw new Error(`could not write ${JSON.stringify(value)} to ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Reads an interface file; undefined when it does not exist. */
export async function readControl(path: string): Promise<string | undefined> {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The pids listed in a `cgroup.procs` / `tasks` file (none when it does not exist). */
export async function readPids(path: string): Promise<number[]> {
  const text = await readControl(path);
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isSafeInteger(pid) && pid > 0);
}

/** A `key value` line of a flat-keyed file (`memory.events`, `cpu.stat`, `memory.oom_control`). */
export function keyedValue(text: string | undefined, key: string): number | undefined {
  if (text === undefined) return undefined;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined) {
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    }
  }
  return undefined;
}

/** Sends a signal to each pid, ignoring ones that are already gone. Returns how many were sent. */
export function signalPids(pids: readonly number[], signal: NodeJS.Signals): number {
  let sent = 0;
  for (const pid of pids) {
    // Never signal ourselves, init, or a process group by accident.
    if (pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, signal);
      sent++;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  return sent;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How long killAll keeps trying before it gives up with an error (a process stuck in D state). */
export const KILL_TIMEOUT_MS = 30_000;

/**
 * Removes an (empty) cgroup directory. The kernel answers EBUSY for a moment after the last
 * process exited (it is still being torn down): retried for up to 5 s. Gone already: fine.
 */
export async function removeCgroupDir(dir: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) throw new Error(`could not remove cgroup ${dir}: ${(error as Error).message}`, { cause: error });
      await sleep(50);
    }
  }
}
/** rmdir that leaves a non-empty, busy or missing cgroup directory alone. */
export async function removeCgroupDirIfEmpty(dir: string): Promise<void> {
  try {
    rmdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw error;
  }
}
