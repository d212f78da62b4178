import { spawn } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCgroupV2, type FakeCgroupRoot } from './testing/index.js';
import { cgroupLimits } from './cgroup-driver.js';
import { detectCgroupDriver } from './cgroup-detect.js';
import { CgroupV2Driver } from './cgroup-v2.js';

const MiB = 1024 ** 2;
const read = (path: string): Promise<string> => readFile(path, 'utf8');

describe('the cgroup v2 driver', () => {
  let fake: FakeCgroupRoot | undefined;
  afterEach(async () => {
    await fake?.cleanup();
    fake = undefined;
  });

  it('enables cpu, memory and pids for the parent and writes exactly the task limits', async () => {
    fake = await fakeCgroupV2();
    const driver = new CgroupV2Driver(fake.root, 'omega');
    await driver.prepare();
    expect(await read(join(fake.root, 'cgroup.subtree_control'))).toBe('+cpu +memory +pids');
    expect(await read(join(fake.root, 'omega', 'cgroup.subtree_control'))).toBe('+cpu +memory +pids');

    const cgroup = await driver.create('web~0~1', cgroupLimits({ cpuMillis: 500, memoryBytes: 32 * MiB }, 0));
    const dir = join(fake.root, 'omega', 'web~0~1');
    expect((await readdir(dir)).sort()).toEqual(['cpu.max', 'cpu.weight', 'memory.max', 'memory.oom.group', 'memory.swap.max', 'pids.max']);
    expect(await read(join(dir, 'cpu.max'))).toBe('50000 100000');
    expect(await read(join(dir, 'cpu.weight'))).toBe('20');
    expect(await read(join(dir, 'memory.max'))).toBe(String(32 * MiB));
    expect(await read(join(dir, 'memory.swap.max'))).toBe('0');
    expect(await read(join(dir, 'memory.oom.group'))).toBe('1');
    expect(await read(join(dir, 'pids.max'))).toBe('1024');
    expect(cgroup.procsFiles).toEqual([join(dir, 'cgroup.procs')]);
  });

  it('leaves out optional files the kernel does not have and writes "max" for no limit', async () => {
    fake = await fakeCgroupV2({ swapMax: false, oomGroup: false, kill: false, peak: false });
    const driver = new CgroupV2Driver(fake.root, 'omega');
    await driver.prepare();
    await driver.create('batch~3~2', cgroupLimits({ cpuMillis: 0, memoryBytes: 0 }, 64));
    const dir = join(fake.root, 'omega', 'batch~3~2');
    expect((await readdir(dir)).sort()).toEqual(['cpu.max', 'cpu.weight', 'memory.max', 'pids.max']);
    expect(await read(join(dir, 'cpu.max'))).toBe('max 100000');
    expect(await read(join(dir, 'cpu.weight'))).toBe('1');
    expect(await read(join(dir, 'memory.max'))).toBe('max');
    expect(await read(join(dir, 'pids.max'))).toBe('64');
  });

  it('does not rewrite subtree_control when the controllers are already enabled', async () => {
    fake = await fakeCgroupV2();
    await writeFile(join(fake.root, 'cgroup.subtree_control'), 'cpuset cpu io memory pids\n');
    await new CgroupV2Driver(fake.root, 'omega').prepare();
    expect(await read(join(fake.root, 'cgroup.subtree_control'))).toBe('cpuset cpu io memory pids\n');
  });

  it('reads CPU seconds, peak memory and OOM kills from cpu.stat, memory.peak and memory.events', async () => {
    fake = await fakeCgroupV2();
    const driver = new CgroupV2Driver(fake.root, 'omega');
    await driver.prepare();
    const cgroup = await driver.create('j~0~1', cgroupLimits({ cpuMillis: 100, memoryBytes: MiB }));
    const dir = join(fake.root, 'omega', 'j~0~1');
    await writeFile(join(dir, 'cpu.stat'), 'usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n');
    await writeFile(join(dir, 'memory.peak'), '1048576\n');
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n');
    expect(await cgroup.usage()).toEqual({ cpuSeconds: 2.5, peakMemoryBytes: 1048576, oomKills: 1 });
  });

  it('signals every process listed in cgroup.procs', async () => {
    fake = await fakeCgroupV2();
    const driver = new CgroupV2Driver(fake.root, 'omega');
    await driver.prepare();
    const cgroup = await driver.create('j~1~1', cgroupLimits({ cpuMillis: 100, memoryBytes: MiB }));
    const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    try {
      await writeFile(cgroup.procsFiles[0]!, `${child.pid}\n`);
      expect(await cgroup.pids()).toEqual([child.pid]);
      expect(await cgroup.signal('SIGTERM')).toBe(1);
      expect(await exited).toBe('SIGTERM');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a task name or parent that would leave the parent cgroup', async () => {
    fake = await fakeCgroupV2();
    const driver = new CgroupV2Driver(fake.root, 'omega');
    await driver.prepare();
    await expect(driver.create('../../etc', cgroupLimits({ cpuMillis: 1, memoryBytes: 1 }))).rejects.toThrow(/not a plain name/);
    expect(() => new CgroupV2Driver(fake!.root, '../etc')).toThrow(/not a safe cgroup name/);
  });

  it('is detected at a cgroup2 root, and a root without the memory controller is not usable', async () => {
    fake = await fakeCgroupV2();
    expect((await detectCgroupDriver({ root: fake.root, parent: 'omega' })).driver?.version).toBe('v2');
    await writeFile(join(fake.root, 'cgroup.controllers'), 'cpu pids\n');
    expect((await detectCgroupDriver({ root: fake.root, parent: 'omega' })).problem).toMatch(/lacks the memory controller/);
  });
});
