import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCgroupV2, type FakeCgroupRoot } from './testing/index.js';
import { cgroupLimits } from './cgroup-driver.js';
import { detectCgroupDriver } from './cgroup-detect.js';
import { CGROUP_MARKERS_DIR, OwnedCgroupDriver } from './cgroup-owner.js';
import { CgroupV2Driver } from './cgroup-v2.js';

const limits = cgroupLimits({ cpuMillis: 100, memoryBytes: 0 });

describe('the cgroup owner marker', () => {
  let fake: FakeCgroupRoot | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await fake?.cleanup();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    fake = undefined;
    dataDir = undefined;
  });

  async function owned(parent = 'shared', machineId = 'm1'): Promise<{ driver: OwnedCgroupDriver; root: string; dataDir: string }> {
    fake ??= await fakeCgroupV2({ parent });
    dataDir ??= await mkdtemp(join(tmpdir(), 'omega-owner-'));
    const driver = new OwnedCgroupDriver(new CgroupV2Driver(fake.root, parent), { dataDir, parent, machineId });
    await driver.prepare();
    return { driver, root: fake.root, dataDir };
  }

  it('is written before a created cgroup and lists only the cgroups that carry it', async () => {
    const { driver, root, dataDir: dir } = await owned();
    await driver.create('web~0~1', limits);
    // Another agent's cgroup under the same parent.
    await mkdir(join(root, 'shared', 'other~0~1'));
    expect(await driver.list()).toEqual(['web~0~1']);
    const marker = JSON.parse(await readFile(join(dir, CGROUP_MARKERS_DIR, 'web~0~1'), 'utf8'));
    expect(marker).toMatchObject({ parent: join(root, 'shared'), machineId: 'm1' });
    expect(driver.owns('web~0~1')).toBe(true);
    expect(driver.owns('other~0~1')).toBe(false);
  });

  it('does not count a marker written for another parent, and drops markers whose cgroup is gone', async () => {
    const { driver, root, dataDir: dir } = await owned();
    await mkdir(join(root, 'shared', 'moved~0~1'));
    await writeFile(join(dir, CGROUP_MARKERS_DIR, 'moved~0~1'), JSON.stringify({ parent: join(root, 'elsewhere'), machineId: 'm1', createdAtMs: 1 }));
    expect(await driver.list()).toEqual([]);
    await driver.create('gone~0~1', limits);
    await rm(join(root, 'shared', 'gone~0~1'), { recursive: true });
    expect(await driver.list()).toEqual([]);
    expect(existsSync(join(dir, CGROUP_MARKERS_DIR, 'gone~0~1'))).toBe(false);
  });

  it('is what detectCgroupDriver gives an agent with an owner', async () => {
    fake = await fakeCgroupV2({ parent: 'omega/m1' });
    dataDir = await mkdtemp(join(tmpdir(), 'omega-owner-'));
    const detection = await detectCgroupDriver({ root: fake.root, parent: 'omega/m1', owner: { dataDir, machineId: 'm1' } });
    expect(detection.driver).toBeInstanceOf(OwnedCgroupDriver);
    await mkdir(join(fake.root, 'omega', 'm1', 'stray~0~1'));
    expect(await detection.driver!.list()).toEqual([]);
    expect((await detectCgroupDriver({ root: fake.root, parent: 'omega/m1' })).driver).toBeInstanceOf(CgroupV2Driver);
  });
});

describe('a task cgroup left in the earlier default parent', () => {
  let fake: FakeCgroupRoot | undefined;
  let dataDir: string | undefined;
  afterEach(async () => {
    await fake?.cleanup();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it('is found by name when the default parent omega/<machine id> lacks it, and never listed', async () => {
    fake = await fakeCgroupV2({ parent: 'omega/m1' });
    dataDir = await mkdtemp(join(tmpdir(), 'omega-owner-'));
    const old = join(fake.root, 'omega', 'web~0~1');
    await mkdir(old);
    await writeFile(join(old, 'cgroup.procs'), '4242\n');
    const { driver } = await detectCgroupDriver({ root: fake.root, parent: 'omega/m1', owner: { dataDir, machineId: 'm1' } });
    const cgroup = driver!.open('web~0~1');
    expect(await cgroup.exists()).toBe(true);
    expect(await cgroup.pids()).toEqual([4242]);
    expect(await driver!.list()).toEqual([]);
    // Not for an explicit parent: only the default moved.
    const explicit = await detectCgroupDriver({ root: fake.root, parent: 'omega/m1', owner: { dataDir, machineId: 'm2' } });
    expect(await explicit.driver!.open('web~0~1').exists()).toBe(false);
  });
});
