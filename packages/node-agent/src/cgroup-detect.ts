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

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';
export const DEFAULT_CGROUP_PARENT = 'omega';

/** A prepared driver, or why there is none. */
export type CgroupDetection = { readonly driver: CgroupDriver; readonly problem?: undefined } | { readonly driver?: undefined; readonly problem: string };

/**
 * Detects the cgroup version under `root` and prepares the agent's `parent` cgroup. Never
 * throws for an unusable machine: the problem comes back as a value, for the caller to refuse
 * to start or to run without enforcement, loudly.
 */
export async function detectCgroupDriver(options: { root?: string; parent?: string } = {}): Promise<CgroupDetection> {
  const root = options.root ?? DEFAULT_CGROUP_ROOT;
  const parent = options.parent ?? DEFAULT_CGROUP_PARENT;
  let driver: CgroupDriver;
  if (await fileExists(join(root, 'cgroup.controllers'))) driver = new CgroupV2Driver(root, parent);
  else if ((await fileExists(join(root, 'memory'))) || (await fileExists(join(root, 'cpu')))) driver = new CgroupV1Driver(root, parent);
  else return { problem: `no cgroup hierarchy at ${root} (neither a cgroup2 mount nor v1 controllers)` };
  try {
    await driver.prepare();
    return { driver };
  } catch (error) {
    return { problem: `cgroup ${driver.version} at ${root}: ${(error as Error).message}` };
  }
}
