/**
 * The node agent on real cgroups (v1 or v2, whichever this machine has): limits are enforced by
 * the kernel, outcomes come from the kernel's counters, kills leave nothing behind. Needs root
 * and writable cgroups; skipped loudly otherwise. Runs the agent in this process on a MemoryKv
 * (the cell store is not what is under test here) and the built supervisor (`tsc -b` first).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobId, machineId, taskId, type Cell, type CellMirror, type JobSpec, type Task } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { resolveTaskUser, taskInstanceName, taskLogPaths, type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded, detectRealCgroups, processGone, type RealAgent, startRealAgent } from './support/real-agent.js';

const MiB = 1024 ** 2;
const m1 = machineId('cg-m1');
const parent = `omega-test-${process.pid}`;

const { driver: detected, skip } = await detectRealCgroups(parent, 'node agent tests on real cgroups');

describe('the node agent on real cgroups', () => {
  let real: RealAgent | undefined;
  let cell: Cell;
  let mirror: CellMirror;
  let dataDir: string;
  let driver: CgroupDriver;

  beforeAll(async () => {
    if (skip) return;
    driver = detected as CgroupDriver;
    real = await startRealAgent({ driver, parent, machineId: m1, dataDirPrefix: 'omega-agent-cg-', executor: { taskUser: resolveTaskUser('nobody'), killGraceMs: 500 } });
    ({ cell, mirror, dataDir } = real);
  });

  afterAll(async () => {
    // Whatever a failed test left running is stopped here, then the test's parent cgroups go.
    await real?.stop();
  });

  async function run(name: string, spec: JobSpec, instances = 1): Promise<Task[]> {
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(
      cell,
      mirror,
      Array.from({ length: instances }, (_, i) => ({ taskId: taskId(name, i), machineId: m1, resources: spec.task.resources })),
    );
    return Array.from({ length: instances }, (_, i) => mirror.snapshot().task(taskId(name, i)) as Task);
  }

  const record = (name: string, i = 0): Task | undefined => mirror.snapshot().task(taskId(name, i));
  const ended = (name: string, i = 0): boolean => attemptEnded(record(name, i));

  it.skipIf(skip)('a task asking for 32 MiB that allocates 256 MiB ends failed with reason oom-killed', async () => {
    await run('oom', jobSpec('oom').cpu(500).memory('32Mi').command('dd', 'if=/dev/zero', 'of=/dev/null', 'bs=256M', 'count=1').build());
    await eventually('the task to end', () => ended('oom'));
    expect(record('oom')).toMatchObject({ state: 'failed', reason: 'oom-killed', signal: 'SIGKILL' });
    expect(record('oom')!.peakMemoryBytes).toBeGreaterThan(0);
    expect(record('oom')!.peakMemoryBytes).toBeLessThanOrEqual(32 * MiB);
  });

  it.skipIf(skip)('a busy loop limited to 0.2 CPU uses at most about 0.3 CPU-seconds per wall second', async () => {
    await run('spin', jobSpec('spin').cpu(200).memory('32Mi').command('/bin/sh', '-c', 'while :; do :; done').build());
    await eventually('the task to run', () => record('spin')?.state === 'running');
    const cgroup = driver.open(taskInstanceName(taskId('spin', 0), 1));
    const u0 = await cgroup.usage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2_000));
    const u1 = await cgroup.usage();
    const wallSeconds = (performance.now() - t0) / 1000;
    const ratio = (u1.cpuSeconds - u0.cpuSeconds) / wallSeconds;
    console.log(`busy loop limited to 0.2 CPU used ${ratio.toFixed(3)} CPU-seconds per wall second`);
    expect(ratio).toBeLessThanOrEqual(0.3);
    expect(ratio).toBeGreaterThan(0.05);
    await cell.setJobDesired(jobId('spin'), 'killed');
    await eventually('the task to be killed', () => ended('spin'));
    expect(record('spin')).toMatchObject({ state: 'killed', reason: 'job-killed', signal: 'SIGTERM' });
    expect(record('spin')!.cpuSeconds).toBeGreaterThan(0);
  });

  it.skipIf(skip)('a killed task that forked a child and ignores TERM leaves no process behind', async () => {
    await run('forker', jobSpec('forker').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'trap "" TERM; sleep 1000 & sleep 1000').build());
    await eventually('the task to run', () => record('forker')?.state === 'running');
    const cgroup = driver.open(taskInstanceName(taskId('forker', 0), 1));
    // The shell and both sleeps.
    await eventually('three processes in the cgroup', async () => (await cgroup.pids()).length === 3);
    const pids = await cgroup.pids();
    await cell.setJobDesired(jobId('forker'), 'killed');
    await eventually('the task to be killed', () => ended('forker'));
    // TERM was ignored: it took the KILL after the grace period.
    expect(record('forker')).toMatchObject({ state: 'killed', reason: 'job-killed', signal: 'SIGKILL' });
    for (const pid of pids) expect(await processGone(pid), `pid ${pid}`).toBe(true);
    expect(await cgroup.exists()).toBe(false);
  });

  it.skipIf(skip)('50 concurrent tasks on one agent all report their own outcome, output and user', async () => {
    const spec = jobSpec('many').cpu(10).memory('16Mi').command('/bin/sh', '-c', 'echo "$(id -u) $OMEGA_TASK_ID $OMEGA_JOB_ID $OMEGA_TASK_INDEX $PWD"; echo oops >&2; sleep 1; exit $((OMEGA_TASK_INDEX % 4))').instances(50).build();
    await run('many', spec, 50);
    await eventually('all 50 to end', () => Array.from({ length: 50 }, (_, i) => ended('many', i)).every(Boolean), 90_000);
    const nobody = resolveTaskUser('nobody').uid;
    for (let i = 0; i < 50; i++) {
      const t = record('many', i)!;
      const code = i % 4;
      expect(t, `task ${i}`).toMatchObject(code === 0 ? { state: 'succeeded', exitCode: 0 } : { state: 'failed', reason: 'nonzero-exit', exitCode: code });
      expect(t.pid).toBeGreaterThan(0);
      expect(t.finishedAtMs).toBeGreaterThanOrEqual(t.startedAtMs);
      const logs = taskLogPaths(dataDir, t.id, t.attempt);
      expect(await readFile(logs.stdout, 'utf8')).toBe(`${nobody} many/${i} many ${i} ${join(logs.dir, 'work')}\n`);
      expect(await readFile(logs.stderr, 'utf8')).toBe('oops\n');
      expect(await driver.open(taskInstanceName(t.id, t.attempt)).exists()).toBe(false);
    }
  });
});
