/**
 * cgroup v1 (one hierarchy per controller, or a few controllers mounted together):
 *
 * ```
 * <root>/cpu/<parent>/<job>~<index>~<attempt>/      cpu.cfs_period_us, cpu.cfs_quota_us, cpu.shares
 * <root>/cpuacct/<parent>/<name>/                   cpuacct.usage (read)
 * <root>/memory/<parent>/<name>/                    memory.limit_in_bytes, memory.memsw.limit_in_bytes
 *                                                   (when swap accounting is on); memory.oom_control,
 *                                                   memory.max_usage_in_bytes (read)
 * <root>/pids/<parent>/<name>/                      pids.max
 * <root>/freezer/<parent>/<name>/                   freezer.state (to kill without racing forks)
 * ```
 *
 * Controllers mounted together (`cpu,cpuacct` with `cpu` and `cpuacct` as links to it) are
 * found by resolving each controller's directory: one cgroup directory and one `cgroup.procs`
 * write per distinct hierarchy. The freezer is optional.
 */
import { mkdirSync } from 'node:fs';
import { mkdir, readdir, realpath } from 'node:fs/promises';
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

export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number] | 'freezer';

/** One mounted hierarchy: the controllers it carries and the agent's parent cgroup in it. */
interface Hierarchy {
  readonly controllers: readonly V1Controller[];
  readonly parentDir: string;
}

