/**
 * Agent restarts, with the real agent binary (`node packages/node-agent/dist/main.js`, built by
 * `tsc -b` before the tests) on a real etcd: a task that ends while the agent is down has its
 * real exit status reported after the restart, exactly once; a task still running is adopted,
 * not restarted. Uses real cgroups when this machine has writable ones, else runs the agent with
 * --no-enforcement (adoption works the same).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, EtcdNotFoundError, findEtcd, jobId, machineId, startEtcd, taskId, type CellMirror, type RunningEtcd, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { detectCgroupDriver, taskLogPaths } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { spawnLogged, type LoggedProcess } from './support/processes.js';

const MAIN = fileURLToPath(new URL('../packages/node-agent/dist/main.js', import.meta.url));
const m1 = machineId('restart-m1');
const parent = `omega-test-restart-${process.pid}`;

const etcdBinary = await findEtcd();
if (etcdBinary === undefined) console.warn(`SKIPPED: node agent restart tests because ${new EtcdNotFoundError([]).message}`);
const skip = etcdBinary === undefined;
const isRoot = process.getuid?.() === 0;
const cgroups = isRoot && !skip ? await detectCgroupDriver({ parent }) : { problem: 'not root' };
if (!skip && cgroups.driver === undefined) console.warn(`node agent restart tests run the agent with --no-enforcement because ${cgroups.problem}`);

/** A running agent process and the log lines it printed. */

