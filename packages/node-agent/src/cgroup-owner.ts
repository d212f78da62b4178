/**
 * Which task cgroups this agent created. Several agents may share one cgroup parent (an
 * explicit `--cgroup-parent`, or an operator's mistake); each must clean up only what it made.
 *
 * The owner marker is a file per task cgroup in the agent's own data directory:
 *
 * ```
 * <data dir>/cgroups/<job>~<index>~<attempt>    {"parent": "<absolute parent cgroup>", "machineId": ..., "createdAtMs": ...}
 * ```
 *
 * written before the cgroup is made and removed after it is gone. It survives an agent
 * restart (the data directory does), a task cannot forge it (the directory is root's, 0700,
 * and outside every task's reach), and it costs one small file per running task. A cgroup
 * under the parent without a marker here belongs to someone else (another agent, another data
 * directory): {@link OwnedCgroupDriver.list} leaves it out, so the start-up sweep of cgroups
 * with no task directory never touches it. A marker naming another parent (the agent was
 * restarted with another `--cgroup-parent`) is not ours in this parent either.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { CgroupDriver, CgroupLimits, CgroupUsage, TaskCgroup } from './cgroup-driver.js';
import { isTaskInstanceName, insideRoot } from './task-paths.js';
import { writeJsonVolatile } from './task-files.js';

/** The marker directory inside the agent's data directory. */
export const CGROUP_MARKERS_DIR = 'cgroups';

/** What a marker file holds. */
export interface CgroupMarker {
  /** The absolute path of the parent cgroup (per hierarchy root: `<root>/<parent>`). */
  readonly parent: string;
  readonly machineId: string;
  readonly createdAtMs: number;
}

export interface CgroupOwnerOptions {
  /** The agent's data directory; markers go to `<dataDir>/cgroups/`. */
  readonly dataDir: string;
  /** The agent's cgroup parent (`--cgroup-parent`), relative to the hierarchy root. */
  readonly parent: string;
  readonly machineId: string;
  readonly logger?: Logger;
  /**
   * The parent an earlier agent on this machine used (`omega`, the default before it became
   * `omega/<machine id>`): a task cgroup opened by name (adoption after a restart, cleanup of an
   * attempt found on disk) that is not under `parent` but is there is used from there. Never
   * listed or swept: only a task directory of this agent's own leads to it.
   */
  readonly legacy?: CgroupDriver;
}

/**
 * A {@link CgroupDriver} that marks every task cgroup it creates as this agent's, and lists only
 * marked ones. Everything else is delegated unchanged.
 */
export class OwnedCgroupDriver implements CgroupDriver {
  readonly version: CgroupDriver['version'];
  readonly root: string;
  private readonly markersDir: string;
  private readonly parentPath: string;
  private readonly logger: Logger;
  /** The prepared legacy driver (see {@link CgroupOwnerOptions.legacy}). */
  private legacy: CgroupDriver | undefined;

