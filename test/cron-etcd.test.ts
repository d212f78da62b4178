/**
 * Cron jobs on a real etcd with real scheduler processes: two `omega-scheduler-batch` instances,
 * a template that runs every 3 s, and the instance that owns it SIGKILLed between two scheduled
 * times. Whatever the takeover costs, each scheduled time gets exactly one run (the run's id is
 * its scheduled time, created in an etcd transaction), and none is lost (the starting deadline
 * is longer than the takeover). Runs the built entry points (`tsc -b` first); etcd listens on
 * 127.0.0.1 only and every process is stopped here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { nextScheduledAt, type Cell, type CronSchedule, type Job, type JobId } from '@omega/cell-state';
import { jobSpec, machine } from '@omega/cell-state/testing';
import { readStoredCell } from '@omega/scheduler-core/testing';
import { startEtcdCell, type EtcdCell } from './support/etcd-cell.js';
import { eventually, repoPath, startNode, stopAll, type Started } from './support/processes.js';

const BATCH = repoPath('packages/scheduler-batch/dist/main.js');

let cluster: EtcdCell | undefined;

afterEach(async () => {
  await stopAll();
  await cluster?.stop();
  cluster = undefined;
});

function schedulerArgs(endpoint: string, cellName: string, name: string): string[] {
  return ['--insecure', '--etcd', endpoint, '--cell', cellName, '--name', name, '--lease-ttl-s', '2', '--stats-interval-ms', '500', '--seed', '1', '--log-level', 'info'];
}

async function runsOf(cell: Cell, template: JobId): Promise<Job[]> {
  return [...(await readStoredCell(cell)).jobs()].filter((j) => j.cronRun?.templateId === template);
}

describe('a cron job on etcd', () => {
  it('gets exactly one run per scheduled time while the scheduler that owns it is SIGKILLed', async () => {
    cluster = await startEtcdCell([machine('m0').cpu(4000).memory('8Gi').build()]);
    const { etcd, cell, cellName } = cluster;
    const schedulers = new Map<string, Started>();
    for (const name of ['batch-a', 'batch-b']) schedulers.set(name, (await startNode(BATCH, schedulerArgs(etcd.clientUrl, cellName, name), /"msg":"scheduler started"/, 30_000)).started);

    const schedule: CronSchedule = { cron: '*/3 * * * * *', timeZone: '', concurrency: 'allow', startingDeadlineMs: 60_000 };
    const submittedAtMs = Date.now();
    const template = (await cell.createJob({ id: 'tick' as JobId, spec: { ...jobSpec('tick').cpu(100).build(), schedule }, submittedAtMs })).job.id;
    await eventually('the first run', async () => (await runsOf(cell, template)).length >= 1, 20_000, 200);

    const owner = (await readStoredCell(cell)).owner(template)?.scheduler ?? '';
    const victim = schedulers.get(owner);
    expect(victim).toBeDefined();
    victim?.child.kill('SIGKILL');
    // Three more scheduled times pass; the other instance takes the template over.
    const killedAtMs = Date.now();
    const third = [0, 1, 2].reduce((at) => nextScheduledAt(schedule, at) ?? at, killedAtMs);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, third - Date.now()) + 500));
    const last = await eventually(
      'the survivor to have handled the third time after the kill',
      async () => {
        const status = (await readStoredCell(cell)).status(template);
        return (status?.cron?.lastScheduledAtMs ?? 0) >= third ? status?.cron?.lastScheduledAtMs : undefined;
      },
      30_000,
      200,
    );
    const times: number[] = [];
    for (let at = nextScheduledAt(schedule, submittedAtMs); at !== undefined && at <= last; at = nextScheduledAt(schedule, at)) times.push(at);
    const runs = (await runsOf(cell, template)).map((r) => r.cronRun?.scheduledAtMs ?? 0).sort((a, b) => a - b);
    expect(times.length).toBeGreaterThanOrEqual(4);
    expect(runs).toEqual(times);
    expect(new Set(runs).size).toBe(runs.length);
    const status = (await readStoredCell(cell)).status(template);
    expect(status?.state).toBe('scheduled');
    expect(status?.scheduler).not.toBe(owner);
  }, 90_000);
});