describe('the node agent across restarts', () => {
  let etcd: RunningEtcd;
  let kv: EtcdKv;
  let cell: Cell;
  let cellName: string;
  let mirror: CellMirror;
  let dataDir: string;
  let gates: string;
  const agents: LoggedProcess[] = [];

  beforeAll(async () => {
    if (skip) return;
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first with \`npx tsc -b\``);
    etcd = await startEtcd();
    kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    cellName = freshCellName();
    cell = new Cell(kv, cellName);
    dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-restart-'));
    // Not under /tmp: a task has a private /tmp (see the node agent's README, "Isolation").
    gates = await mkdtemp(join('/var/tmp', 'omega-gates-'));
    // Tasks run as nobody: they must reach their working directory and see the gate files.
    await chmod(dataDir, 0o755);
    await chmod(gates, 0o755);
    mirror = cell.mirror();
    await mirror.start();
  });

  afterAll(async () => {
    if (skip) return;
    // Let any task still waiting end, and stop any agent still running.
    await writeFile(join(gates, 'a'), '').catch(() => undefined);
    await writeFile(join(gates, 'b'), '').catch(() => undefined);
    await writeFile(join(gates, 'c'), '').catch(() => undefined);
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await eventually('the tasks to exit', () => ['a', 'b', 'c'].every((job) => existsSync(join(taskLogPaths(dataDir, taskId(job, 0), 1).dir, 'exit.json'))), 10_000).catch(() => undefined);
    // A task that did not end (a failed test) must not outlive the run: its supervisor names the
    // data dir on its command line, and with cgroups every process of the task is in one.
    await killTaskProcesses();
    await mirror?.stop();
    await kv?.close();
    await etcd?.stop();
    if (cgroups.driver !== undefined) {
      for (const c of cgroups.driver.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) {
        const dir = join(cgroups.driver.root, c, parent);
        // Task cgroups the agent could not remove (a test failed while its tasks ran) go first.
        for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) if (entry.isDirectory()) await rmdir(join(dir, entry.name)).catch(() => undefined);
        await rmdir(dir).catch(() => undefined);
      }
    }
    await rm(dataDir, { recursive: true, force: true });
    await rm(gates, { recursive: true, force: true });
  });

  /** SIGKILL to every supervisor of this run and every process in its task cgroups. */
  async function killTaskProcesses(): Promise<void> {
    const pids = new Set<number>();
    for (const entry of await readdir('/proc').catch(() => [] as string[])) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(dataDir)) pids.add(Number(entry));
    }
    const driver = cgroups.driver;
    if (driver !== undefined) {
      const base = join(driver.root, driver.version === 'v2' ? '' : 'pids', parent);
      for (const name of await readdir(base).catch(() => [] as string[])) {
        const procs = await readFile(join(base, name, 'cgroup.procs'), 'utf8').catch(() => '');
        for (const pid of procs.split('\n').filter((line) => line !== '')) pids.add(Number(pid));
      }
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  function startAgent(): LoggedProcess {
    const args = ['--insecure', '--etcd', etcd.clientUrl, '--cell', cellName, '--machine-id', m1, '--cpu', '4', '--memory', '8Gi', '--data-dir', dataDir, '--kill-grace-ms', '1000', '--heartbeat-ttl', '5'];
    args.push(...(cgroups.driver !== undefined ? ['--cgroup-parent', parent] : ['--no-enforcement']));
    const agent = spawnLogged(MAIN, args);
    agents.push(agent);
    return agent;
  }

  const started = (agent: LoggedProcess) => eventually('the agent to start', () => agent.messages.includes('agent started'), 30_000);
  const task = (job: string): Task | undefined => mirror.snapshot().task(taskId(job, 0));
  const exitFile = (job: string): string => join(taskLogPaths(dataDir, taskId(job, 0), 1).dir, 'exit.json');
  const gated = (name: string, code: number) =>
    jobSpec(name).cpu(100).memory('32Mi').env('GATE', join(gates, name)).command('/bin/sh', '-c', `while [ ! -e "$GATE" ]; do sleep 0.1; done; exit ${code}`).build();

  it.skipIf(skip)('reports a task that ended while the agent was down with its real exit code, exactly once, and adopts one still running', async () => {
    const first = startAgent();
    await started(first);
    await cell.createJob({ id: jobId('a'), spec: gated('a', 3) });
    await cell.createJob({ id: jobId('b'), spec: gated('b', 0) });
    await placeTasks(cell, mirror, [
      { taskId: taskId('a', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * 1024 ** 2 } },
      { taskId: taskId('b', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * 1024 ** 2 } },
    ]);
    await eventually('both tasks to run', () => task('a')?.state === 'running' && task('b')?.state === 'running');
    const before = { a: task('a')!, b: task('b')! };

    first.child.kill('SIGKILL');
    await first.exited;
    // Task a ends while no agent is watching; its supervisor records how.
    await writeFile(join(gates, 'a'), '');
    await eventually('task a to exit', () => existsSync(exitFile('a')), 10_000);
    expect(task('a')).toMatchObject({ state: 'running', pid: before.a.pid });

    const second = startAgent();
    await started(second);
    await eventually('task a to be reported', () => task('a')?.state === 'failed');
    const reported = task('a')!;
    expect(reported).toMatchObject({ state: 'failed', reason: 'nonzero-exit', exitCode: 3, pid: before.a.pid, startedAtMs: before.a.startedAtMs, attempt: 1 });
    // Task b was adopted: same process, same start, still running.
    expect(task('b')).toMatchObject({ state: 'running', pid: before.b.pid, startedAtMs: before.b.startedAtMs, attempt: 1 });

    // The adopted task's end is reported by the agent that adopted it.
    await writeFile(join(gates, 'b'), '');
    await eventually('task b to be reported', () => task('b')?.state === 'succeeded');
    expect(task('b')).toMatchObject({ state: 'succeeded', exitCode: 0, pid: before.b.pid });

    // A clean stop: unschedulable first, then the heartbeat goes.
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(await cell.getMachine(m1)).toMatchObject({ schedulable: false, unschedulableReason: 'agent stopping' });
    await eventually('the heartbeat to go', () => mirror.snapshot().alive(m1) === undefined);

    // Another restart reports nothing again: the records are not written once more.
    const revisions = { a: (await cell.getTask(taskId('a', 0)))!.revision, b: (await cell.getTask(taskId('b', 0)))!.revision };
    expect(revisions.a).toBe(reported.revision);
    const third = startAgent();
    await started(third);
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
    expect((await cell.getTask(taskId('a', 0)))!.revision).toBe(revisions.a);
    expect((await cell.getTask(taskId('b', 0)))!.revision).toBe(revisions.b);
  });

  it.skipIf(skip || !isRoot)("adopts a task by finding its supervisor in /proc: not its init, not another user's process naming its directory", async () => {
    const first = startAgent();
    await started(first);
    await cell.createJob({ id: jobId('c'), spec: gated('c', 0) });
    await placeTasks(cell, mirror, [{ taskId: taskId('c', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * 1024 ** 2 } }]);
    await eventually('task c to run', () => task('c')?.state === 'running');
    const before = task('c')!;
    first.child.kill('SIGKILL');
    await first.exited;
    const dir = taskLogPaths(dataDir, taskId('c', 0), 1).dir;
    // A process of another user whose command line names c's directory as a supervisor's does
    // (what a hostile task could run); newer than c's supervisor and its init.
    // Its own process group, killed whole: the shell's sleep must not outlive the test.
    const impostor = spawn('/bin/sh', ['-c', 'sleep 60; :', dir, '--', 'x'], { stdio: 'ignore', uid: 65534, gid: 65534, detached: true });
    const killImpostor = (): void => {
      try {
        process.kill(-(impostor.pid as number), 'SIGKILL');
      } catch {
        // gone already
      }
    };
    const impostorGone = new Promise((resolve) => impostor.once('exit', resolve));
    try {
      const second = startAgent();
      await started(second);
      await eventually('task c to be adopted', () => second.messages.includes('adopting running task'));
      // Had the agent taken the impostor for c's supervisor, its end would end c's attempt.
      killImpostor();
      await impostorGone;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(task('c')).toMatchObject({ state: 'running', pid: before.pid, startedAtMs: before.startedAtMs });
      await writeFile(join(gates, 'c'), '');
      await eventually('task c to be reported', () => task('c')?.state === 'succeeded');
      expect(task('c')).toMatchObject({ state: 'succeeded', exitCode: 0, pid: before.pid });
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      killImpostor();
    }
  });
});
