/**
 * Hollow mode at scale on a real etcd: one agent process serving 1,000 hollow machines
 * registers them all and runs 10,000 short tasks to completion. Prints the etcd requests the
 * agent made per task (its own EtcdKv's counters); asserts outcomes, never timing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, EtcdNotFoundError, findEtcd, jobId, startEtcd, taskId, type CellMirror, type RunningEtcd } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, HollowExecutor, hollowMachineIds, hollowMachines } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';

const MACHINES = 1_000;
const JOBS = 10;
const TASKS_PER_JOB = 1_000;
const TASK_MS = 50;

const etcdBinary = await findEtcd();
if (etcdBinary === undefined) console.warn(`SKIPPED: hollow node agent test because ${new EtcdNotFoundError([]).message}`);
const skip = etcdBinary === undefined;

describe('a hollow node agent on etcd', () => {
  let etcd: RunningEtcd;
  let agentKv: EtcdKv;
  let testKv: EtcdKv;
  let cell: Cell;
  let agent: Agent;
  let mirror: CellMirror;

  beforeAll(async () => {
    if (skip) return;
    etcd = await startEtcd();
    // The agent has its own connection, so its counters are its own requests only.
    agentKv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    testKv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  });

  afterAll(async () => {
    if (skip) return;
    await agent?.stop();
    await mirror?.stop();
    await agentKv?.close();
    await testKv?.close();
    await etcd?.stop();
  });

  it.skipIf(skip)('registers 1,000 machines and runs 10,000 short tasks to success', async () => {
    const cellName = freshCellName();
    cell = new Cell(testKv, cellName);
    agent = new Agent({
      cell: new Cell(agentKv, cellName),
      machines: hollowMachines('hollow', MACHINES, { cpuMillis: 16_000, memoryBytes: 64 * 1024 ** 3 }, { zone: 'z1' }),
      executor: ({ reporter }) => new HollowExecutor(reporter),
    });
    const t0 = performance.now();
    await agent.start();
    const registerMs = performance.now() - t0;
    const registerRequests = agentKv.counters.roundTrips;

    const machines = await testKv.range({ key: cell.keys.prefix('machines'), prefix: true });
    const alive = await testKv.range({ key: cell.keys.prefix('alive'), prefix: true });
    expect(machines.kvs).toHaveLength(MACHINES);
    expect(alive.kvs).toHaveLength(MACHINES);
    expect(new Set(alive.kvs.map((kv) => kv.lease)).size).toBe(1);

    mirror = cell.mirror();
    await mirror.start();
    const ids = hollowMachineIds('hollow', MACHINES);
    const before = { ...agentKv.counters };
    const reporterBefore = { ...agent.reporter.counters };
    const t1 = performance.now();
    for (let j = 0; j < JOBS; j++) {
      const name = `short-${j}`;
      await cell.createJob({ id: jobId(name), spec: jobSpec(name).instances(TASKS_PER_JOB).duration(TASK_MS).cpu(100).memory('64Mi').build() });
      await placeTasks(
        cell,
        mirror,
        Array.from({ length: TASKS_PER_JOB }, (_, i) => ({ taskId: taskId(name, i), machineId: ids[(i + j) % MACHINES]!, resources: { cpuMillis: 100, memoryBytes: 64 * 1024 ** 2 } })),
      );
    }
    const states = (): Map<string, number> => {
      const count = new Map<string, number>();
      const snap = mirror.snapshot();
      for (let j = 0; j < JOBS; j++) for (const t of snap.tasksOf(jobId(`short-${j}`))) count.set(t.state, (count.get(t.state) ?? 0) + 1);
      return count;
    };
    await eventually('all 10,000 tasks to succeed', () => states().get('succeeded') === JOBS * TASKS_PER_JOB, 110_000);
    const runMs = performance.now() - t1;
    const tasks = JOBS * TASKS_PER_JOB;
    const requests = agentKv.counters.roundTrips - before.roundTrips;
    const r = agent.reporter.counters;
    const updates = r.updates - reporterBefore.updates;
    const batches = r.batches - reporterBefore.batches;
    console.log(
      `hollow: ${MACHINES} machines registered in ${registerMs.toFixed(0)} ms with ${registerRequests} etcd requests; ` +
        `${tasks} tasks of ${TASK_MS} ms placed and succeeded in ${runMs.toFixed(0)} ms; ` +
        `agent etcd requests ${requests} (${(requests / tasks).toFixed(4)} per task), ` +
        `task record writes ${updates} (${(updates / tasks).toFixed(3)} per task) in ${batches} batched requests, ` +
        `${r.solo - reporterBefore.solo} solo, ${r.deferred - reporterBefore.deferred} deferred`,
    );
    const snap = mirror.snapshot();
    for (let j = 0; j < JOBS; j++) for (const t of snap.tasksOf(jobId(`short-${j}`))) expect(t.exitCode).toBe(0);
  });
});
