/**
 * The node agent through etcd outages, with the real agent binary (`node
 * packages/node-agent/dist/main.js`, built by `tsc -b` first, run with `--no-enforcement` so
 * cgroups play no part) on a real etcd:
 *
 * - etcd frozen (SIGSTOP) for longer than the agent's heartbeat TTL, then thawed: the same agent
 *   process carries on, its machine is alive again, the task that ran through the outage is
 *   still the same process and its end is reported, a task that ended during the outage is
 *   reported with its exit code, and a job placed afterwards runs.
 * - an agent started before its etcd listens waits (one log line, no exit) and comes up once
 *   etcd starts.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, EtcdNotFoundError, findEtcd, freePort, jobId, machineId, startEtcd, taskId, type CellMirror, type RunningEtcd, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { spawnLogged, type LoggedProcess } from './support/processes.js';

const MAIN = fileURLToPath(new URL('../packages/node-agent/dist/main.js', import.meta.url));
const MiB = 1024 ** 2;
const TTL_S = 2;

const etcdBinary = await findEtcd();
if (etcdBinary === undefined) console.warn(`SKIPPED: agent outage tests because ${new EtcdNotFoundError([]).message}`);
const skip = etcdBinary === undefined;

const agents: LoggedProcess[] = [];
const etcds: RunningEtcd[] = [];
const dirs: string[] = [];

function startAgent(endpoint: string, cell: string, machine: string, dataDir: string): LoggedProcess {
  const args = ['--insecure', '--etcd', endpoint, '--cell', cell, '--machine-id', machine, '--cpu', '4', '--memory', '8Gi', '--data-dir', dataDir];
  args.push('--no-enforcement', '--kill-grace-ms', '1000', '--heartbeat-ttl', String(TTL_S), '--log-listen', 'none');
  // No fencing: these tasks must outlive an outage no scheduler acts on (none runs here);
  // test/agent-fencing.test.ts covers an agent that fences.
  args.push('--fence-after-ms', '0');
  const agent = spawnLogged(MAIN, args);
  agents.push(agent);
  return agent;
}

const running = (agent: LoggedProcess): boolean => agent.child.exitCode === null && agent.child.signalCode === null;
const count = (agent: LoggedProcess, message: string): number => agent.messages.filter((m) => m === message).length;

async function tempDir(prefix: string, parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, prefix));
  // Tasks run as nobody when the tests run as root: they must reach their directories.
  await chmod(dir, 0o755);
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  if (skip) return;
  for (const a of agents) if (running(a)) a.child.kill('SIGKILL');
  await Promise.all(agents.map((a) => a.exited));
  for (const e of etcds) {
    // A frozen member cannot stop.
    try {
      process.kill(e.pid, 'SIGCONT');
    } catch {
      // Already gone.
    }
    await e.stop();
  }
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('the node agent through an etcd outage', () => {
  let etcd: RunningEtcd;
  let kv: EtcdKv;
  let cell: Cell;
  let mirror: CellMirror;

  beforeAll(async () => {
    if (skip) return;
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first with \`npx tsc -b\``);
    etcd = await startEtcd();
    etcds.push(etcd);
    kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    cell = new Cell(kv, freshCellName());
    mirror = cell.mirror();
    await mirror.start();
  });

  afterAll(async () => {
    if (skip) return;
    await mirror?.stop();
    await kv?.close();
  });

  it.skipIf(skip)('keeps the same process through an outage longer than its heartbeat TTL, is alive again after, reports what ended meanwhile and runs a job placed afterwards', async () => {
    const m1 = machineId('outage-m1');
    const dataDir = await tempDir('omega-agent-outage-');
    // Not under /tmp: a task has a private /tmp (see the node agent's README, "Isolation").
    const gates = await tempDir('omega-outage-gates-', '/var/tmp');
    const agent = startAgent(etcd.clientUrl, cell.keys.cell, m1, dataDir);
    await eventually('the agent to start', () => agent.messages.includes('agent started'), 30_000);
    await eventually('its machine to be alive', () => mirror.snapshot().alive(m1) !== undefined, 30_000);

    // A task that runs through the outage, and one that ends during it.
    const gated = async (name: string, code: number): Promise<string> => {
      const gate = join(gates, name);
      await cell.createJob({
        id: jobId(name),
        spec: jobSpec(name).cpu(100).memory('32Mi').env('GATE', gate).command('/bin/sh', '-c', `while [ ! -e "$GATE" ]; do sleep 0.1; done; exit ${code}`).build(),
      });
      return gate;
    };
    const gate = await gated('long', 0);
    const duringGate = await gated('during', 4);
    await placeTasks(cell, mirror, [
      { taskId: taskId('long', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * MiB } },
      { taskId: taskId('during', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * MiB } },
    ]);
    const task = (job: string): Task | undefined => mirror.snapshot().task(taskId(job, 0));
    await eventually('both tasks to run', () => task('long')?.state === 'running' && task('during')?.state === 'running', 30_000);
    const before = task('long')!;

    // Frozen for three heartbeat TTLs: the agent's lease runs out. One task ends meanwhile.
    process.kill(etcd.pid, 'SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, TTL_S * 1000));
    await writeFile(duringGate, '');
    await new Promise((resolve) => setTimeout(resolve, 2 * TTL_S * 1000));
    process.kill(etcd.pid, 'SIGCONT');

    expect(running(agent)).toBe(true);
    await eventually('its machine to be alive again', async () => (await kv.range({ key: cell.keys.alive(m1) })).kvs.length === 1, 60_000);
    // The task kept running: the same process, still alive.
    expect(task('long')).toMatchObject({ state: 'running', pid: before.pid, claimId: before.claimId });
    expect(() => process.kill(before.pid, 0)).not.toThrow();
    // What happened meanwhile is reported.
    await eventually('the task that ended during the outage to be reported', () => task('during')?.state === 'failed', 60_000);
    expect(task('during')).toMatchObject({ state: 'failed', reason: 'nonzero-exit', exitCode: 4 });

    // Placed after the outage: runs.
    await cell.createJob({ id: jobId('after'), spec: jobSpec('after').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'exit 0').build() });
    await eventually('the mirror to be current again', async () => mirror.revision >= (await kv.currentRevision()), 30_000);
    await placeTasks(cell, mirror, [{ taskId: taskId('after', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * MiB } }]);
    await eventually('the job placed afterwards to succeed', () => task('after')?.state === 'succeeded', 60_000);

    // The task that ran through the outage ends and is reported by the same agent.
    await writeFile(gate, '');
    await eventually('the long task to be reported', () => task('long')?.state === 'succeeded', 30_000);
    expect(task('long')).toMatchObject({ state: 'succeeded', exitCode: 0, pid: before.pid });
    expect(running(agent)).toBe(true);
    const notable = ['heartbeat lease lost; taking a new one', 'heartbeat restored', 'watch disconnected; resuming', 'watch resumed', 'task status write failed; retrying with backoff', 'task status writes resumed'];
    console.log(`outage of ${3 * TTL_S} s: the agent logged ${notable.map((m) => `"${m}" x${count(agent, m)}`).join(', ')}`);
    // A lost lease is logged once, not once per retry.
    expect(count(agent, 'heartbeat lease lost; taking a new one')).toBeLessThanOrEqual(1);

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});

describe('a node agent started before etcd', () => {
  it.skipIf(skip)('waits without exiting, says so once, and comes up once etcd starts', async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const cellName = freshCellName();
    const m1 = machineId('early-m1');
    const dataDir = await tempDir('omega-agent-early-');
    const agent = startAgent(`http://127.0.0.1:${clientPort}`, cellName, m1, dataDir);
    await eventually('the agent to notice etcd is not there', () => agent.messages.includes('cell store unreachable; retrying with backoff'), 30_000);
    // Several retries later: still waiting, still one line.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(running(agent)).toBe(true);
    expect(count(agent, 'cell store unreachable; retrying with backoff')).toBe(1);
    expect(agent.messages).not.toContain('agent started');

    const etcd = await startEtcd({ clientPort, peerPort });
    etcds.push(etcd);
    await eventually('the agent to start', () => agent.messages.includes('agent started'), 60_000);
    const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    try {
      const cell = new Cell(kv, cellName);
      expect(await cell.getMachine(m1)).toMatchObject({ schedulable: true });
      await eventually('its machine to be alive', async () => (await kv.range({ key: cell.keys.alive(m1) })).kvs.length === 1, 30_000);
      expect(count(agent, 'cell store reachable again')).toBe(1);

      // It runs what is placed on it.
      const mirror = cell.mirror();
      await mirror.start();
      try {
        await cell.createJob({ id: jobId('first'), spec: jobSpec('first').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'exit 0').build() });
        await placeTasks(cell, mirror, [{ taskId: taskId('first', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 32 * MiB } }]);
        await eventually('the task to succeed', () => mirror.snapshot().task(taskId('first', 0))?.state === 'succeeded', 60_000);
      } finally {
        await mirror.stop();
      }
      agent.child.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    } finally {
      await kv.close();
    }
  });
});
