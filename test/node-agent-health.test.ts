/**
 * Health checks run by a real agent (in this process, ProcessExecutor on real cgroups) over a
 * real etcd, with the service scheduler binary placing the jobs: an http check against a task
 * that serves (python3's http.server) passes and `passing` is stored in etcd once (the record is
 * not rewritten while it stays so); a failing command check stops the task `failed` with reason
 * `health-check-failed` and the scheduler's restart policy replaces it; a command check runs in
 * the task's cgroup, PID/mount namespaces and uid (it sees the task's processes and files, not
 * the host's); a restarted agent resumes the check of a task it adopts. Needs root and writable cgroups (and, for the namespace test, a host that allows
 * them); skipped loudly otherwise. Build first (`npx tsc -b`).
 */
import { existsSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, chmod, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, freePort, HEALTH_CHECK_FAILED, jobId, machineId, startEtcd, taskId, type CellMirror, type JobSpec, type RunningEtcd, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, defaultSupervisorPath, detectIsolation, ProcessExecutor, taskInstanceName, type HostIsolation } from '@omega/node-agent';
import { detectRealCgroups } from './support/real-agent.js';
import { eventually, repoPath, startNode, type Started } from './support/processes.js';

const parent = `omega-test-health-${process.pid}`;
const m1 = machineId('health-m1');
const real = await detectRealCgroups(parent, 'health check tests');
const isolation = real.skip ? undefined : await detectIsolation({ supervisorPath: defaultSupervisorPath(), mode: 'auto' });
const noNamespaces = isolation === undefined || !isolation.use.pid;
if (!real.skip && noNamespaces) console.warn(`SKIPPED: the health check namespace test because this host does not allow the namespaces: ${isolation?.problem ?? 'unknown'}`);
const python = existsSync('/usr/bin/python3');
if (!python) console.warn('SKIPPED: the http health check test because /usr/bin/python3 is missing');

