/**
 * cgroup v2 (the unified hierarchy, `/sys/fs/cgroup` on current distributions):
 *
 * ```
 * <root>/                       cgroup.subtree_control += cpu memory pids
 *   <parent>/ (omega)           cgroup.subtree_control += cpu memory pids   (holds no process)
 *     <job>~<index>~<attempt>/  cpu.max, cpu.weight, memory.max, memory.swap.max = 0,
 *                               memory.oom.group = 1, pids.max; cgroup.procs; cgroup.kill
 * ```
 *
 * `memory.oom.group` makes an OOM kill take the whole task, not one random process of it.
 * Optional files (`memory.swap.max` without swap accounting, `memory.oom.group`, `cgroup.kill`
 * before 5.14, `memory.peak` before 5.19) are detected once on the parent cgroup.
 */
import { mkdirSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CgroupUnavailableError,
  fileExists,
  keyedValue,
  KILL_TIMEOUT_MS,
  readControl,
  readPids,
  removeCgroupDir,
  removeCgroupDirIfEmpty,
  signalPids,
  sleep,
  writeControl,
  type CgroupDriver,
  type CgroupLimits,
  type CgroupUsage,
  type TaskCgroup,
} from './cgroup-driver.js';
import { cgroupParentSegments, insideRoot } from './task-paths.js';

/** The controllers a task cgroup needs. */
export const V2_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

interface V2Features {
  readonly swapMax: boolean;
  readonly oomGroup: boolean;
  readonly kill: boolean;
  readonly peak: boolean;
}

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 'v2' as const;
  private readonly segments: string[];
  private readonly parentDir: string;
  private features: V2Features = { swapMax: false, oomGroup: false, kill: false, peak: false };

  /** `root`: the cgroup2 mount; `parent`: the agent's cgroup under it (e.g. `omega`). */
  constructor(
    readonly root: string,
    parent: string,
  ) {
    this.segments = cgroupParentSegments(parent);
    this.parentDir = insideRoot(root, ...this.segments);
  }

  async prepare(): Promise<void> {
    const controllers = await readControl(join(this.root, 'cgroup.controllers'));
    if (controllers === undefined) throw new CgroupUnavailableError(`no cgroup2 hierarchy at ${this.root} (no cgroup.controllers)`);
    const available = new Set(controllers.trim().split(/\s+/));
    const missing = V2_CONTROLLERS.filter((c) => !available.has(c));
    if (missing.length > 0) throw new CgroupUnavailableError(`cgroup2 at ${this.root} lacks the ${missing.join(', ')} controller(s) (has: ${controllers.trim() || 'none'})`);
    try {
      let dir = this.root;
      for (const segment of this.segments) {
        await enableControllers(dir);
        dir = join(dir, segment);
        await mkdir(dir, { recursive: true });
      }
      await enableControllers(this.parentDir);
    } catch (error) {
      throw new CgroupUnavailableError(`cannot prepare cgroup ${this.parentDir}: ${(error as Error).message}`, { cause: error });
    }
    const has = (file: string): Promise<boolean> => fileExists(join(this.parentDir, file));
    this.features = { swapMax: await has('memory.swap.max'), oomGroup: await has('memory.oom.group'), kill: await has('cgroup.kill'), peak: await has('memory.peak') };
  }

  async create(name: string, limits: CgroupLimits): Promise<TaskCgroup> {
    const dir = insideRoot(this.parentDir, name);
    // Synchronous, as every interface file access (see cgroup-driver.ts): cgroupfs is memory.
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    await writeControl(join(dir, 'cpu.max'), `${limits.cpuQuotaUs ?? 'max'} ${limits.cpuPeriodUs}`);
    await writeControl(join(dir, 'cpu.weight'), String(limits.cpuWeight));
    await writeControl(join(dir, 'memory.max'), limits.memoryBytes === undefined ? 'max' : String(limits.memoryBytes));
    // No swap beyond the memory limit: a task over its limit is killed, not swapped out.
    if (this.features.swapMax) await writeControl(join(dir, 'memory.swap.max'), '0');
    if (this.features.oomGroup) await writeControl(join(dir, 'memory.oom.group'), '1');
    await writeControl(join(dir, 'pids.max'), String(limits.pidsMax));
    return this.open(name);
  }

  open(name: string): TaskCgroup {
    return new CgroupV2(name, insideRoot(this.parentDir, name), this.features);
  }

  async list(): Promise<string[]> {
    const entries = await readdir(this.parentDir, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  removeParentIfEmpty(): Promise<void> {
    return removeCgroupDirIfEmpty(this.parentDir);
  }
}

/** Makes `dir`'s children get the task controllers (one write naming every missing one). */
async function enableControllers(dir: string): Promise<void> {
  const file = join(dir, 'cgroup.subtree_control');
  const enabled = new Set(((await readControl(file)) ?? '').trim().split(/\s+/).map((c) => c.replace(/^\+/, '')));
  const missing = V2_CONTROLLERS.filter((c) => !enabled.has(c));
  if (missing.length > 0) await writeControl(file, missing.map((c) => `+${c}`).join(' '));
}

class CgroupV2 implements TaskCgroup {
  readonly procsFiles: readonly string[];

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly features: V2Features,
  ) {
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  exists(): Promise<boolean> {
    return fileExists(this.dir);
  }

  pids(): Promise<number[]> {
    return readPids(join(this.dir, 'cgroup.procs'));
  }

  async signal(signal: NodeJS.Signals): Promise<number> {
    return signalPids(await this.pids(), signal);
  }

  async killAll(): Promise<void> {
    const deadline = Date.now() + KILL_TIMEOUT_MS;
    let usedKillFile = false;
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) return;
      if (Date.now() > deadline) throw new Error(`cgroup ${this.dir} still has processes ${pids.join(', ')} after ${KILL_TIMEOUT_MS} ms of SIGKILL`);
      // cgroup.kill kills every process atomically, forks in flight included.
      if (this.features.kill && !usedKillFile) {
        usedKillFile = true;
        await writeControl(join(this.dir, 'cgroup.kill'), '1').catch(() => undefined);
      } else {
        signalPids(pids, 'SIGKILL');
      }
      await sleep(20);
    }
  }

  async usage(): Promise<CgroupUsage> {
    const cpuStat = await readControl(join(this.dir, 'cpu.stat'));
    const events = await readControl(join(this.dir, 'memory.events'));
    const peak = this.features.peak ? await readControl(join(this.dir, 'memory.peak')) : undefined;
    return {
      cpuSeconds: (keyedValue(cpuStat, 'usage_usec') ?? 0) / 1e6,
      peakMemoryBytes: peak === undefined ? 0 : Number(peak.trim()) || 0,
      oomKills: keyedValue(events, 'oom_kill') ?? 0,
    };
  }

  remove(): Promise<void> {
    return removeCgroupDir(this.dir);
  }
}
