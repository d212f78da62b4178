/**
 * A uid per task (`taskUids`): tasks of different jobs run as different uids from the range,
 * each owning its 0700 work dir, so one cannot read another's environment, signal it or plant a
 * file in its work dir; the range running out fails the start; a finished task's uid is given
 * back. Needs root and writable cgroups; skipped loudly otherwise. Runs the agent in this process
 * on a MemoryKv.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobId, machineId, taskId, type Cell, type CellMirror, type JobSpec, type Task } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import { taskLogPaths, type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded, detectRealCgroups, type RealAgent, startRealAgent } from './support/real-agent.js';

const m1 = machineId('uid-m1');
const parent = `omega-test-uid-${process.pid}`;
const FIRST = 300_000;
const LAST = 300_001;

const { driver, skip } = await detectRealCgroups(parent, 'uid-per-task tests on real cgroups');

describe('a uid per task', () => {
  let real: RealAgent | undefined;
  let cell: Cell;
  let mirror: CellMirror;
  let dataDir: string;

  beforeAll(async () => {
    if (skip) return;
    real = await startRealAgent({ driver: driver as CgroupDriver, parent, machineId: m1, dataDirPrefix: 'omega-agent-uid-', executor: { taskUids: { first: FIRST, last: LAST }, killGraceMs: 300 } });
    ({ cell, mirror, dataDir } = real);
  });

  afterAll(async () => {
    await real?.stop();
  });

  async function run(name: string, spec: JobSpec): Promise<void> {
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
  }
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const ended = (name: string): boolean => attemptEnded(record(name));
  const work = (name: string): string => join(taskLogPaths(dataDir, taskId(name, 0), 1).dir, 'work');

  it.skipIf(skip)("tasks of two jobs run as two uids of the range and cannot read, signal or write into each other", async () => {
    await run('victim', jobSpec('victim').cpu(100).memory('16Mi').env('VICTIM_SECRET', 'hunter2').command('sleep', '60').build());
    await eventually('the victim to run', () => record('victim')?.state === 'running');
    const victimPid = record('victim')!.pid;
    const victimWork = work('victim');
    const st = await stat(victimWork);
    expect(st.uid).toBeGreaterThanOrEqual(FIRST);
    expect(st.uid).toBeLessThanOrEqual(LAST);
    expect(st.gid).toBe(st.uid);
    expect(st.mode & 0o777).toBe(0o700);

    const probe = [
      'id -u',
      `cat /proc/${victimPid}/environ >/dev/null 2>&1 && echo READ-ENVIRON`,
      `kill -9 ${victimPid} 2>/dev/null && echo KILLED`,
      `touch ${victimWork}/planted 2>/dev/null && echo PLANTED`,
      `ls ${victimWork} >/dev/null 2>&1 && echo LISTED`,
      'echo probed',
    ].join('; ');
    await run('attacker', jobSpec('attacker').cpu(100).memory('16Mi').command('/bin/sh', '-c', probe).build());
    await eventually('the attacker to end', () => ended('attacker'));
    expect(record('attacker')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const out = await readFile(taskLogPaths(dataDir, taskId('attacker', 0), 1).stdout, 'utf8');
    const [uidLine, ...rest] = out.trim().split('\n');
    expect(Number(uidLine)).not.toBe(st.uid);
    expect(Number(uidLine)).toBeGreaterThanOrEqual(FIRST);
    expect(Number(uidLine)).toBeLessThanOrEqual(LAST);
    expect(rest).toEqual(['probed']);
    expect(record('victim')?.state).toBe('running');
  });

  it.skipIf(skip)('a task finds no free uid when the range is used up and fails unrun; a finished task gives its uid back', async () => {
    // The victim holds one uid; this takes the other (the attacker gave it back).
    await run('holder', jobSpec('holder').cpu(100).memory('16Mi').command('sleep', '60').build());
    await eventually('the holder to run', () => record('holder')?.state === 'running');
    await run('starved', jobSpec('starved').cpu(100).memory('16Mi').command('/bin/sh', '-c', 'echo ran').build());
    await eventually('the starved task to end', () => ended('starved'));
    expect(record('starved')).toMatchObject({ state: 'failed', reason: 'start-failed' });

    await cell.setJobDesired(jobId('holder'), 'killed');
    await eventually('the holder to be killed', () => ended('holder'));
    await run('after', jobSpec('after').cpu(100).memory('16Mi').command('id', '-u').build());
    await eventually('the next task to end', () => ended('after'));
    expect(record('after')).toMatchObject({ state: 'succeeded' });
    await cell.setJobDesired(jobId('victim'), 'killed');
    await eventually('the victim to be killed', () => ended('victim'));
  });

  it.skipIf(skip)('a restarted agent keeps the uid of a task it adopts out of new hands', async () => {
    await run('kept', jobSpec('kept').cpu(100).memory('16Mi').command('sleep', '60').build());
    await eventually('the kept task to run', () => record('kept')?.state === 'running');
    const keptUid = (await stat(work('kept'))).uid;
    // Stopped without drain: the task keeps running and the next agent adopts it.
    await real!.restartAgent();
    await run('fresh', jobSpec('fresh').cpu(100).memory('16Mi').command('sleep', '60').build());
    await eventually('the fresh task to run', () => record('fresh')?.state === 'running');
    const freshUid = (await stat(work('fresh'))).uid;
    expect(freshUid).not.toBe(keptUid);
    expect([keptUid, freshUid].sort()).toEqual([FIRST, LAST]);
    await run('extra', jobSpec('extra').cpu(100).memory('16Mi').command('true').build());
    await eventually('the extra task to end', () => ended('extra'));
    expect(record('extra')).toMatchObject({ state: 'failed', reason: 'start-failed' });
    for (const name of ['kept', 'fresh']) await cell.setJobDesired(jobId(name), 'killed');
    await eventually('both to be killed', () => ended('kept') && ended('fresh'));
  });
});
