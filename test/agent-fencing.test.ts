/**
 * Fencing with the real agent binary (`node packages/node-agent/dist/main.js`, built by `tsc -b`
 * first) on a real etcd: etcd is frozen (SIGSTOP) for longer than the agent's fence time, so the
 * agent can no longer renew its heartbeat lease. Before etcd comes back, the task's processes
 * (a shell and the child it forked) must be gone; after it, the task's record says `lost`,
 * reason `fenced`, and the same agent process runs a task placed afterwards.
 *
 * As root with writable cgroups the agent enforces limits (the task is killed through its
 * cgroup, as a kill does); otherwise it runs with `--no-enforcement` (the process group is
 * killed) and says so.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, EtcdNotFoundError, findEtcd, jobId, machineId, startEtcd, taskId, type CellMirror, type RunningEtcd, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { detectCgroupDriver, type CgroupDriver } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { spawnLogged, type LoggedProcess } from './support/processes.js';

const MAIN = fileURLToPath(new URL('../packages/node-agent/dist/main.js', import.meta.url));
const MiB = 1024 ** 2;
const TTL_S = 2;
const FENCE_AFTER_MS = 2_500;
const PARENT = `omega-test-fence-${process.pid}`;

const etcdBinary = await findEtcd();
if (etcdBinary === undefined) console.warn(`SKIPPED: agent fencing tests because ${new EtcdNotFoundError([]).message}`);
const skip = etcdBinary === undefined;
const isRoot = process.getuid?.() === 0;
const cgroups = isRoot ? await detectCgroupDriver({ parent: PARENT }) : { driver: undefined, problem: 'the tests do not run as root' };
if (!skip && cgroups.driver === undefined) console.warn(`agent fencing test runs WITHOUT cgroups (--no-enforcement) because ${cgroups.problem}`);

/** Pids whose command line is exactly `argv` (a marker no other process has). */
async function pidsRunning(argv: readonly string[]): Promise<number[]> {
  const wanted = argv.join('\0');
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0$/, '');
      if (cmdline === wanted) found.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

describe('a node agent that cannot renew its lease', () => {
  let etcd: RunningEtcd | undefined;
  let kv: EtcdKv;
  let cell: Cell;
  let mirror: CellMirror;
  let agent: LoggedProcess | undefined;
  const dirs: string[] = [];

  beforeAll(async () => {
    if (skip) return;
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first with \`npx tsc -b\``);
    etcd = await startEtcd();
    kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    cell = new Cell(kv, freshCellName());
    mirror = cell.mirror();
    await mirror.start();
  });

  afterAll(async () => {
    if (skip) return;
    if (agent !== undefined && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent?.exited;
    await mirror?.stop();
    await kv?.close();
    if (etcd !== undefined) {
      // A frozen member cannot stop.
      try {
        process.kill(etcd.pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
      await etcd.stop();
    }
    // The agent's data dir holds its tasks' markers; what a failed test left in the cgroups goes.
    const driver = cgroups.driver as CgroupDriver | undefined;
    if (driver !== undefined) {
      for (const controller of driver.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) {
        const dir = join(driver.root, controller, PARENT);
        for (const child of await readdir(dir).catch(() => [] as string[])) {
          const procs = await readFile(join(dir, child, 'cgroup.procs'), 'utf8').catch(() => '');
          for (const pid of procs.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
          // Busy until the killed processes are reaped.
          for (let i = 0; i < 50 && (await rmdir(join(dir, child)).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'EBUSY')); i++) {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        await rmdir(dir).catch(() => undefined);
      }
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it.skipIf(skip)('kills its task before etcd comes back, reports it lost (fenced) once it does, and runs a task placed afterwards', async () => {
    const m1 = machineId('fence-m1');
    const dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-fence-'));
    await chmod(dataDir, 0o755);
    dirs.push(dataDir);
    const args = ['--insecure', '--etcd', etcd!.clientUrl, '--cell', cell.keys.cell, '--machine-id', m1, '--cpu', '4', '--memory', '8Gi', '--data-dir', dataDir];
    args.push('--kill-grace-ms', '500', '--heartbeat-ttl', String(TTL_S), '--fence-after-ms', String(FENCE_AFTER_MS), '--log-listen', 'none');
    args.push(...(cgroups.driver === undefined ? ['--no-enforcement'] : ['--cgroup-parent', PARENT]));
    agent = spawnLogged(MAIN, args);
    await eventually('the agent to start', () => agent!.messages.includes('agent started'), 30_000);

    // A shell and a child it forked, both with command lines no other process has.
    const marker = String(600_000 + (process.pid % 100_000));
    const child = ['sleep', `${marker}.1`];
    const main = ['sleep', `${marker}.2`];
    await cell.createJob({ id: jobId('fenced'), spec: jobSpec('fenced').cpu(100).memory('32Mi').command('/bin/sh', '-c', `${child.join(' ')} & exec ${main.join(' ')}`).build() });
    await placeTasks(cell, mirror, [{ taskId: taskId('fenced', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * MiB } }]);
    const task = (job: string): Task | undefined => mirror.snapshot().task(taskId(job, 0));
    await eventually('the task to run', () => task('fenced')?.state === 'running', 30_000);
    await eventually('both of its processes to be there', async () => (await pidsRunning(child)).length === 1 && (await pidsRunning(main)).length === 1, 10_000);
    const before = task('fenced')!;

    process.kill(etcd!.pid, 'SIGSTOP');
    let thawed = false;
    try {
      await eventually('the agent to fence', () => agent!.messages.includes('fenced: stopping every local task'), 30_000);
      await eventually('the task’s processes to be gone while etcd is still frozen', async () => (await pidsRunning(child)).length === 0 && (await pidsRunning(main)).length === 0, 30_000);
      expect(agent.child.exitCode).toBe(null);
      // Nothing could be written meanwhile: the record still says running.
      expect(task('fenced')).toMatchObject({ state: 'running', claimId: before.claimId });
    } finally {
      process.kill(etcd!.pid, 'SIGCONT');
      thawed = true;
    }
    expect(thawed).toBe(true);

    await eventually('the fenced task to be reported lost', () => task('fenced')?.state === 'lost', 60_000);
    expect(task('fenced')).toMatchObject({ state: 'lost', reason: 'fenced', claimId: before.claimId });
    expect(task('fenced')!.finishedAtMs).toBeGreaterThan(0);
    await eventually('the fence to be lifted', () => agent!.messages.includes('heartbeat lease renewed; fence lifted'), 60_000);

    // The same agent runs what is placed afterwards.
    await cell.createJob({ id: jobId('after'), spec: jobSpec('after').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'exit 0').build() });
    await eventually('the mirror to be current again', async () => mirror.revision >= (await kv.currentRevision()), 30_000);
    await placeTasks(cell, mirror, [{ taskId: taskId('after', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * MiB } }]);
    await eventually('the task placed afterwards to succeed', () => task('after')?.state === 'succeeded', 60_000);
    expect(agent.child.exitCode).toBe(null);

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
