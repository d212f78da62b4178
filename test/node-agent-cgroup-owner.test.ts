/**
 * Two node agents on one host with the same cgroup parent (an explicit `--cgroup-parent`),
 * different machine ids and data directories, on real cgroups: restarting one never kills or
 * removes the other's tasks, because the start-up sweep touches only cgroups carrying its own
 * owner marker. The same scenario with unmarked drivers (the sweep before owner markers) shows
 * the test can fail: the restarted agent kills its neighbour's task. Needs root and writable
 * cgroups; skipped loudly otherwise. Agents run in this process on a MemoryKv (the store is not
 * under test) with the built supervisor (`tsc -b` first).
 */
import { chmod, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type MachineId, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, CGROUP_MARKERS_DIR, cgroupLimits, detectCgroupDriver, ProcessExecutor, resolveTaskUser, taskInstanceName, type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { processGone } from './support/real-agent.js';

const parent = `omega-test-owner-${process.pid}`;
const isRoot = process.getuid?.() === 0;
const probe = isRoot ? await detectCgroupDriver({ parent }) : { problem: 'the tests do not run as root' };
const skipWhy = !isRoot ? 'the tests do not run as root' : probe.driver === undefined ? `cgroups are not writable here: ${probe.problem}` : undefined;
if (skipWhy !== undefined) console.warn(`SKIPPED: cgroup ownership tests on real cgroups because ${skipWhy}`);
const skip = skipWhy !== undefined;

interface Host {
  readonly kv: MemoryKv;
  readonly cell: Cell;
  readonly mirror: CellMirror;
  readonly agents: Agent[];
  readonly dirs: string[];
}

let host: Host | undefined;

async function newHost(): Promise<Host> {
  const kv = new MemoryKv();
  const cell = new Cell(kv, freshCellName());
  const mirror = cell.mirror();
  await mirror.start();
  host = { kv, cell, mirror, agents: [], dirs: [] };
  return host;
}

/** One agent of machine `id` on `dataDir`, with a driver that marks its cgroups (or not). */
async function startAgent(h: Host, id: MachineId, dataDir: string, marked: boolean): Promise<{ agent: Agent; driver: CgroupDriver }> {
  const detection = await detectCgroupDriver(marked ? { parent, owner: { dataDir, machineId: id } } : { parent });
  const driver = detection.driver as CgroupDriver;
  const agent = new Agent({
    cell: h.cell,
    machines: [{ id, capacity: { cpuMillis: 8_000, memoryBytes: 8 * 1024 ** 3 } }],
    executor: async ({ reporter }) => {
      const executor = new ProcessExecutor({ dataDir, machineId: id, reporter, cgroups: driver, taskUser: resolveTaskUser('nobody'), killGraceMs: 300 });
      await executor.init();
      return executor;
    },
    flushIntervalMs: 20,
  });
  h.agents.push(agent);
  await agent.start();
  return { agent, driver };
}

async function dataDir(h: Host, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  h.dirs.push(dir);
  return dir;
}

async function runSleeper(h: Host, name: string, on: MachineId): Promise<Task> {
  await h.cell.createJob({ id: jobId(name), spec: jobSpec(name).cpu(100).memory('16Mi').command('sleep', '600').build() });
  await placeTasks(h.cell, h.mirror, [{ taskId: taskId(name, 0), machineId: on, resources: { cpuMillis: 100, memoryBytes: 16 * 1024 ** 2 } }]);
  await eventually(`${name} to run`, () => h.mirror.snapshot().task(taskId(name, 0))?.state === 'running');
  return h.mirror.snapshot().task(taskId(name, 0)) as Task;
}

afterEach(async () => {
  if (host === undefined) return;
  const h = host;
  host = undefined;
  // Whatever a test left running goes; detached agents' tasks are killed through their cgroups.
  for (const agent of h.agents) await agent.stop({ drain: true }).catch(() => undefined);
  const driver = (await detectCgroupDriver({ parent })).driver;
  for (const name of (await driver?.list()) ?? []) {
    const cgroup = driver!.open(name);
    await cgroup.killAll().catch(() => undefined);
    await cgroup.remove().catch(() => undefined);
  }
  await h.mirror.stop();
  await h.kv.close();
  for (const dir of h.dirs) await rm(dir, { recursive: true, force: true });
});

afterAll(async () => {
  if (skip) return;
  const driver = probe.driver as CgroupDriver;
  for (const controller of driver.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) await rmdir(join(driver.root, controller, parent)).catch(() => undefined);
});

describe('two agents sharing one cgroup parent', () => {
  const a = machineId('own-a');
  const b = machineId('own-b');

  it.skipIf(skip)('without owner markers, restarting one agent kills the other agent’s task (the sweep this replaced)', async () => {
    const h = await newHost();
    const dirA = await dataDir(h, 'omega-own-a-');
    const dirB = await dataDir(h, 'omega-own-b-');
    await startAgent(h, a, dirA, false);
    const first = await startAgent(h, b, dirB, false);
    const task = await runSleeper(h, 'neighbour', a);
    await first.agent.stop();
    await startAgent(h, b, dirB, false);
    await eventually('the neighbour’s process to be killed', () => processGone(task.pid));
  });

  it.skipIf(skip)('with owner markers, restarting one agent leaves the other’s task running and sweeps only its own orphan cgroup', async () => {
    const h = await newHost();
    const dirA = await dataDir(h, 'omega-own-a-');
    const dirB = await dataDir(h, 'omega-own-b-');
    const agentA = await startAgent(h, a, dirA, true);
    const first = await startAgent(h, b, dirB, true);
    const theirs = await runSleeper(h, 'theirs', a);
    const ours = await runSleeper(h, 'ours', b);
    const theirCgroup = agentA.driver.open(taskInstanceName(theirs.id, theirs.attempt));
    expect(existsSync(join(dirA, CGROUP_MARKERS_DIR, taskInstanceName(theirs.id, theirs.attempt)))).toBe(true);

    // B's own cgroup whose task directory is gone (what the sweep is for), and a cgroup under the
    // parent that no agent marked: the first must go at B's restart, the second must stay.
    const orphan = await first.driver.create('orphan~0~1', cgroupLimits({ cpuMillis: 100, memoryBytes: 0 }));
    const { driver: unmarked } = await detectCgroupDriver({ parent });
    const stray = await unmarked!.create('stray~0~1', cgroupLimits({ cpuMillis: 100, memoryBytes: 0 }));

    await first.agent.stop();
    const second = await startAgent(h, b, dirB, true);
    expect(second.agent.counters.recovered).toBe(1);

    expect(await orphan.exists()).toBe(false);
    expect(existsSync(join(dirB, CGROUP_MARKERS_DIR, 'orphan~0~1'))).toBe(false);
    expect(await stray.exists()).toBe(true);
    // A's task: same process, same cgroup, still running, its record untouched.
    expect(await processGone(theirs.pid)).toBe(false);
    expect(await theirCgroup.pids()).toContain(theirs.pid);
    expect(h.mirror.snapshot().task(theirs.id)).toMatchObject({ state: 'running', pid: theirs.pid });
    // B adopted its own task rather than killing it.
    expect(await processGone(ours.pid)).toBe(false);
    expect(h.mirror.snapshot().task(ours.id)).toMatchObject({ state: 'running', pid: ours.pid });

    // A restarts too: B's task survives it as well.
    await agentA.agent.stop();
    await startAgent(h, a, dirA, true);
    expect(await processGone(ours.pid)).toBe(false);
    expect(await processGone(theirs.pid)).toBe(false);

    // And a kill still takes the task and drops its marker.
    await h.cell.setJobDesired(jobId('theirs'), 'killed');
    await eventually('A’s task to be killed', () => h.mirror.snapshot().task(theirs.id)?.state === 'killed' && h.mirror.snapshot().task(theirs.id)!.finishedAtMs > 0);
    expect(await processGone(theirs.pid)).toBe(true);
    expect(existsSync(join(dirA, CGROUP_MARKERS_DIR, taskInstanceName(theirs.id, theirs.attempt)))).toBe(false);
    await stray.remove();
  });
});

describe('an agent leaving its machine', () => {
  const m = machineId('own-leaving');

  /** The parent cgroup's directory in every hierarchy the driver uses. */
  function parentDirs(driver: CgroupDriver): string[] {
    return driver.version === 'v2' ? [join(driver.root, parent)] : ['cpu', 'memory', 'pids'].map((c) => join(driver.root, c, parent));
  }

  it.skipIf(skip)('keeps its parent cgroup while a detached task lives in it, and removes it once nothing is left', async () => {
    const h = await newHost();
    const dir = await dataDir(h, 'omega-own-leaving-');
    const first = await startAgent(h, m, dir, true);
    const task = await runSleeper(h, 'leaving', m);
    await first.agent.stop();
    expect(await processGone(task.pid)).toBe(false);
    for (const d of parentDirs(first.driver)) expect(existsSync(d), d).toBe(true);

    const second = await startAgent(h, m, dir, true);
    expect(second.agent.counters.recovered).toBe(1);
    await second.agent.stop({ drain: true });
    expect(await processGone(task.pid)).toBe(true);
    for (const d of parentDirs(second.driver)) expect(existsSync(d), d).toBe(false);
  });
});
