/**
 * The task record's `message` through a real agent on real cgroups: a task whose program does not
 * exist ends `failed` / `start-failed` with the supervisor's words naming the program (and the
 * API's job view carries them), a program that runs and exits 127 by itself is a plain
 * `nonzero-exit` without words, and a start the agent refuses before any supervisor runs
 * (isolation it cannot give, a secret env it cannot read) says why without any env or secret
 * value. Needs root and writable cgroups; skipped loudly otherwise. Runs the agent in this
 * process on a MemoryKv.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobView } from '@omega/api';
import { jobId, machineId, taskId, type Cell, type CellMirror, type JobSpec, type SecretEnv, type Task } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded, detectRealCgroups, type RealAgent, startRealAgent } from './support/real-agent.js';

const m1 = machineId('msg-m1');
const parent = `omega-test-msg-${process.pid}`;
const ENV_VALUE = 'env-value-f00dfeed';
const SECRET_VALUE = 'secret-value-c0ffee42';

const { driver, skip } = await detectRealCgroups(parent, 'task message tests on real cgroups');

describe("a task record's message", () => {
  let real: RealAgent | undefined;
  let cell: Cell;
  let mirror: CellMirror;

  beforeAll(async () => {
    if (skip) return;
    // No isolation and no secret env reader: the refusals below are this agent's.
    real = await startRealAgent({ driver: driver as CgroupDriver, parent, machineId: m1, dataDirPrefix: 'omega-agent-msg-', executor: { taskUids: { first: 320_000, last: 320_009 }, killGraceMs: 300 } });
    ({ cell, mirror } = real);
  });

  afterAll(async () => {
    await real?.stop();
  });

  async function run(name: string, spec: JobSpec, secretEnv?: SecretEnv): Promise<void> {
    await cell.createJob({ id: jobId(name), spec, ...(secretEnv === undefined ? {} : { secretEnv }) });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
  }
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const ended = (name: string): boolean => attemptEnded(record(name));

  it.skipIf(skip)('names the program of a task whose command does not exist, which ends failed / start-failed, and the job view shows it', async () => {
    await run('nosuch', jobSpec('nosuch').cpu(100).memory('32Mi').env('SOME_SETTING', ENV_VALUE).command('/nonexistent/binary', '--flag').build());
    await eventually('the task to end', () => ended('nosuch'));
    const why = 'could not start the task: exec /nonexistent/binary: No such file or directory';
    expect(record('nosuch')).toMatchObject({ state: 'failed', reason: 'start-failed', exitCode: 127, message: why });
    expect(record('nosuch')?.message).not.toContain(ENV_VALUE);
    const view = jobView(mirror.snapshot(), jobId('nosuch'))?.view;
    expect(view?.tasks[0]).toMatchObject({ state: 'TASK_VIEW_STATE_FAILED', reason: 'start-failed', exit_code: 127, message: why });
  });

  it.skipIf(skip)('is empty for a program that ran and exited 127 by itself: its reason says all there is', async () => {
    await run('exit127', jobSpec('exit127').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'exit 127').build());
    await eventually('the task to end', () => ended('exit127'));
    expect(record('exit127')).toMatchObject({ state: 'failed', reason: 'nonzero-exit', exitCode: 127, message: '' });
  });

  it.skipIf(skip)('says what isolation a job asked that this agent cannot give', async () => {
    const base = jobSpec('no-net').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'echo ran').build();
    await run('no-net', { ...base, task: { ...base.task, network: 'none' } });
    await eventually('the task to end', () => ended('no-net'));
    expect(record('no-net')).toMatchObject({ state: 'failed', reason: 'isolation-unavailable', message: expect.stringMatching(/^the job asks for isolation this machine cannot give: network: none/) });
  });

  it.skipIf(skip)('says why a secret env could not be had, without its value', async () => {
    await run('secret', jobSpec('secret').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'echo ran').build(), { API_TOKEN: SECRET_VALUE });
    await eventually('the task to end', () => ended('secret'));
    const task = record('secret');
    expect(task).toMatchObject({ state: 'failed', reason: 'secret-env-unavailable', message: 'this agent was given no way to read secret env values' });
    expect(JSON.stringify(task)).not.toContain(SECRET_VALUE);
  });
});