  constructor(
    private readonly inner: CgroupDriver,
    private readonly options: CgroupOwnerOptions,
  ) {
    this.version = inner.version;
    this.root = inner.root;
    this.markersDir = join(options.dataDir, CGROUP_MARKERS_DIR);
    this.parentPath = join(inner.root, options.parent.replace(/^\/+/, ''));
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'cgroup-owner' });
  }

  /** Prepares the parent cgroup and the marker directory (root's, 0700). */
  async prepare(): Promise<void> {
    await this.inner.prepare();
    try {
      // The current parent is inside it on a default layout: nothing new is made.
      await this.options.legacy?.prepare();
      this.legacy = this.options.legacy;
    } catch (error) {
      this.logger.warn({ err: error }, 'cannot look for task cgroups in the earlier default parent; tasks left there are not found');
    }
    mkdirSync(this.options.dataDir, { recursive: true, mode: 0o755 });
    mkdirSync(this.markersDir, { recursive: true, mode: 0o700 });
  }

  async create(name: string, limits: CgroupLimits): Promise<TaskCgroup> {
    // The marker first: a crash between the two leaves a marker without a cgroup (harmless,
    // dropped by the next sweep), never a cgroup of ours without a marker (leaked for good).
    // Not fsynced: it survives the agent's death in the page cache, and a machine crash takes
    // every cgroup with it (cgroupfs is in memory), so none needs a marker. Synchronous: four
    // syscalls, cheaper than the same through fs/promises and libuv's threads.
    writeJsonVolatile(this.markerPath(name), { parent: this.parentPath, machineId: this.options.machineId, createdAtMs: Date.now() } satisfies CgroupMarker, 0o600);
    return this.withMarker(await this.inner.create(name, limits));
  }

  open(name: string): TaskCgroup {
    const legacy = this.legacy;
    return this.withMarker(legacy === undefined ? this.inner.open(name) : new FirstExisting(this.inner.open(name), legacy.open(name)));
  }

  /**
   * The task cgroups under the parent that carry this agent's marker. Markers whose cgroup is
   * gone are removed; cgroups of others are counted and logged, never returned.
   */
  async list(): Promise<string[]> {
    const present = new Set(await this.inner.list());
    const ours: string[] = [];
    for (const name of this.markedNames()) {
      if (present.has(name)) ours.push(name);
      else this.dropMarker(name);
    }
    const foreign = [...present].filter((name) => !ours.includes(name));
    if (foreign.length > 0) this.logger.info({ parent: this.parentPath, cgroups: foreign.length, example: foreign[0] }, 'cgroups under the parent not created by this agent; left alone');
    return ours;
  }

  /** The parent only: an earlier default parent is shared with whatever else is left there. */
  removeParentIfEmpty(): Promise<void> {
    return this.inner.removeParentIfEmpty();
  }

  /** Whether this agent's marker is on the task cgroup `name`. */
  owns(name: string): boolean {
    return this.readMarker(name)?.parent === this.parentPath;
  }

  private markedNames(): string[] {
    let entries: string[];
    try {
      entries = readdirSync(this.markersDir);
    } catch {
      return [];
    }
    return entries.filter((name) => isTaskInstanceName(name) && this.owns(name));
  }

  private readMarker(name: string): CgroupMarker | undefined {
    try {
      return JSON.parse(readFileSync(this.markerPath(name), 'utf8')) as CgroupMarker;
    } catch {
      return undefined;
    }
  }

  private markerPath(name: string): string {
    // insideRoot refuses names that would leave the directory (the cgroup name is checked the same way).
    return insideRoot(this.markersDir, name);
  }

  private dropMarker(name: string): void {
    try {
      rmSync(this.markerPath(name), { force: true });
    } catch (error) {
      this.logger.warn({ err: error, cgroup: name }, 'could not remove a cgroup owner marker');
    }
  }

  /** The cgroup, whose `remove()` also drops its marker once the cgroup is gone. */
  private withMarker(cgroup: TaskCgroup): TaskCgroup {
    const remove = async (): Promise<void> => {
      await cgroup.remove();
      this.dropMarker(cgroup.name);
    };
    return new Proxy(cgroup, {
      get(target, property, receiver) {
        if (property === 'remove') return remove;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}

/**
 * A task cgroup that may be in either of two parents: each call goes to the first that exists
 * (the current parent when neither does). `procsFiles` are the current parent's: a cgroup
 * that is joined is one just created, always there.
 */
class FirstExisting implements TaskCgroup {
  readonly name: string;
  readonly procsFiles: readonly string[];

  constructor(
    private readonly current: TaskCgroup,
    private readonly earlier: TaskCgroup,
  ) {
    this.name = current.name;
    this.procsFiles = current.procsFiles;
  }

  private async target(): Promise<TaskCgroup> {
    if (await this.current.exists()) return this.current;
    return (await this.earlier.exists()) ? this.earlier : this.current;
  }

  async exists(): Promise<boolean> {
    return (await this.current.exists()) || (await this.earlier.exists());
  }

  async pids(): Promise<number[]> {
    return (await this.target()).pids();
  }

  async signal(signal: NodeJS.Signals): Promise<number> {
    return (await this.target()).signal(signal);
  }

  async killAll(): Promise<void> {
    return (await this.target()).killAll();
  }

  async usage(): Promise<CgroupUsage> {
    return (await this.target()).usage();
  }

  async remove(): Promise<void> {
    return (await this.target()).remove();
  }
}
