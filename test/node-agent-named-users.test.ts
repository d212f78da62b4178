/**
 * Named task users (`user:` in the job, `allowUsers` / `--allow-users` on the agent): a task of a
 * job naming an allowed user runs as that user in a 0700 work dir it owns, removed afterwards
 * without following the links the task left; a job naming a user the agent does not allow fails
 * `user-not-allowed` at once, runs nothing, and the agent's log names the user and the flag.
 * Needs root and writable cgroups; skipped loudly otherwise. Creates a throwaway system user
 * (`useradd --system`), removed in afterAll whatever happened. Runs the agent in this process on
 * a MemoryKv.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type JobSpec, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, detectCgroupDriver, ProcessExecutor, taskLogPaths, type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded } from './support/real-agent.js';

const m1 = machineId('named-user-m1');
const parent = `omega-test-named-user-${process.pid}`;
const USER = 'omega-test-user';

const isRoot = process.getuid?.() === 0;
const detection = isRoot ? await detectCgroupDriver({ parent }) : { problem: 'the tests do not run as root' };
const skipWhy = !isRoot ? 'the tests do not run as root' : detection.driver === undefined ? `cgroups are not writable here: ${detection.problem}` : undefined;
if (skipWhy !== undefined) console.warn(`SKIPPED: named task user tests on a real agent because ${skipWhy}`);
const skip = skipWhy !== undefined;

describe('a job naming the user its tasks run as', () => {
  let kv: MemoryKv;
  let cell: Cell;
  let mirror: CellMirror;
  let agent: Agent | undefined;
  let dataDir: string;
  let outside: string;
  let driver: CgroupDriver;
  let userCreated = false;
  const logLines: string[] = [];

  beforeAll(async () => {
    if (skip) return;
    driver = detection.driver as CgroupDriver;
    // A leftover of an earlier run that died before its afterAll: start from a fresh user.
    try {
      execFileSync('userdel', [USER], { stdio: 'ignore' });
    } catch {
      // none there
    }
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { stdio: 'ignore' });
    userCreated = true;
    dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-named-user-'));
    await chmod(dataDir, 0o755);
    // Root's, outside the data dir: what a task's planted links point at must survive cleanup.
    outside = await mkdtemp(join(tmpdir(), 'omega-named-user-outside-'));
    await chmod(outside, 0o755);
    await mkdir(join(outside, 'dir'));
    await writeFile(join(outside, 'dir', 'keep'), 'root data\n');
    kv = new MemoryKv();
    cell = new Cell(kv, freshCellName());
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
          done();
        },
      }),
    );
    agent = new Agent({
      cell,
      machines: [{ id: m1, capacity: { cpuMillis: 64_000, memoryBytes: 64 * 1024 ** 3 } }],
      executor: async ({ reporter }) => {
        const executor = new ProcessExecutor({ dataDir, machineId: m1, reporter, cgroups: driver, taskUids: { first: 300_100, last: 300_199 }, allowUsers: [USER], killGraceMs: 300, logger });
        await executor.init();
        return executor;
      },
      flushIntervalMs: 20,
    });
    await agent.start();
    mirror = cell.mirror();
    await mirror.start();
  });

  afterAll(async () => {
    if (skip) return;
    try {
      await agent?.stop({ drain: true });
      await mirror?.stop();
      await kv?.close();
      for (const controller of driver.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) {
        await rmdir(join(driver.root, controller, parent)).catch(() => undefined);
      }
      await rm(dataDir, { recursive: true, force: true });
      await rm(outside, { recursive: true, force: true });
    } finally {
      if (userCreated) execFileSync('userdel', [USER], { stdio: 'ignore' });
    }
  });

  async function run(name: string, spec: JobSpec): Promise<void> {
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
  }
  const asUser = (spec: JobSpec, user: string): JobSpec => ({ ...spec, task: { ...spec.task, user } });
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const ended = (name: string): boolean => attemptEnded(record(name));
  const paths = (name: string) => taskLogPaths(dataDir, taskId(name, 0), 1);

  it.skipIf(skip)('runs as the allowed user in a 0700 work dir it owns, which is removed without following the links the task planted', async () => {
    const script = [
      'id -un',
      'stat -c "%U %a" "$PWD"',
      `ln -s ${outside}/dir "$PWD/link"`,
      `mkdir "$PWD/sub" && ln -s ${outside}/dir/keep "$PWD/sub/keep"`,
    ].join('; ');
    await run('allowed', asUser(jobSpec('allowed').cpu(100).memory('16Mi').command('/bin/sh', '-c', script).build(), USER));
    await eventually('the task to end', () => ended('allowed'));
    expect(record('allowed')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const out = await readFile(paths('allowed').stdout, 'utf8');
    expect(out.trim().split('\n')).toEqual([USER, `${USER} 700`]);
    await eventually('the work dir to be removed', () => !existsSync(join(paths('allowed').dir, 'work')));
    expect(await readFile(join(outside, 'dir', 'keep'), 'utf8')).toBe('root data\n');
  });

  it.skipIf(skip)('fails a job naming a user the agent does not allow with user-not-allowed, runs nothing, and logs the user and the flag', async () => {
    await run('refused', asUser(jobSpec('refused').cpu(100).memory('16Mi').command('/bin/sh', '-c', 'echo ran').build(), 'daemon'));
    await eventually('the task to end', () => ended('refused'));
    expect(record('refused')).toMatchObject({ state: 'failed', reason: 'user-not-allowed' });
    expect(existsSync(paths('refused').stdout)).toBe(false);
    const refusal = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.reason === 'user-not-allowed' && entry.user === 'daemon');
    expect(refusal).toMatchObject({ user: 'daemon', flag: '--allow-users', allowed: [USER] });
  });
});
