/**
 * A real `omega-scheduler-batch` process through etcd outages, on a real etcd:
 * - etcd frozen (SIGSTOP) for longer than the scheduler's lease TTL (2 s), then thawed: the
 *   scheduler loses its lease, keeps running, takes a new one, and places a job submitted after
 *   etcd is back; same process, never restarted;
 * - the scheduler started before etcd listens: it waits, retrying, and comes up when etcd does.
 *
 * Machines are registered directly through Cell, with a heartbeat lease long enough (30 s) to
 * outlive the freeze, so only the scheduler's lease runs out. Every process started here is
 * stopped here (etcd is thawed first); etcd listens on 127.0.0.1 only. Runs the built entry
 * points (`tsc -b` first).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, freePort, startEtcd, type CellSnapshot, type Heartbeat, type JobId, type RunningEtcd } from '@omega/cell-state';
import { freshCellName, jobSpec, machine } from '@omega/cell-state/testing';
import { readStoredCell } from '@omega/scheduler-core/testing';
import { eventually, repoPath, startNode, stopAll, type Started } from './support/processes.js';

const BATCH = repoPath('packages/scheduler-batch/dist/main.js');
/** How long etcd stays frozen after the scheduler noticed its lease lost (the loss itself takes over a TTL). */
const FROZEN_AFTER_LOSS_MS = 2_000;

let etcd: RunningEtcd | undefined;
let frozen = false;
let kv: EtcdKv | undefined;
let heartbeat: Heartbeat | undefined;

afterEach(async () => {
  if (frozen && etcd !== undefined) process.kill(etcd.pid, 'SIGCONT');
  frozen = false;
  await stopAll();
  await heartbeat?.stop().catch(() => undefined);
  heartbeat = undefined;
  await kv?.close();
  kv = undefined;
  await etcd?.stop();
  etcd = undefined;
});

function schedulerArgs(endpoint: string, cellName: string): string[] {
  return ['--insecure', '--etcd', endpoint, '--cell', cellName, '--name', 'batch-0', '--lease-ttl-s', '2', '--stats-interval-ms', '250', '--seed', '1', '--log-level', 'info'];
}

/** Two machines and their heartbeat, through the test's own client. */
async function openCell(running: RunningEtcd, cellName: string): Promise<Cell> {
  kv = new EtcdKv({ endpoints: running.endpoints, limits: running.limits });
  const cell = new Cell(kv, cellName);
  const regs = [machine('m0').cpu(4000).memory('8Gi').build(), machine('m1').cpu(4000).memory('8Gi').build()];
  await cell.registerMachines(regs);
  heartbeat = await cell.startHeartbeats(regs.map((r) => r.id), { ttlSeconds: 30, agent: 'scheduler-outage-test' });
  return cell;
}

/** The job's tasks, once every one is placed by batch-0. */
function placedBy(snapshot: CellSnapshot, job: JobId, tasks: number): boolean {
  const placed = [...snapshot.tasksOf(job)].filter((t) => t.state === 'placed' && t.scheduler === 'batch-0');
  return placed.length === tasks && snapshot.status(job)?.state === 'running';
}

function alive(started: Started): boolean {
  return started.child.exitCode === null && started.child.signalCode === null;
}

describe('a scheduler process and an unreachable etcd', () => {
  it('keeps running through etcd frozen past its lease TTL, takes a new lease, and places a job submitted afterwards', async () => {
    etcd = await startEtcd();
    const cellName = freshCellName();
    const cell = await openCell(etcd, cellName);
    const { started } = await startNode(BATCH, schedulerArgs(etcd.clientUrl, cellName), /"msg":"scheduler started"/, 30_000);
    const pid = started.child.pid;
    const before = (await cell.createJob({ id: 'before' as JobId, spec: jobSpec('before').instances(2).cpu(500).build() })).job.id;
    await eventually('the first job to be placed', async () => placedBy(await readStoredCell(cell), before, 2), 20_000);
    const firstLease = (await readStoredCell(cell)).owner(before)?.lease;

    process.kill(etcd.pid, 'SIGSTOP');
    frozen = true;
    await eventually('the scheduler to notice its lease is lost', () => started.output().includes('scheduler lease lost'), 20_000, 100);
    await new Promise((resolve) => setTimeout(resolve, FROZEN_AFTER_LOSS_MS));
    expect(alive(started)).toBe(true);
    process.kill(etcd.pid, 'SIGCONT');
    frozen = false;

    await eventually('the scheduler to resume under a new lease', () => started.output().includes('scheduler lease granted; resuming'), 40_000, 100);
    const after = (await cell.createJob({ id: 'after' as JobId, spec: jobSpec('after').instances(3).cpu(500).build() })).job.id;
    const final = await eventually('the job submitted after the outage to be placed', async () => {
      const snapshot = await readStoredCell(cell);
      return placedBy(snapshot, after, 3) ? snapshot : undefined;
    }, 30_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n--- scheduler:\n${started.output().split('\n').slice(-15).join('\n')}`);
    });

    expect(alive(started)).toBe(true);
    expect(started.child.pid).toBe(pid);
    expect(started.output()).not.toMatch(/"msg":"scheduler (stopped|failed)"/);
    const owner = final.owner(after);
    expect(owner?.scheduler).toBe('batch-0');
    expect(owner?.lease).not.toBe(firstLease);
    // The job from before the outage is owned again, under the new lease, and was not placed twice.
    await eventually('the first job to be owned again', async () => (await readStoredCell(cell)).owner(before)?.lease === owner?.lease, 20_000);
    expect([...final.tasksOf(before)].map((t) => t.attempt)).toEqual([1, 1]);
    expect([...final.schedulerStats()].map((s) => s.name)).toEqual(['batch-0']);

    await started.stop();
    expect(started.child.exitCode).toBe(0);
  });

  it('started before etcd listens, waits for it, then comes up and places a job', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const endpoint = `http://127.0.0.1:${clientPort}`;
    const cellName = freshCellName();
    const { started } = await startNode(BATCH, schedulerArgs(endpoint, cellName), /"msg":"cell store unreachable; retrying"/, 30_000);
    // Still waiting a few seconds later: retrying, not exited.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(alive(started)).toBe(true);
    expect(started.output().match(/cell store unreachable; retrying/g)).toHaveLength(1);

    etcd = await startEtcd({ clientPort, peerPort });
    const cell = await openCell(etcd, cellName);
    await eventually('the scheduler to start', () => started.output().includes('"msg":"scheduler started"'), 30_000, 100);
    expect(started.output()).toContain('"msg":"cell store reached"');
    const job = (await cell.createJob({ id: 'first' as JobId, spec: jobSpec('first').instances(2).cpu(500).build() })).job.id;
    await eventually('the job to be placed', async () => placedBy(await readStoredCell(cell), job, 2), 30_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n--- scheduler:\n${started.output().split('\n').slice(-15).join('\n')}`);
    });
    expect(alive(started)).toBe(true);

    await started.stop();
    expect(started.child.exitCode).toBe(0);
  });
});
