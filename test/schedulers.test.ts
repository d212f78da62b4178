/**
 * Scheduler processes competing over one real etcd: three `omega-scheduler-batch` and one
 * `omega-scheduler-service`, each its own process with its own mirror, on 50 machines whose
 * heartbeats this test keeps. A burst of mixed jobs (a few thousand tasks, some gangs, some
 * services) nearly fills the cell, with think time, so the instances conflict; one batch
 * instance is SIGKILLed half-way and the others must take its jobs over when its lease (2 s)
 * ends. Then, read from etcd: no machine over capacity, no task with two live claims, every job
 * placed or saying why not, and the published stats show conflicts that were retried.
 *
 * Runs the built entry points (`tsc -b` runs before vitest). Every process started here is
 * stopped here; etcd listens on 127.0.0.1 only.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, startEtcd, type CellSnapshot, type Heartbeat, type JobId, type RunningEtcd } from '@omega/cell-state';
import { freshCellName, jobSpec, machine } from '@omega/cell-state/testing';
import { jobAnswers, placementViolations, readStoredCell } from '@omega/scheduler-core/testing';
import { eventually, repoPath, startNode, stopAll, type Started } from './support/processes.js';

const BATCH = repoPath('packages/scheduler-batch/dist/main.js');
const SERVICE = repoPath('packages/scheduler-service/dist/main.js');
const MACHINES = 50;

let etcd: RunningEtcd;
let kv: EtcdKv;
let cell: Cell;
let heartbeat: Heartbeat;
const schedulers = new Map<string, Started>();

async function startScheduler(script: string, name: string, seed: number): Promise<Started> {
  const { started } = await startNode(
    script,
    [
      '--insecure',
      '--etcd', etcd.endpoints.join(','),
      '--cell', cell.keys.cell,
      '--name', name,
      '--t-job-ms', '50',
      '--t-task-ms', '4',
      '--lease-ttl-s', '2',
      '--ownership-grace-ms', '500',
      '--stats-interval-ms', '250',
      '--max-txn-ops', String(etcd.limits.maxTxnOps),
      '--seed', String(seed),
      '--log-level', 'info',
    ],
    /"msg":"scheduler started"/,
    30_000,
  );
  schedulers.set(name, started);
  return started;
}

async function stored(): Promise<CellSnapshot> {
  return readStoredCell(cell);
}

/** Task records in the cell (each was placed at least once). */
function placedTasks(snapshot: CellSnapshot): number {
  let n = 0;
  for (const job of snapshot.jobs()) for (const _ of snapshot.tasksOf(job.id)) n++;
  return n;
}

beforeAll(async () => {
  etcd = await startEtcd();
  kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  cell = new Cell(kv, freshCellName());
  // Few, small machines: 50 x 4 CPU. The burst below asks for about their whole CPU.
  const regs = Array.from({ length: MACHINES }, (_, i) => machine(`m${i}`).cpu(4000).memory('16Gi').attr('rack', `r${i % 5}`).build());
  await cell.registerMachines(regs);
  heartbeat = await cell.startHeartbeats(regs.map((r) => r.id), { ttlSeconds: 10, agent: 'schedulers-test' });
});

afterAll(async () => {
  await stopAll();
  await heartbeat?.stop().catch(() => undefined);
  await kv?.close();
  await etcd?.stop();
});

