/**
 * The cgroup v2 driver on a real unified hierarchy, on any host: a cgroup2 hierarchy is mounted
 * in a private mount namespace (test/support/private-cgroup2.ts), so this runs even where
 * `/sys/fs/cgroup` is v1. Needs root, `unshare` and a kernel that allows the mount; skipped
 * loudly otherwise.
 *
 * Controllers bound to v1 hierarchies are not available in v2 at the same time. Where cpu, memory
 * and pids are all free, the driver is prepared and its limits are written and read back from
 * the kernel. Where they are not (a v1 host), the driver must refuse the hierarchy (limits
 * before user code runs), and everything it does that needs no controller still runs here on
 * the kernel's files: moving a process in through `procsFiles`, `cgroup.procs`,
 * `cgroup.events`, signalling, killing with forks in flight, `cpu.stat`, removal; the tests say
 * (console.warn) which limits were not exercised and why. The agent's process executor (the
 * built supervisor, `tsc -b` first) then runs tasks in task cgroups of this hierarchy, made
 * without limits where prepare() refuses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Cell, dieWithParent, jobId, machineId, MemoryKv, taskId, type CellMirror, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, cgroupLimits, CgroupV2Driver, detectCgroupDriver, ProcessExecutor, resolveTaskUser, taskInstanceName, V2_CONTROLLERS, type CgroupDriver, type TaskCgroup } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { repoPath, runNode } from './support/processes.js';
import { mountPrivateCgroup2, type PrivateCgroup2 } from './support/private-cgroup2.js';
import { processGone } from './support/real-agent.js';

const MiB = 1024 ** 2;
const top = `omega-v2-test-${process.pid}`;
// Two segments, as the default parent (omega/<machine id>) has.
const parent = `${top}/cg2-m1`;

const isRoot = process.getuid?.() === 0;
const mounted = isRoot ? await mountPrivateCgroup2() : { problem: 'the tests do not run as root' };
const hierarchy: PrivateCgroup2 | undefined = 'root' in mounted ? mounted : undefined;
if (hierarchy === undefined) console.warn(`SKIPPED: cgroup v2 driver tests on a real unified hierarchy because ${'problem' in mounted ? mounted.problem : 'no hierarchy'}`);
const skip = hierarchy === undefined;
const missing = V2_CONTROLLERS.filter((c) => !(hierarchy?.controllers ?? []).includes(c));
const limitsTestable = !skip && missing.length === 0;
if (!skip && !limitsTestable) {
  console.warn(
    `NOT EXERCISED on the real cgroup2 hierarchy: the ${missing.join(', ')} controller(s), so cpu.max, cpu.weight, memory.max, memory.swap.max, ` +
      `memory.oom.group, memory.peak, memory.events (OOM kills), pids.max, subtree_control delegation, CgroupV2Driver.prepare() and create(), ` +
      `and killAll's cgroup.kill branch (its features are detected by prepare()). The kernel offers this hierarchy only [${hierarchy?.controllers.join(' ') ?? ''}]: ` +
      'the others are bound to v1 hierarchies mounted in the host namespace (a controller lives in one hierarchy at a time, and a private mount ' +
      'namespace cannot release it: the v1 mounts stay in the host namespace). The fake-root unit tests (cgroup-v2.test.ts) cover those files.',
  );
}

const children = new Set<ChildProcess>();

/** Starts `command` bound to this process's life; tracked so that afterAll kills what a failed test left. */
function start(command: string, args: readonly string[]): ChildProcess & { pid: number } {
  const bound = dieWithParent(command, args);
  const child = spawn(bound.command, bound.args, { stdio: 'ignore' });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child as ChildProcess & { pid: number };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const root = (): string => (hierarchy as PrivateCgroup2).root;
const parentDir = (): string => join(root(), parent);
const taskDir = (name: string): string => join(parentDir(), name);
const populated = async (name: string): Promise<string | undefined> => /^populated (\d)$/m.exec(await readFile(join(taskDir(name), 'cgroup.events'), 'utf8'))?.[1];

/** The driver under test: prepared where the controllers allow it, else used without prepare(). */
let driver: CgroupDriver | undefined;
async function theDriver(): Promise<CgroupDriver> {
  if (driver !== undefined) return driver;
  if (limitsTestable) {
    const detection = await detectCgroupDriver({ root: root(), parent });
    if (detection.driver === undefined) throw new Error(`the v2 driver refused a hierarchy offering every controller it needs: ${detection.problem}`);
    driver = detection.driver;
  } else {
    // What prepare() would make; it refuses here (no controllers), and nothing below needs one.
    await mkdir(parentDir(), { recursive: true });
    driver = new CgroupV2Driver(root(), parent);
  }
  return driver;
}

/** A task cgroup: create() with limits where the controllers exist, else made by hand and opened. */
async function taskCgroup(name: string): Promise<TaskCgroup> {
  const d = await theDriver();
  if (limitsTestable) return d.create(name, cgroupLimits({ cpuMillis: 500, memoryBytes: 64 * MiB }, 0));
  await mkdir(taskDir(name));
  return d.open(name);
}

// File level: runs after every describe's own afterAll (the agent is stopped first).
afterAll(async () => {
  if (skip) return;
  // Whatever a failed test left: kill each task cgroup's processes, then remove the cgroups,
  // while the mount still exists (the cgroups outlive the namespace).
  // A cgroup directory also holds the kernel's interface files: only subdirectories are cgroups.
  const taskDirs = async (): Promise<string[]> =>
    (await readdir(parentDir(), { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => taskDir(e.name));
  for (const dir of await taskDirs()) {
    if (!(await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => undefined))) continue;
    await writeFile(join(dir, 'cgroup.kill'), '1').catch(async () => {
      for (const pid of (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    });
  }
  for (const child of children) child.kill('SIGKILL');
  const leftovers: string[] = [];
  for (const dir of [...(await taskDirs()), parentDir(), join(root(), top)]) {
    const deadline = Date.now() + 5_000;
    for (;;) {
      try {
        await rmdir(dir);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (Date.now() > deadline) {
          leftovers.push(`${dir} (${code})`);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  await hierarchy?.stop();
  if (leftovers.length > 0) console.warn(`could not remove test cgroups from the unified hierarchy: ${leftovers.join(', ')}`);
});

describe('the cgroup v2 driver on a real unified hierarchy', () => {

  it.skipIf(skip || limitsTestable)('detection on a cgroup2 mount without the cpu, memory and pids controllers picks v2, refuses it naming what is missing, and creates nothing', async () => {
    const detection = await detectCgroupDriver({ root: root(), parent });
    expect(detection.driver).toBeUndefined();
    expect(detection.problem).toContain(`cgroup v2 at ${root()}`);
    expect(detection.problem).toContain(`lacks the ${missing.join(', ')} controller(s)`);
    expect(detection.problem).toContain(`(has: ${hierarchy!.controllers.join(' ') || 'none'})`);
    await expect(readdir(join(root(), top))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.skipIf(skip || limitsTestable)('the agent binary given this hierarchy as --cgroup-root exits 1 before it reaches etcd, its fatal log naming the missing controllers', async () => {
    const agentTop = `${top}-agent`;
    const dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-cg2-'));
    try {
      // Port 9 (discard) on loopback: nothing answers, and the agent must refuse before it asks.
      const args = ['--insecure', '--etcd', 'http://127.0.0.1:9', '--cell', 'cg2', '--machine-id', 'cg2-m1', '--cpu', '1', '--memory', '1Gi', '--data-dir', dataDir];
      const run = await runNode(repoPath('packages/node-agent/dist/main.js'), [...args, '--cgroup-root', root(), '--cgroup-parent', `${agentTop}/cg2-m1`, '--log-listen', 'none'], 30_000);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      const fatal = run.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; msg: string; problem?: string })
        .find((entry) => entry.level === 60);
      expect(fatal?.msg).toContain('no usable cgroups');
      expect(fatal?.problem).toContain(`lacks the ${missing.join(', ')} controller(s)`);
      await expect(readdir(join(root(), agentTop))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rmdir(join(root(), agentTop, 'cg2-m1')).catch(() => undefined);
      await rmdir(join(root(), agentTop)).catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it.skipIf(!limitsTestable)('with cpu, memory and pids free, prepare() delegates them and create() writes limits the kernel reads back', async () => {
    const d = await theDriver();
    expect(d.version).toBe('v2');
    for (const dir of [root(), join(root(), top), parentDir()]) {
      const enabled = (await readFile(join(dir, 'cgroup.subtree_control'), 'utf8')).trim().split(/\s+/);
      for (const c of V2_CONTROLLERS) expect(enabled, `${dir}/cgroup.subtree_control`).toContain(c);
    }
    await taskCgroup('limits~0~1');
    const read = (file: string): Promise<string> => readFile(join(taskDir('limits~0~1'), file), 'utf8').then((t) => t.trim());
    expect(await read('cpu.max')).toBe('50000 100000');
    expect(await read('cpu.weight')).toBe('20');
    expect(await read('memory.max')).toBe(String(64 * MiB));
    expect(await read('pids.max')).toBe('1024');
    const swap = await read('memory.swap.max').catch(() => undefined);
    if (swap !== undefined) expect(swap).toBe('0');
    const oomGroup = await read('memory.oom.group').catch(() => undefined);
    if (oomGroup !== undefined) expect(oomGroup).toBe('1');
    await (await theDriver()).open('limits~0~1').remove();
  });

  it.skipIf(skip)('a process written into procsFiles is in the task cgroup, listed and populated; a signal reaches it; once it is gone the cgroup is removed', async () => {
    const name = 'sleeper~0~1';
    const cgroup = await taskCgroup(name);
    expect(cgroup.procsFiles).toEqual([join(taskDir(name), 'cgroup.procs')]);
    expect(await cgroup.exists()).toBe(true);
    expect(await populated(name)).toBe('0');

    const sleeper = start('sleep', ['600']);
    await writeFile(cgroup.procsFiles[0]!, String(sleeper.pid));
    // The kernel's own view of the process: the unified line of /proc/<pid>/cgroup.
    expect((await readFile(`/proc/${sleeper.pid}/cgroup`, 'utf8')).split('\n')).toContain(`0::/${parent}/${name}`);
    expect(await cgroup.pids()).toEqual([sleeper.pid]);
    expect(await populated(name)).toBe('1');
    // Only the cgroup directories, none of the kernel's interface files.
    expect(await (await theDriver()).list()).toEqual([name]);

    expect(await cgroup.signal('SIGTERM')).toBe(1);
    expect(await exitOf(sleeper)).toEqual({ code: null, signal: 'SIGTERM' });
    await eventually('the cgroup to be unpopulated', async () => (await populated(name)) === '0');
    expect(await cgroup.pids()).toEqual([]);
    expect(await cgroup.signal('SIGTERM')).toBe(0);

    const usage = await cgroup.usage();
    expect(Number.isFinite(usage.cpuSeconds) && usage.cpuSeconds >= 0).toBe(true);
    if (!limitsTestable) expect(usage).toMatchObject({ peakMemoryBytes: 0, oomKills: 0 });

    await cgroup.remove();
    expect(await cgroup.exists()).toBe(false);
    expect(await (await theDriver()).list()).toEqual([]);
    // Removing what is gone is a no-op.
    await cgroup.remove();
  });

  it.skipIf(skip)('killAll empties a task cgroup whose shell keeps forking, counts its CPU time in cpu.stat, and leaves no process behind', async () => {
    const name = 'forker~0~1';
    const cgroup = await taskCgroup(name);
    // As the supervisor does: the shell moves itself in before anything else runs, so every
    // child it forks starts inside the cgroup.
    const shell = start('/bin/sh', ['-c', 'echo $$ > "$1" && i=0 && while [ $i -lt 300 ]; do sleep 600 & i=$((i+1)); done; wait', 'sh', cgroup.procsFiles[0]!]);
    await eventually('the shell to have forked 20 children in the cgroup', async () => (await cgroup.pids()).length >= 20, 30_000);
    const seen = await cgroup.pids();
    expect(seen).toContain(shell.pid);

    await cgroup.killAll();
    expect(await cgroup.pids()).toEqual([]);
    expect(await exitOf(shell)).toEqual({ code: null, signal: 'SIGKILL' });
    await eventually('the cgroup to be unpopulated', async () => (await populated(name)) === '0');
    for (const pid of seen) expect(await processGone(pid), `pid ${pid}`).toBe(true);
    // Hundreds of fork+exec: the kernel counted CPU time, and the driver read it from cpu.stat.
    expect((await cgroup.usage()).cpuSeconds).toBeGreaterThan(0);
    await cgroup.remove();
    expect(await cgroup.exists()).toBe(false);
  });

  it.skipIf(skip)('removing a task cgroup that still holds a process fails with an error naming it, and the process keeps running', async () => {
    const name = 'busy~0~1';
    const cgroup = await taskCgroup(name);
    const sleeper = start('sleep', ['600']);
    await writeFile(cgroup.procsFiles[0]!, String(sleeper.pid));
    // The driver retries EBUSY for 5 s (a cgroup is briefly busy after its last process exits).
    await expect(cgroup.remove()).rejects.toThrow(`could not remove cgroup ${taskDir(name)}`);
    expect(await cgroup.exists()).toBe(true);
    expect(await cgroup.pids()).toEqual([sleeper.pid]);
    await cgroup.killAll();
    expect(await exitOf(sleeper)).toEqual({ code: null, signal: 'SIGKILL' });
    await cgroup.remove();
    expect(await cgroup.exists()).toBe(false);
  });

  it.skipIf(skip)('the kernel facts the driver relies on hold here: cgroup.kill (write-only) is in every task cgroup and one write kills it all, forks in flight included', async () => {
    const name = 'killfile~0~1';
    const cgroup = await taskCgroup(name);
    const kill = join(taskDir(name), 'cgroup.kill');
    const entries = await readdir(taskDir(name));
    if (!entries.includes('cgroup.kill')) {
      console.warn(`NOT EXERCISED: cgroup.kill (kernel ${(await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim()} is older than 5.14); killAll falls back to SIGKILL passes`);
      await cgroup.remove();
      return;
    }
    // prepare() detects it with access(F_OK): the file is mode 0200, and must still count.
    const { access } = await import('node:fs/promises');
    await expect(access(kill)).resolves.toBeUndefined();
    const shell = start('/bin/sh', ['-c', 'echo $$ > "$1" && i=0 && while [ $i -lt 300 ]; do sleep 600 & i=$((i+1)); done; wait', 'sh', cgroup.procsFiles[0]!]);
    await eventually('the shell to have forked 20 children in the cgroup', async () => (await cgroup.pids()).length >= 20, 30_000);
    const seen = await cgroup.pids();
    await writeFile(kill, '1');
    expect(await exitOf(shell)).toEqual({ code: null, signal: 'SIGKILL' });
    await eventually('the cgroup to be empty and unpopulated', async () => (await cgroup.pids()).length === 0 && (await populated(name)) === '0');
    for (const pid of seen) expect(await processGone(pid), `pid ${pid}`).toBe(true);
    await cgroup.remove();
  });
});

describe('the node agent running tasks in cgroups of a real unified hierarchy', () => {
  const m1 = machineId('cg2-agent-m1');
  let kv: MemoryKv;
  let cell: Cell;
  let agent: Agent | undefined;
  let dataDir: string;
  let runner: CgroupDriver;

  afterAll(async () => {
    if (skip) return;
    // Stops whatever a failed test left; the task cgroups go with the first describe's afterAll.
    await agent?.stop({ drain: true });
    await agentMirror?.stop();
    await kv?.close();
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  let agentMirror: CellMirror | undefined;
  const record = (name: string): Task | undefined => agentMirror?.snapshot().task(taskId(name, 0));

  async function startAgent(): Promise<void> {
    if (agent !== undefined) return;
    const v2 = await theDriver();
    // Where prepare() refuses (no controllers), task cgroups are made without limits; the
    // supervisor, the moves, kills, usage and removal are the real driver's on the real kernel.
    runner = limitsTestable
      ? v2
      : {
          version: 'v2',
          root: v2.root,
          prepare: async () => undefined,
          create: async (name) => {
            await mkdir(taskDir(name));
            return v2.open(name);
          },
          open: (name) => v2.open(name),
          list: () => v2.list(),
          removeParentIfEmpty: () => v2.removeParentIfEmpty(),
        };
    dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-cg2-'));
    // mkdtemp makes 0700: the task user must be able to reach its working directory.
    await chmod(dataDir, 0o755);
    kv = new MemoryKv();
    cell = new Cell(kv, freshCellName());
    agent = new Agent({
      cell,
      machines: [{ id: m1, capacity: { cpuMillis: 8_000, memoryBytes: 8 * 1024 ** 3 } }],
      executor: async ({ reporter }) => {
        const executor = new ProcessExecutor({ dataDir, machineId: m1, reporter, cgroups: runner, taskUser: resolveTaskUser('nobody'), killGraceMs: 300 });
        await executor.init();
        return executor;
      },
      flushIntervalMs: 20,
    });
    await agent.start();
    agentMirror = cell.mirror();
    await agentMirror.start();
  }

  async function run(name: string, ...argv: string[]): Promise<void> {
    const spec = jobSpec(name).cpu(100).memory('32Mi').command(...(argv as [string, ...string[]])).build();
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(cell, agentMirror!, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
  }

  it.skipIf(skip)('a task runs inside its v2 cgroup, its exit status is reported, and its cgroup is removed after', async () => {
    await startAgent();
    await run('v2exit', '/bin/sh', '-c', 'sleep 1; exit 3');
    const cgroup = runner.open(taskInstanceName(taskId('v2exit', 0), 1));
    await eventually('the task to run in its cgroup', async () => (await cgroup.pids()).length > 0);
    await eventually('the task to end', () => (record('v2exit')?.finishedAtMs ?? 0) > 0);
    expect(record('v2exit')).toMatchObject({ state: 'failed', reason: 'nonzero-exit', exitCode: 3 });
    await eventually('its cgroup to be removed', async () => !(await cgroup.exists()));
  });

  it.skipIf(skip)('a killed task that forked a child and ignores TERM leaves no process and no cgroup behind', async () => {
    await startAgent();
    await run('v2forker', '/bin/sh', '-c', 'trap "" TERM; sleep 1000 & sleep 1000');
    const cgroup = runner.open(taskInstanceName(taskId('v2forker', 0), 1));
    // The shell and both sleeps.
    await eventually('three processes in the cgroup', async () => (await cgroup.pids()).length === 3);
    const pids = await cgroup.pids();
    await cell.setJobDesired(jobId('v2forker'), 'killed');
    await eventually('the task to be killed', () => (record('v2forker')?.finishedAtMs ?? 0) > 0);
    expect(record('v2forker')).toMatchObject({ state: 'killed', reason: 'job-killed', signal: 'SIGKILL' });
    for (const pid of pids) expect(await processGone(pid), `pid ${pid}`).toBe(true);
    expect(await cgroup.exists()).toBe(false);
  });
});