interface V1Features {
  readonly memsw: boolean;
}

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 'v1' as const;
  private readonly segments: string[];
  private hierarchies: Hierarchy[] = [];
  private features: V1Features = { memsw: false };

  /** `root`: where the controllers are mounted (`/sys/fs/cgroup`); `parent`: e.g. `omega`. */
  constructor(
    readonly root: string,
    parent: string,
  ) {
    this.segments = cgroupParentSegments(parent);
  }

  async prepare(): Promise<void> {
    const byMount = new Map<string, V1Controller[]>();
    for (const controller of [...V1_CONTROLLERS, 'freezer'] as const) {
      const dir = join(this.root, controller);
      let real: string;
      try {
        real = await realpath(dir);
      } catch {
        if (controller === 'freezer') continue;
        throw new CgroupUnavailableError(`cgroup v1 controller ${controller} is not mounted at ${dir}`);
      }
      if (!(await fileExists(join(real, 'cgroup.procs')))) {
        if (controller === 'freezer') continue;
        throw new CgroupUnavailableError(`${dir} is not a cgroup v1 hierarchy (no cgroup.procs)`);
      }
      byMount.set(real, [...(byMount.get(real) ?? []), controller]);
    }
    this.hierarchies = [...byMount].map(([mount, controllers]) => ({ controllers, parentDir: insideRoot(mount, ...this.segments) }));
    try {
      for (const h of this.hierarchies) await mkdir(h.parentDir, { recursive: true });
    } catch (error) {
      throw new CgroupUnavailableError(`cannot create the parent cgroup ${this.segments.join('/')} under ${this.root}: ${(error as Error).message}`, { cause: error });
    }
    this.features = { memsw: await fileExists(join(this.dirOf('memory'), 'memory.memsw.limit_in_bytes')) };
  }

  /** The parent cgroup directory in the hierarchy carrying `controller`. */
  private dirOf(controller: V1Controller): string {
    const h = this.hierarchies.find((x) => x.controllers.includes(controller));
    if (h === undefined) throw new Error(`cgroup v1 driver: ${controller} is not prepared (call prepare() first)`);
    return h.parentDir;
  }

  async create(name: string, limits: CgroupLimits): Promise<TaskCgroup> {
    const cgroup = this.open(name) as CgroupV1;
    // Synchronous, as every interface file access (see cgroup-driver.ts): cgroupfs is memory.
    for (const dir of cgroup.dirs) {
      try {
        mkdirSync(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    const cpu = insideRoot(this.dirOf('cpu'), name);
    await writeControl(join(cpu, 'cpu.cfs_period_us'), String(limits.cpuPeriodUs));
    await writeControl(join(cpu, 'cpu.cfs_quota_us'), String(limits.cpuQuotaUs ?? -1));
    await writeControl(join(cpu, 'cpu.shares'), String(limits.cpuShares));
    const memory = insideRoot(this.dirOf('memory'), name);
    // The memory limit first: memsw must never be below it.
    await writeControl(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes ?? -1));
    if (this.features.memsw) await writeControl(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes ?? -1));
    await writeControl(join(insideRoot(this.dirOf('pids'), name), 'pids.max'), String(limits.pidsMax));
    return cgroup;
  }

  open(name: string): TaskCgroup {
    const dir = (c: V1Controller): string => insideRoot(this.dirOf(c), name);
    const freezer = this.hierarchies.some((h) => h.controllers.includes('freezer')) ? dir('freezer') : undefined;
    return new CgroupV1(name, this.hierarchies.map((h) => insideRoot(h.parentDir, name)), { cpuacct: dir('cpuacct'), memory: dir('memory'), freezer });
  }

  async list(): Promise<string[]> {
    const entries = await readdir(this.dirOf('memory'), { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async removeParentIfEmpty(): Promise<void> {
    for (const h of this.hierarchies) await removeCgroupDirIfEmpty(h.parentDir);
  }
}

class CgroupV1 implements TaskCgroup {
  readonly procsFiles: readonly string[];

  constructor(
    readonly name: string,
    /** The cgroup's directory in every hierarchy. */
    readonly dirs: readonly string[],
    private readonly at: { readonly cpuacct: string; readonly memory: string; readonly freezer: string | undefined },
  ) {
    this.procsFiles = dirs.map((d) => join(d, 'cgroup.procs'));
  }

  exists(): Promise<boolean> {
    return fileExists(this.at.memory);
  }

  /** Every process in any of its hierarchies (they are the same set unless a join half failed). */
  async pids(): Promise<number[]> {
    const all = new Set<number>();
    for (const file of this.procsFiles) for (const pid of await readPids(file)) all.add(pid);
    return [...all];
  }

  async signal(signal: NodeJS.Signals): Promise<number> {
    return signalPids(await this.pids(), signal);
  }

  async killAll(): Promise<void> {
    const deadline = Date.now() + KILL_TIMEOUT_MS;
    for (;;) {
      let pids = await this.pids();
      if (pids.length === 0) return;
      if (Date.now() > deadline) throw new Error(`cgroup ${this.name} still has processes ${pids.join(', ')} after ${KILL_TIMEOUT_MS} ms of SIGKILL`);
      // Frozen processes cannot fork between our read of cgroup.procs and the kill; they die
      // as soon as they are thawed.
      const frozen = await this.freeze();
      if (frozen) pids = await this.pids();
      signalPids(pids, 'SIGKILL');
      if (frozen) await this.thaw();
      await sleep(20);
    }
  }

  private async freeze(): Promise<boolean> {
    if (this.at.freezer === undefined) return false;
    const state = join(this.at.freezer, 'freezer.state');
    try {
      await writeControl(state, 'FROZEN');
      for (let i = 0; i < 100; i++) {
        if ((await readControl(state))?.trim() === 'FROZEN') return true;
        await sleep(10);
      }
    } catch {
      // No freezer for this cgroup after all: plain repeated kills still get there.
    }
    return false;
  }

  private async thaw(): Promise<void> {
    if (this.at.freezer === undefined) return;
    await writeControl(join(this.at.freezer, 'freezer.state'), 'THAWED').catch(() => undefined);
  }

  async usage(): Promise<CgroupUsage> {
    const cpuNs = Number((await readControl(join(this.at.cpuacct, 'cpuacct.usage')))?.trim() ?? 0) || 0;
    const peak = Number((await readControl(join(this.at.memory, 'memory.max_usage_in_bytes')))?.trim() ?? 0) || 0;
    const oomControl = await readControl(join(this.at.memory, 'memory.oom_control'));
    let oomKills = keyedValue(oomControl, 'oom_kill');
    if (oomKills === undefined) {
      // Kernels before 4.13 do not count OOM kills: hitting the limit and failing to charge is
      // the best evidence they give.
      const failcnt = Number((await readControl(join(this.at.memory, 'memory.failcnt')))?.trim() ?? 0) || 0;
      const limit = Number((await readControl(join(this.at.memory, 'memory.limit_in_bytes')))?.trim() ?? 0) || 0;
      oomKills = failcnt > 0 && limit > 0 && peak >= limit ? 1 : 0;
    }
    return { cpuSeconds: cpuNs / 1e9, peakMemoryBytes: peak, oomKills };
  }

  async remove(): Promise<void> {
    for (const dir of this.dirs) await removeCgroupDir(dir);
  }
}