describe('batch and service scheduler processes on one etcd', () => {
  it('place a burst of jobs without over-committing, retry their conflicts, and finish the jobs of a killed instance', async () => {
    expect(existsSync(SERVICE)).toBe(true);
    await Promise.all([startScheduler(BATCH, 'batch-0', 1), startScheduler(BATCH, 'batch-1', 2), startScheduler(BATCH, 'batch-2', 3), startScheduler(SERVICE, 'service-0', 4)]);
    await eventually('all four instances to announce themselves', async () => [...(await stored()).schedulerStats()].length === 4, 20_000);

    // The burst: 150 batch jobs (every 10th a gang) and 8 services, ~3,000 tasks, ~100% of the CPU.
    const jobs: JobId[] = [];
    const specs = [
      ...Array.from({ length: 150 }, (_, j) => {
        const spec = jobSpec(`batch-${j}`).instances(5 + ((j * 7) % 30)).cpu([40, 60, 80, 100][j % 4] as number).memory('64Mi').priority(j % 3);
        return { id: `batch-${j}`, spec: (j % 10 === 0 ? spec.gang() : spec).build() };
      }),
      ...Array.from({ length: 8 }, (_, j) => ({ id: `svc-${j}`, spec: jobSpec(`svc-${j}`).service().instances(10).cpu(100).memory('128Mi').priority(5).build() })),
    ];
    await Promise.all(specs.map(async ({ id, spec }) => jobs.push((await cell.createJob({ id: id as JobId, spec })).job.id)));
    const totalTasks = specs.reduce((n, s) => n + s.spec.instances, 0);
    expect(totalTasks).toBeGreaterThan(2500);

    // Half-way, kill one batch instance outright.
    await eventually('a third of the tasks to be placed', async () => placedTasks(await stored()) >= totalTasks / 3, 30_000, 100);
    const atKill = await stored();
    const victimJobs = [...atKill.owners()].filter((o) => o.scheduler === 'batch-0').map((o) => o.jobId);
    const victim = schedulers.get('batch-0') as Started;
    victim.child.kill('SIGKILL');
    await eventually('the killed instance to exit', () => victim.child.exitCode !== null || victim.child.signalCode !== null, 10_000);
    schedulers.delete('batch-0');

    // Every job ends placed, finished or saying why not; none is left with the dead instance.
    let still = '';
    const final = await eventually(
      'every job to be placed or to say why not, none owned by the killed instance',
      async () => {
        const snapshot = await stored();
        const open = jobAnswers(snapshot, Date.now()).filter((a) => a.answer === 'none');
        const orphaned = [...snapshot.owners()].filter((o) => o.scheduler === 'batch-0');
        still = `${open.length} jobs without an answer (${open.slice(0, 5).map((a) => `${a.jobId}: ${a.detail}, owner ${snapshot.owner(a.jobId)?.scheduler ?? 'none'}`).join('; ')}), ${orphaned.length} owned by batch-0`;
        return open.length === 0 && orphaned.length === 0 && snapshot.jobCount === jobs.length ? snapshot : undefined;
      },
      40_000,
      500,
    ).catch((error: unknown) => {
      const logs = [...schedulers].map(([name, p]) => `--- ${name}:\n${p.output().split('\n').slice(-8).join('\n')}`).join('\n');
      throw new Error(`${(error as Error).message}: ${still}\n${logs}`);
    });
    expect(placementViolations(final)).toEqual([]);
    for (const id of victimJobs) {
      const owner = final.owner(id);
      const answer = jobAnswers(final, Date.now()).find((a) => a.jobId === id);
      expect(answer?.answer).not.toBe('none');
      if (owner !== undefined) expect(owner.scheduler).not.toBe('batch-0');
    }
    const placed = jobAnswers(final, Date.now()).filter((a) => a.answer === 'placed').length;
    expect(placed).toBeGreaterThan(jobs.length / 2);
    for (let j = 0; j < 8; j++) expect(final.status(`svc-${j}` as JobId)?.state).toBe('running');

    // The survivors' published stats: conflicts happened, and their jobs still got placed.
    const stats = [...final.schedulerStats()];
    expect(stats.map((s) => s.name).sort()).toEqual(['batch-1', 'batch-2', 'service-0']);
    const failed = stats.reduce((n, s) => n + s.transactionsFailed, 0);
    const conflicted = stats.reduce((n, s) => n + s.claimsConflicted, 0);
    expect(failed).toBeGreaterThan(0);
    expect(conflicted).toBeGreaterThan(0);

    // A clean stop: exit 0, ownerships and stats gone with the revoked leases.
    for (const [name, s] of schedulers) {
      await s.stop();
      expect([name, s.child.exitCode]).toEqual([name, 0]);
    }
    schedulers.clear();
    const after = await stored();
    expect([...after.owners()]).toEqual([]);
    expect([...after.schedulerStats()]).toEqual([]);
  });
});
