/**
 * A task's work dir bounded on disk, through a real agent on real cgroups: a job with a small
 * `diskLimitBytes` whose task writes past it ends `failed` with reason `disk-exceeded` (its
 * stderr says what was measured, and none of its processes is left), one under its limit
 * succeeds, and a job asking more than the agent's `--disk-limit` gets the agent's. Each task
 * runs as its own uid, as a hostile one would. Needs root and writable cgroups; skipped loudly
 * otherwise. Runs the agent in this process on a MemoryKv.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobId, machineId, taskId, type Cell, type CellMirror, type JobSpec, type Task } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { DISK_EXCEEDED, taskLogPaths, type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded, detectRealCgroups, type RealAgent, startRealAgent } from './support/real-agent.js';

const MiB = 1024 ** 2;
const m1 = machineId('disk-m1');
const parent = `omega-test-disk-${process.pid}`;
/** The agent's --disk-limit: the most any job gets. */
const AGENT_LIMIT = 16 * MiB;

const { driver, skip } = await detectRealCgroups(parent, 'work-dir disk bound tests on real cgroups');

describe("a task's work dir bounded on disk", () => {
  let real: RealAgent | undefined;
  let cell: Cell;
  let mirror: CellMirror;
  let dataDir: string;

  beforeAll(async () => {
    if (skip) return;
    real = await startRealAgent({
      driver: driver as CgroupDriver,
      parent,
      machineId: m1,
      dataDirPrefix: 'omega-agent-disk-',
      executor: { taskUids: { first: 310_000, last: 310_009 }, killGraceMs: 300, diskLimitBytes: AGENT_LIMIT, diskCheckIntervalMs: 100 },
    });
    ({ cell, mirror, dataDir } = real);
  });

  afterAll(async () => {
    await real?.stop();
  });

  async function run(name: string, command: string, diskLimitBytes: number): Promise<void> {
    const base = jobSpec(name).cpu(200).memory('32Mi').command('/bin/sh', '-c', command).build();
    const spec: JobSpec = { ...base, task: { ...base.task, diskLimitBytes } };
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
  }
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const ended = (name: string): boolean => attemptEnded(record(name));

  it.skipIf(skip)('a job with a 2 MiB disk limit whose task writes 8 MiB ends failed with disk-exceeded, and its stderr says what was measured', async () => {
    // A forked writer keeps going in the background: the kill must take the whole task.
    await run('hog', '(while :; do sleep 0.05; done) & head -c 8388608 /dev/zero > big; sleep 30; echo survived', 2 * MiB);
    await eventually('the task to end', () => ended('hog'), 20_000);
    // The record says what the supervisor measured, as the task's stderr does.
    expect(record('hog')).toMatchObject({ state: 'failed', reason: DISK_EXCEEDED, signal: 'SIGKILL', message: expect.stringContaining(`over its limit of ${2 * MiB} bytes`) });
    const logs = taskLogPaths(dataDir, taskId('hog', 0), 1);
    expect(await readFile(logs.stderr, 'utf8')).toContain(`over its limit of ${2 * MiB} bytes`);
    expect(await readFile(logs.stdout, 'utf8')).not.toContain('survived');
    // The cgroup was killed and removed with the attempt: nothing of the task runs on.
    expect(await driver!.list()).not.toContain(`hog~0~1`);
  });

  it.skipIf(skip)('a job writing under its disk limit, measured several times while it runs, succeeds', async () => {
    await run('modest', 'head -c 1048576 /dev/urandom > data && sleep 0.6 && wc -c < data', 8 * MiB);
    await eventually('the task to end', () => ended('modest'), 20_000);
    expect(record('modest')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    expect(record('modest')?.reason).toBe('');
    expect((await readFile(taskLogPaths(dataDir, taskId('modest', 0), 1).stdout, 'utf8')).trim()).toBe('1048576');
  });

  it.skipIf(skip)("a job asking more than the agent's --disk-limit gets the agent's limit", async () => {
    await run('greedy', 'head -c 33554432 /dev/zero > big; sleep 30', 1024 * MiB);
    await eventually('the task to end', () => ended('greedy'), 20_000);
    expect(record('greedy')).toMatchObject({ state: 'failed', reason: DISK_EXCEEDED });
    expect(await readFile(taskLogPaths(dataDir, taskId('greedy', 0), 1).stderr, 'utf8')).toContain(`over its limit of ${AGENT_LIMIT} bytes`);
  });
});