describe('health checks run by a real agent', () => {
  let etcd: RunningEtcd;
  let kv: EtcdKv;
  let cell: Cell;
  let mirror: CellMirror;
  let agent: Agent;
  let newAgent: () => Agent;
  let scheduler: Started | undefined;
  let dataDir: string;
  /** Every state/reason a task record went through, as the mirror saw it. */
  const seen = new Map<string, string[]>();

  beforeAll(async () => {
    if (real.skip) return;
    etcd = await startEtcd();
    kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    cell = new Cell(kv, freshCellName());
    dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-health-'));
    await chmod(dataDir, 0o755);
    newAgent = () => new Agent({
      cell,
      machines: [{ id: m1, capacity: { cpuMillis: 64_000, memoryBytes: 64 * 1024 ** 3 } }],
      executor: async ({ reporter }) => {
        const executor = new ProcessExecutor({ dataDir, machineId: m1, reporter, cgroups: real.driver, taskUids: { first: 232_000, last: 232_499 }, killGraceMs: 500, isolation: isolation?.use as HostIsolation });
        await executor.init();
        return executor;
      },
      flushIntervalMs: 20,
    });
    agent = newAgent();
    await agent.start();
    mirror = cell.mirror();
    mirror.onChange((change) => {
      for (const c of change.changes) {
        if (c.kind !== 'task') continue;
        const t = mirror.snapshot().task(c.id as Task['id']);
        if (t !== undefined) seen.set(t.id, [...(seen.get(t.id) ?? []), `${t.attempt}:${t.state}:${t.reason}`]);
      }
    });
    await mirror.start();
    ({ started: scheduler } = await startNode(
      repoPath('packages/scheduler-service/dist/main.js'),
      ['--insecure', '--etcd', etcd.endpoints.join(','), '--cell', cell.keys.cell, '--name', 'service-health', '--lease-ttl-s', '2', '--ownership-grace-ms', '500', '--max-txn-ops', String(etcd.limits.maxTxnOps), '--seed', '13', '--log-level', 'info'],
      /"msg":"scheduler started"/,
      30_000,
    ));
  }, 60_000);

  afterAll(async () => {
    if (real.skip) return;
    await scheduler?.stop();
    await agent?.stop({ drain: true });
    await mirror?.stop();
    await kv?.close();
    await etcd?.stop();
    const driver = real.driver;
    for (const controller of driver?.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) {
      if (driver !== undefined) await rmdir(join(driver.root, controller, parent)).catch(() => undefined);
    }
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  const service = (name: string) => jobSpec(name).service().cpu(100).memory('64Mi');
  async function submit(name: string, spec: JobSpec): Promise<void> {
    await cell.createJob({ id: jobId(name), spec });
  }
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const workDir = (t: Task): string => join(dataDir, 'tasks', taskInstanceName(t.id, t.attempt), 'work');

  it.skipIf(real.skip || !python)('an http check against a task that serves passes, and passing is written to etcd once', async () => {
    const port = await freePort();
    await submit('web', service('web').command('python3', '-m', 'http.server', String(port), '--bind', '127.0.0.1').healthCheck({ http: { port, path: '/' }, intervalMs: 200, gracePeriodMs: 1_000, failureThreshold: 10 }).build());
    await eventually('the web task to pass its check', () => record('web')?.health === 'passing', 30_000, 50);
    const stored = await cell.getTask(taskId('web', 0));
    expect(stored).toMatchObject({ state: 'running', health: 'passing' });
    expect(stored!.healthSinceMs! - stored!.startedAtMs).toBeGreaterThanOrEqual(1_000);
    // Six more checks pass: nothing rewrites the record.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const later = await cell.getTask(taskId('web', 0));
    expect(later?.revision).toBe(stored?.revision);
    expect(later).toMatchObject({ state: 'running', health: 'passing', healthSinceMs: stored!.healthSinceMs });
    await cell.setJobDesired(jobId('web'), 'killed');
    await eventually('the web task to stop', () => record('web')?.state === 'killed', 30_000, 50);
  });

  it.skipIf(real.skip)('a failing command check stops the task failed health-check-failed, and the restart policy replaces it', async () => {
    await submit('sick', service('sick').command('sleep', '300').healthCheck({ command: ['sh', '-c', 'echo not ready >&2; exit 1'], intervalMs: 200, failureThreshold: 2 }).restart({ kind: 'always', initialBackoffMs: 100, maxBackoffMs: 200 }).build());
    await eventually('the task to be replaced after failing its check', () => (record('sick')?.attempt ?? 0) >= 2, 30_000, 50);
    const history = seen.get(taskId('sick', 0)) ?? [];
    expect(history).toContain(`1:failed:${HEALTH_CHECK_FAILED}`);
    // Failed twice in a row, so it was reported failing first.
    const first = history.filter((h) => h.startsWith('1:'));
    expect(first.at(-1)).toBe(`1:failed:${HEALTH_CHECK_FAILED}`);
    await cell.setJobDesired(jobId('sick'), 'killed');
    await eventually('the sick task to stop', () => ['killed', 'failed'].includes(record('sick')?.state ?? ''), 30_000, 50);
  });

  it.skipIf(real.skip)('a restarted agent resumes the check of a task it adopts, rewriting nothing while the result is unchanged', async () => {
    await submit('adopt', service('adopt').command('sleep', '300').healthCheck({ command: ['sh', '-c', 'test ! -e stop-check'], intervalMs: 200, failureThreshold: 2 }).build());
    await eventually('the adopt task to pass its check', () => record('adopt')?.health === 'passing', 30_000, 50);
    const before = record('adopt')!;
    await agent.stop({ drain: false });
    agent = newAgent();
    await agent.start();
    // Several checks of the new agent pass: the record is not rewritten.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await cell.getTask(before.id))?.revision).toBe(before.revision);
    // The adopted task's check still runs: make it fail, and the new agent stops the task.
    await writeFile(join(workDir(before), 'stop-check'), '');
    await eventually('the adopted task to fail its check', () => (seen.get(before.id) ?? []).includes(`1:failed:${HEALTH_CHECK_FAILED}`), 30_000, 50);
    await cell.setJobDesired(jobId('adopt'), 'killed');
    await eventually('the adopt task to stop', () => ['killed', 'failed'].includes(record('adopt')?.state ?? ''), 30_000, 50);
  });

  it.skipIf(real.skip || noNamespaces)('a command check runs in the task\'s cgroup, PID and mount namespaces, as its uid', async () => {
    const evidence = 'id -u > check-uid; cat /proc/self/cgroup > check-cgroup; readlink /proc/self/ns/pid > check-pidns; readlink /proc/self/ns/mnt > check-mntns; ls /proc | grep -c "^[0-9]" > check-procs; test -e /tmp/task-was-here';
    const task = 'id -u > task-uid; cat /proc/self/cgroup > task-cgroup; readlink /proc/self/ns/pid > task-pidns; readlink /proc/self/ns/mnt > task-mntns; touch /tmp/task-was-here; exec sleep 300';
    await submit('ns', service('ns').command('sh', '-c', task).healthCheck({ command: ['sh', '-c', evidence], intervalMs: 300, gracePeriodMs: 300, failureThreshold: 10 }).build());
    await eventually('the ns task to pass its check', () => record('ns')?.health === 'passing', 30_000, 50);
    const dir = workDir(record('ns')!);
    const read = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');
    const checkUid = await read('check-uid');
    expect(checkUid).toBe(await read('task-uid'));
    expect(Number(checkUid)).toBeGreaterThanOrEqual(232_000);
    expect(await read('check-pidns')).toBe(await read('task-pidns'));
    expect((await read('check-pidns')).trim()).not.toBe(readlinkSync('/proc/self/ns/pid'));
    expect(await read('check-cgroup')).toContain(parent);
    expect(await read('check-mntns')).toBe(await read('task-mntns'));
    expect(await read('check-cgroup')).toBe(await read('task-cgroup'));
    // The task's private /tmp (the check found the task's file there, not on the host's /tmp).
    expect(existsSync('/tmp/task-was-here')).toBe(false);
    // Its own /proc: the init, the task's sleep, the check's sh and what it runs; not the host's hundreds.
    expect(Number(await read('check-procs'))).toBeLessThan(10);
    await cell.setJobDesired(jobId('ns'), 'killed');
    await eventually('the ns task to stop', () => record('ns')?.state === 'killed', 30_000, 50);
  });
});
