import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCgroupV1, type FakeCgroupRoot } from './testing/index.js';
import { cgroupLimits } from './cgroup-driver.js';
import { detectCgroupDriver } from './cgroup-detect.js';
import { CgroupV1Driver } from './cgroup-v1.js';

const MiB = 1024 ** 2;
const read = (path: string): Promise<string> => readFile(path, 'utf8');
const listFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

describe('the cgroup v1 driver', () => {
  let fake: FakeCgroupRoot | undefined;
  afterEach(async () => {
    await fake?.cleanup();
    fake = undefined;
  });

  it('writes exactly the cpu, memory, memsw and pids limits, once per mounted hierarchy', async () => {
    fake = await fakeCgroupV1();
    const driver = new CgroupV1Driver(fake.root, 'omega');
    await driver.prepare();
    const cgroup = await driver.create('web~0~1', cgroupLimits({ cpuMillis: 500, memoryBytes: 32 * MiB }, 0));
    const cpu = join(fake.root, 'cpu,cpuacct', 'omega', 'web~0~1');
    const memory = join(fake.root, 'memory', 'omega', 'web~0~1');
    const pids = join(fake.root, 'pids', 'omega', 'web~0~1');
    expect(await listFiles(cpu)).toEqual(['cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.shares']);
    expect(await read(join(cpu, 'cpu.cfs_period_us'))).toBe('100000');
    expect(await read(join(cpu, 'cpu.cfs_quota_us'))).toBe('50000');
    expect(await read(join(cpu, 'cpu.shares'))).toBe('512');
    expect(await listFiles(memory)).toEqual(['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes']);
    expect(await read(join(memory, 'memory.limit_in_bytes'))).toBe(String(32 * MiB));
    expect(await read(join(memory, 'memory.memsw.limit_in_bytes'))).toBe(String(32 * MiB));
    expect(await listFiles(pids)).toEqual(['pids.max']);
    expect(await read(join(pids, 'pids.max'))).toBe('1024');
    expect(await listFiles(join(fake.root, 'freezer', 'omega', 'web~0~1'))).toEqual([]);
    // cpu and cpuacct are one hierarchy: one procs write for both.
    expect(cgroup.procsFiles).toEqual([
      join(fake.root, 'cpu,cpuacct', 'omega', 'web~0~1', 'cgroup.procs'),
      join(fake.root, 'memory', 'omega', 'web~0~1', 'cgroup.procs'),
      join(fake.root, 'pids', 'omega', 'web~0~1', 'cgroup.procs'),
      join(fake.root, 'freezer', 'omega', 'web~0~1', 'cgroup.procs'),
    ]);
  });

  it('uses separate cpu and cpuacct hierarchies, without memsw or freezer, and -1 for no limit', async () => {
    fake = await fakeCgroupV1({ combinedCpu: false, memsw: false, freezer: false });
    const driver = new CgroupV1Driver(fake.root, 'omega/agents');
    await driver.prepare();
    const cgroup = await driver.create('b~2~3', cgroupLimits({ cpuMillis: 0, memoryBytes: 0 }, 10));
    const base = (c: string): string => join(fake!.root, c, 'omega', 'agents', 'b~2~3');
    expect(await read(join(base('cpu'), 'cpu.cfs_quota_us'))).toBe('-1');
    expect(await read(join(base('cpu'), 'cpu.shares'))).toBe('2');
    expect(await listFiles(base('memory'))).toEqual(['memory.limit_in_bytes']);
    expect(await read(join(base('memory'), 'memory.limit_in_bytes'))).toBe('-1');
    expect(await read(join(base('pids'), 'pids.max'))).toBe('10');
    expect(await listFiles(base('cpuacct'))).toEqual([]);
    expect(cgroup.procsFiles.map((f) => f.slice(fake!.root.length))).toEqual([
      '/cpu/omega/agents/b~2~3/cgroup.procs',
      '/cpuacct/omega/agents/b~2~3/cgroup.procs',
      '/memory/omega/agents/b~2~3/cgroup.procs',
      '/pids/omega/agents/b~2~3/cgroup.procs',
    ]);
  });

  it('reads CPU seconds from cpuacct.usage, peak memory, and OOM kills from memory.oom_control', async () => {
    fake = await fakeCgroupV1();
    const driver = new CgroupV1Driver(fake.root, 'omega');
    await driver.prepare();
    const cgroup = await driver.create('j~0~1', cgroupLimits({ cpuMillis: 100, memoryBytes: MiB }));
    await writeFile(join(fake.root, 'cpu,cpuacct', 'omega', 'j~0~1', 'cpuacct.usage'), '1500000000\n');
    const memory = join(fake.root, 'memory', 'omega', 'j~0~1');
    await writeFile(join(memory, 'memory.max_usage_in_bytes'), '1048576\n');
    await writeFile(join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    expect(await cgroup.usage()).toEqual({ cpuSeconds: 1.5, peakMemoryBytes: 1048576, oomKills: 2 });
  });

  it('falls back to failcnt at the limit on kernels that do not count OOM kills', async () => {
    fake = await fakeCgroupV1();
    const driver = new CgroupV1Driver(fake.root, 'omega');
    await driver.prepare();
    const cgroup = await driver.create('j~0~1', cgroupLimits({ cpuMillis: 100, memoryBytes: MiB }));
    const memory = join(fake.root, 'memory', 'omega', 'j~0~1');
    await writeFile(join(memory, 'memory.max_usage_in_bytes'), `${MiB}\n`);
    await writeFile(join(memory, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\n');
    await writeFile(join(memory, 'memory.failcnt'), '7\n');
    expect((await cgroup.usage()).oomKills).toBe(1);
  });

  it('is detected when the root holds v1 controllers, and a missing pids controller is named', async () => {
    fake = await fakeCgroupV1();
    expect((await detectCgroupDriver({ root: fake.root, parent: 'omega' })).driver?.version).toBe('v1');
    const bare = await fakeCgroupV1();
    try {
      const { rm } = await import('node:fs/promises');
      await rm(join(bare.root, 'pids'), { recursive: true });
      expect((await detectCgroupDriver({ root: bare.root, parent: 'omega' })).problem).toMatch(/controller pids is not mounted/);
    } finally {
      await bare.cleanup();
    }
  });
});
