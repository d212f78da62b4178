/**
 * Picks the cgroup driver for this machine, once, at agent start:
 *
 * - `<root>/cgroup.controllers` exists: the root is a cgroup2 mount (the unified hierarchy, what
 *   most current systems run): v2.
 * - else `<root>/memory`, `<root>/cpu`, ... exist: v1 (legacy, or "hybrid" systemd layouts
 *   where a cgroup2 at `<root>/unified` carries only process tracking and no controllers: it is
 *   ignored).
 * - else, or when the parent cgroup cannot be created and configured: no enforcement is
 *   possible, and the agent refuses to run unless told `--no-enforcement`.
 */
import { join } from 'node:path';
import { fileExists, type CgroupDriver } from './cgroup-driver.js';
import { CgroupV1Driver } from './cgroup-v1.js';
import { CgroupV2Driver } from './cgroup-v2.js';
import { OwnedCgroupDriver, type CgroupOwnerOptions } from './cgroup-owner.js';

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';
/**
 * The first segment of the default cgroup parent. The default parent is
 * `omega/<machine id>` ({@link defaultCgroupParent}): unique to the machine, so two agents on
 * one host (say, two cells) never share it unless told to.
 */
export const DEFAULT_CGROUP_PARENT = 'omega';

/** `omega/<machine id>`: the machine id passes cell-state's checkId, which is a safe cgroup name. */
export function defaultCgroupParent(machineId: string): string {
  return `${DEFAULT_CGROUP_PARENT}/${machineId}`;
}

/** A prepared driver, or why there is none. */
export type CgroupDetection = { readonly driver: CgroupDriver; readonly problem?: undefined } | { readonly driver?: undefined; readonly problem: string };

/**
 * Detects the cgroup version under `root` and prepares the agent's `parent` cgroup. Never
 * throws for an unusable machine: the problem comes back as a value, for the caller to refuse
 * to start or to run without enforcement, loudly.
 */
/**
 * With `owner`, the driver marks the task cgroups it creates in that data directory and lists
 * only those (cgroup-owner.ts): what the agent runs with, so that it never sweeps another
 * agent's cgroups. Without, it lists everything under the parent (tests, tools).
 */
export async function detectCgroupDriver(options: { root?: string; parent?: string; owner?: Omit<CgroupOwnerOptions, 'parent'> } = {}): Promise<CgroupDetection> {
  const root = options.root ?? DEFAULT_CGROUP_ROOT;
  const parent = options.parent ?? DEFAULT_CGROUP_PARENT;
  let driver: CgroupDriver;
  if (await fileExists(join(root, 'cgroup.controllers'))) driver = new CgroupV2Driver(root, parent);
  else if ((await fileExists(join(root, 'memory'))) || (await fileExists(join(root, 'cpu')))) driver = new CgroupV1Driver(root, parent);
  else return { problem: `no cgroup hierarchy at ${root} (neither a cgroup2 mount nor v1 controllers)` };
  if (options.owner !== undefined) {
    // The default parent used to be `omega` itself: tasks an earlier agent left running there
    // are still found by name (adopted, stopped, cleaned up), never swept.
    const legacy = parent === defaultCgroupParent(options.owner.machineId) ? (driver.version === 'v2' ? new CgroupV2Driver(root, DEFAULT_CGROUP_PARENT) : new CgroupV1Driver(root, DEFAULT_CGROUP_PARENT)) : undefined;
    driver = new OwnedCgroupDriver(driver, { ...options.owner, parent, ...(legacy === undefined ? {} : { legacy }) });
  }
  try {
    // The owned driver's prepare() prepares the legacy parent too.
    await driver.prepare();
    return { driver };
  } catch (error) {
    return { problem: `cgroup ${driver.version} at ${root}: ${(error as Error).message}` };
  }
}
