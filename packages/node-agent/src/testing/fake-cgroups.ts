/**
 * Fake cgroup roots for tests: temporary directories holding the files a kernel would show, so
 * the v1 and v2 drivers can be run and the exact files and values they write asserted without
 * root or a cgroup mount. The kernel's behaviour behind the files (limits, kills, counters) is of
 * course not there: a test writes counters itself where it needs them.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeCgroupRoot {
  /** Pass as the driver's root. */
  readonly root: string;
  /** Removes the whole fake tree. */
  cleanup(): Promise<void>;
}

async function files(dir: string, entries: Readonly<Record<string, string>>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(entries)) await writeFile(join(dir, name), content);
}

/**
 * A cgroup2 root with every controller available and none enabled, and the agent's `parent`
 * cgroup already there with the optional files of a recent kernel (each can be left out).
 */
export async function fakeCgroupV2(options: { parent?: string; swapMax?: boolean; oomGroup?: boolean; kill?: boolean; peak?: boolean } = {}): Promise<FakeCgroupRoot> {
  const root = await mkdtemp(join(tmpdir(), 'omega-fake-cgroup2-'));
  await files(root, { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n', 'cgroup.subtree_control': '\n', 'cgroup.procs': '' });
  const parent: Record<string, string> = { 'cgroup.controllers': 'cpu memory pids\n', 'cgroup.subtree_control': '\n', 'cgroup.procs': '' };
  if (options.swapMax !== false) parent['memory.swap.max'] = 'max\n';
  if (options.oomGroup !== false) parent['memory.oom.group'] = '0\n';
  if (options.kill !== false) parent['cgroup.kill'] = '';
  if (options.peak !== false) parent['memory.peak'] = '0\n';
  await files(join(root, ...(options.parent ?? 'omega').split('/')), parent);
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/**
 * A cgroup v1 root: `cpu,cpuacct` mounted together (with `cpu` and `cpuacct` links to it, as
 * systemd lays it out) unless `combinedCpu: false`, then memory, pids and (unless `freezer:
 * false`) freezer. The memory parent has `memory.memsw.limit_in_bytes` unless `memsw: false`.
 */
export async function fakeCgroupV1(options: { parent?: string; combinedCpu?: boolean; freezer?: boolean; memsw?: boolean } = {}): Promise<FakeCgroupRoot> {
  const root = await mkdtemp(join(tmpdir(), 'omega-fake-cgroup1-'));
  const parent = (options.parent ?? 'omega').split('/');
  const hierarchy = async (name: string, parentFiles: Record<string, string> = {}): Promise<void> => {
    await files(join(root, name), { 'cgroup.procs': '', tasks: '' });
    await files(join(root, name, ...parent), { 'cgroup.procs': '', tasks: '', ...parentFiles });
  };
  if (options.combinedCpu === false) {
    await hierarchy('cpu');
    await hierarchy('cpuacct');
  } else {
    await hierarchy('cpu,cpuacct');
    await symlink('cpu,cpuacct', join(root, 'cpu'));
    await symlink('cpu,cpuacct', join(root, 'cpuacct'));
  }
  await hierarchy('memory', options.memsw === false ? {} : { 'memory.memsw.limit_in_bytes': '9223372036854771712\n' });
  await hierarchy('pids');
  if (options.freezer !== false) await hierarchy('freezer');
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}
