import { afterEach, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type CellSnapshot, type Job, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec, machine, outageKv } from '@omega/cell-state/testing';
import { Agent } from './agent.js';
import type { Executor, TaskAttempt } from './executor.js';
import { eventually, placeTasks } from './testing/index.js';

class FakeAttempt implements TaskAttempt {
  readonly taskId;
  readonly jobId;
  readonly claimId;
  readonly machineId;
  readonly ended: Promise<void>;
  readonly done: Promise<void>;
  readonly stops: (string | undefined)[] = [];
  detached = false;
  private resolve!: () => void;

  constructor(readonly task: Task) {
    this.taskId = task.id;
    this.jobId = task.jobId;
    this.claimId = task.claimId;
    this.machineId = task.machineId;
    this.ended = new Promise((r) => (this.resolve = r));
    this.done = this.ended;
  }
  /** Records the request; the test decides when the processes are gone (`finish`). */
  stop(reason?: string): Promise<void> {
    this.stops.push(reason);
    return this.ended;
  }
  finish(): void {
    this.resolve();
  }
  detach(): void {
    this.detached = true;
    this.resolve();
  }
}

class FakeExecutor implements Executor {
  readonly attempts: FakeAttempt[] = [];
  recovered: FakeAttempt[] = [];
  recover(_snapshot: CellSnapshot): Promise<TaskAttempt[]> {
    return Promise.resolve(this.recovered);
  }
  start(task: Task, _job: Job): TaskAttempt {
    const attempt = new FakeAttempt(task);
    this.attempts.push(attempt);
    return attempt;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  startedTasks(): string[] {
    return this.attempts.map((a) => a.taskId);
  }
}

const MiB = 1024 ** 2;
const m1 = machineId('m1');

describe('the agent', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(options: { cpu?: number } = {}): Promise<{ cell: Cell; mirror: CellMirror; agent: Agent; executor: FakeExecutor; kv: MemoryKv }> {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const executor = new FakeExecutor();
    const agent = new Agent({ cell, machines: [machine('m1').cpu(options.cpu ?? 4000).memory('8Gi').attr('rack', 'r1').build()], executor: () => executor, flushIntervalMs: 5 });
    await agent.start();
    const mirror = cell.mirror();
    await mirror.start();
    cleanups.push(async () => {
      await agent.stop();
      await mirror.stop();
      await kv.close();
    });
    return { cell, mirror, agent, executor, kv };
  }

  async function submit(cell: Cell, name: string, build: (b: ReturnType<typeof jobSpec>) => ReturnType<typeof jobSpec> = (b) => b): Promise<Job> {
    return (await cell.createJob({ id: jobId(name), spec: build(jobSpec(name)).build() })).job;
  }

  it('registers its machine with a heartbeat, and on stop marks it unschedulable and leaves tasks running', async () => {
    const { cell, mirror, agent, executor } = await setup();
    await eventually('the alive key', () => mirror.snapshot().alive(m1) !== undefined);
    expect(mirror.snapshot().machine(m1)).toMatchObject({ capacity: { cpuMillis: 4000, memoryBytes: 8 * 1024 ** 3 }, attributes: { rack: 'r1' }, schedulable: true, enforcementDisabled: false });
    await submit(cell, 'web');
    await placeTasks(cell, mirror, [{ taskId: taskId('web', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
    await eventually('the task to start', () => executor.attempts.length === 1);
    await agent.stop();
    expect(await cell.getMachine(m1)).toMatchObject({ schedulable: false, unschedulableReason: 'agent stopping' });
    await eventually('the alive key to go', () => mirror.snapshot().alive(m1) === undefined);
    expect(executor.attempts[0]).toMatchObject({ detached: true, stops: [] });
  });

  it('starts a placed task exactly once however many changes follow', async () => {
    const { cell, mirror, executor } = await setup();
    await submit(cell, 'web', (b) => b.instances(2));
    await placeTasks(cell, mirror, [{ taskId: taskId('web', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
    await eventually('the task to start', () => executor.attempts.length === 1);
    // Unrelated changes to the machine and the job's other task.
    await cell.setSchedulable(m1, true);
    await placeTasks(cell, mirror, [{ taskId: taskId('web', 1), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
    await eventually('the second task to start', () => executor.attempts.length === 2);
    await cell.setSchedulable(m1, true);
    await new Promise((r) => setTimeout(r, 50));
    expect(executor.startedTasks().sort()).toEqual([taskId('web', 0), taskId('web', 1)]);
  });

  it('stops the tasks of a job whose desired state becomes killed, with reason job-killed', async () => {
    const { cell, mirror, executor } = await setup();
    await submit(cell, 'batch', (b) => b.instances(2));
    await placeTasks(cell, mirror, [
      { taskId: taskId('batch', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
      { taskId: taskId('batch', 1), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
    ]);
    await eventually('both tasks to start', () => executor.attempts.length === 2);
    await cell.setJobDesired(jobId('batch'), 'killed');
    await eventually('both to be stopped', () => executor.attempts.every((a) => a.stops.length > 0));
    expect(executor.attempts.map((a) => a.stops)).toEqual([['job-killed'], ['job-killed']]);
  });

  it('stops a preempted task before the task that replaced it on the same machine starts', async () => {
    const { cell, mirror, executor } = await setup({ cpu: 1000 });
    await submit(cell, 'low', (b) => b.priority(1));
    await submit(cell, 'high', (b) => b.priority(100));
    await placeTasks(cell, mirror, [{ taskId: taskId('low', 0), machineId: m1, resources: { cpuMillis: 1000, memoryBytes: 64 * MiB }, priority: 1 }]);
    await eventually('the low task to start', () => executor.attempts.length === 1);
    const victim = mirror.snapshot().machine(m1)!.claims.find((c) => c.taskId === taskId('low', 0))!;
    await placeTasks(cell, mirror, [{ taskId: taskId('high', 0), machineId: m1, resources: { cpuMillis: 1000, memoryBytes: 64 * MiB }, priority: 100, evict: [victim] }]);
    const low = executor.attempts[0]!;
    await eventually('the victim to be asked to stop', () => low.stops.length > 0);
    expect(low.stops).toEqual([undefined]);
    // The record says why (preempted): the agent adds no reason of its own.
    expect(mirror.snapshot().task(taskId('low', 0))).toMatchObject({ state: 'killed', reason: 'preempted' });
    await new Promise((r) => setTimeout(r, 50));
    expect(executor.startedTasks()).toEqual([taskId('low', 0)]);
    low.finish();
    await eventually('the replacement to start', () => executor.attempts.length === 2);
    expect(executor.startedTasks()).toEqual([taskId('low', 0), taskId('high', 0)]);
  });

  it('does not start a placed task of a killed job, and reports it killed', async () => {
    const { cell, mirror, executor } = await setup();
    await submit(cell, 'gone');
    await cell.setJobDesired(jobId('gone'), 'killed');
    await placeTasks(cell, mirror, [{ taskId: taskId('gone', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
    await eventually('the task to be reported killed', async () => (await cell.getTask(taskId('gone', 0)))?.state === 'killed');
    expect(await cell.getTask(taskId('gone', 0))).toMatchObject({ state: 'killed', reason: 'job-killed' });
    expect(executor.attempts).toEqual([]);
  });

  it('drains on request: every task is stopped with reason machine-drained before the agent leaves', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const executor = new FakeExecutor();
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5 });
    await agent.start();
    const mirror = cell.mirror();
    await mirror.start();
    try {
      await submit(cell, 'svc');
      await placeTasks(cell, mirror, [{ taskId: taskId('svc', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      await eventually('the task to start', () => executor.attempts.length === 1);
      const stopping = agent.stop({ drain: true });
      await eventually('the drain stop', () => executor.attempts[0]!.stops.length > 0);
      executor.attempts[0]!.finish();
      await stopping;
      expect(executor.attempts[0]!.stops).toEqual(['machine-drained']);
    } finally {
      await mirror.stop();
      await kv.close();
    }
  });

  it('after a restart, reports lost a running task it has no local state for', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    await cell.registerMachine(machine('m1').build());
    const mirror = cell.mirror();
    await mirror.start();
    try {
      await submit(cell, 'old');
      await placeTasks(cell, mirror, [{ taskId: taskId('old', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      const task = mirror.snapshot().task(taskId('old', 0))!;
      await cell.updateTask(task.id, task.claimId, { state: 'running', pid: 123 });
      const executor = new FakeExecutor();
      const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5 });
      await agent.start();
      await eventually('the task to be reported lost', async () => (await cell.getTask(task.id))?.state === 'lost');
      expect(await cell.getTask(task.id)).toMatchObject({ state: 'lost', reason: 'agent-state-missing' });
      expect(executor.attempts).toEqual([]);
      await agent.stop();
    } finally {
      await mirror.stop();
      await kv.close();
    }
  });
});

describe('an agent that cannot start', () => {
  it('leaves no heartbeat behind and marks its machine unschedulable, so nothing is placed on it', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const reg = machine('broken').cpu(2000).memory('2Gi').build();
    const agent = new Agent({
      cell,
      machines: [reg],
      executor: () => Promise.reject(new Error('task user nobody does not exist')),
    });
    await expect(agent.start()).rejects.toThrow(/task user/);
    const mirror = cell.mirror();
    await mirror.start();
    expect(mirror.snapshot().alive(reg.id)).toBeUndefined();
    expect(mirror.snapshot().machine(reg.id)).toMatchObject({ schedulable: false, unschedulableReason: 'agent failed to start' });
    await mirror.stop();
  });
});

describe('what the agent keeps in memory', () => {
  it('holds only its machines, the tasks placed on them and their jobs, and still sees a kill at once', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const m2 = machineId('m2');
    await cell.registerMachine(machine('m2').cpu(100_000).memory('64Gi').build());
    const executor = new FakeExecutor();
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5 });
    await agent.start();
    const mirror = cell.mirror();
    await mirror.start();
    try {
      await cell.createJob({ id: jobId('here'), spec: jobSpec('here').instances(2).build() });
      await cell.createJob({ id: jobId('there'), spec: jobSpec('there').build() });
      for (let i = 0; i < 50; i++) await cell.createJob({ id: jobId(`never-${i}`), spec: jobSpec(`never-${i}`).build() });
      await placeTasks(cell, mirror, [
        { taskId: taskId('here', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
        { taskId: taskId('here', 1), machineId: m2, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
        { taskId: taskId('there', 0), machineId: m2, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } },
      ]);
      await eventually('the task here to start', () => executor.attempts.length === 1);
      await agent.mirror.waitForRevision(mirror.revision);
      const held = agent.mirror.snapshot();
      expect(held.machine(m1)).toBeDefined();
      expect(held.machine(m2)).toBeUndefined();
      expect(held.task(taskId('here', 0))).toBeDefined();
      expect(held.task(taskId('here', 1))).toBeUndefined();
      expect(held.task(taskId('there', 0))).toBeUndefined();
      expect([...held.jobs()].map((j) => j.id)).toEqual([jobId('here')]);
      expect(held.alive(m1)).toBeUndefined();
      expect(held.machineCount).toBe(1);

      // The kill of a job held here arrives like any change.
      await cell.setJobDesired(jobId('here'), 'killed');
      await eventually('the task to be stopped', () => executor.attempts[0]!.stops.length > 0);
      expect(executor.attempts[0]!.stops).toEqual(['job-killed']);

      // Once its task here has ended, the job's record goes too.
      const task = agent.mirror.snapshot().task(taskId('here', 0))!;
      await cell.updateTask(task.id, task.claimId, { state: 'killed', reason: 'job-killed', finishedAtMs: 1 });
      executor.attempts[0]!.finish();
      await eventually('the job record to be dropped', () => agent.mirror.snapshot().jobCount === 0);
      expect(agent.wantedJobs).toBe(0);
    } finally {
      await agent.stop();
      await mirror.stop();
      await kv.close();
    }
  });

  it('reads the job of a task that appears on its machine before starting it, and reports job-missing when there is none', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const executor = new FakeExecutor();
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5 });
    await agent.start();
    const mirror = cell.mirror();
    await mirror.start();
    try {
      await cell.createJob({ id: jobId('later'), spec: jobSpec('later').build() });
      await placeTasks(cell, mirror, [{ taskId: taskId('later', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      await eventually('the task to start', () => executor.attempts.length === 1);
      expect(agent.mirror.snapshot().job(jobId('later'))).toMatchObject({ desired: 'running' });

      // A task whose job record does not exist (deleted): read, found missing, reported.
      await placeTasks(cell, mirror, [{ taskId: taskId('vanished', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      await eventually('the task to be reported', async () => (await cell.getTask(taskId('vanished', 0)))?.state === 'failed');
      expect(await cell.getTask(taskId('vanished', 0))).toMatchObject({ state: 'failed', reason: 'job-missing' });
      expect(executor.startedTasks()).toEqual([taskId('later', 0)]);
    } finally {
      await agent.stop();
      await mirror.stop();
      await kv.close();
    }
  });
});

describe('an agent whose store does not answer', () => {
  it('keeps retrying its start until the store answers, then runs what is placed', async () => {
    const inner = new MemoryKv();
    const store = outageKv(inner);
    store.refuse();
    const cell = new Cell(store.kv, freshCellName());
    const executor = new FakeExecutor();
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5, storeBackoff: { initialMs: 5, maxMs: 20 } });
    let started = false;
    const starting = agent.start().then(() => (started = true));
    await eventually('several refused attempts', () => store.refused >= 5);
    expect(started).toBe(false);
    expect(agent.isRunning).toBe(false);
    store.resume();
    await starting;
    expect(agent.isRunning).toBe(true);
    const mirror = cell.mirror();
    await mirror.start();
    try {
      expect(mirror.snapshot().alive(m1)).toBeDefined();
      await cell.createJob({ id: jobId('after'), spec: jobSpec('after').build() });
      await placeTasks(cell, mirror, [{ taskId: taskId('after', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      await eventually('the task to start', () => executor.attempts.length === 1);
    } finally {
      await agent.stop();
      await mirror.stop();
      await inner.close();
    }
  });

  it('retries reading the job of a newly placed task until the store answers, then starts it', async () => {
    const inner = new MemoryKv();
    const store = outageKv(inner);
    const cell = new Cell(store.kv, freshCellName());
    const direct = new Cell(inner, cell.keys.cell);
    const executor = new FakeExecutor();
    // Stored before the agent lists the cell: its list drops the record, so nothing recalls it.
    await direct.createJob({ id: jobId('meanwhile'), spec: jobSpec('meanwhile').build() });
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5, storeBackoff: { initialMs: 5, maxMs: 20 } });
    await agent.start();
    const mirror = direct.mirror();
    await mirror.start();
    try {
      // Requests fail, the watch still delivers: the task appears, its job cannot be read yet.
      store.refuse();
      const refusedBefore = store.refused;
      await placeTasks(direct, mirror, [{ taskId: taskId('meanwhile', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      await eventually('refused reads of the job', () => store.refused >= refusedBefore + 3);
      expect(executor.attempts).toEqual([]);
      store.resume();
      await eventually('the task to start', () => executor.attempts.length === 1);
      expect(agent.mirror.snapshot().job(jobId('meanwhile'))).toMatchObject({ desired: 'running' });
    } finally {
      await agent.stop();
      await mirror.stop();
      await inner.close();
    }
  });

  it('starts a task whose job record the watch delivered before the task, without reading the job', async () => {
    const inner = new MemoryKv();
    const store = outageKv(inner);
    const cell = new Cell(store.kv, freshCellName());
    const direct = new Cell(inner, cell.keys.cell);
    const executor = new FakeExecutor();
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => executor, flushIntervalMs: 5, storeBackoff: { initialMs: 5, maxMs: 20 } });
    await agent.start();
    const mirror = direct.mirror();
    await mirror.start();
    try {
      await direct.createJob({ id: jobId('recalled'), spec: jobSpec('recalled').build() });
      await agent.mirror.waitForRevision(mirror.revision);
      // Not wanted yet: the agent does not hold it.
      expect(agent.mirror.snapshot().job(jobId('recalled'))).toBeUndefined();
      // Every request of the agent fails from now on; only its watch still delivers.
      store.refuse();
      await placeTasks(direct, mirror, [{ taskId: taskId('recalled', 0), machineId: m1, resources: { cpuMillis: 100, memoryBytes: 64 * MiB } }]);
      await eventually('the task to start', () => executor.attempts.length === 1);
      expect(agent.mirror.snapshot().job(jobId('recalled'))).toMatchObject({ desired: 'running' });
      expect(agent.mirror.counters.recalled).toBe(1);
    } finally {
      store.resume();
      await agent.stop();
      await mirror.stop();
      await inner.close();
    }
  });

  it('stops at once when asked while it still waits for the store, writing nothing', async () => {
    const inner = new MemoryKv();
    const store = outageKv(inner);
    store.refuse();
    const cell = new Cell(store.kv, freshCellName());
    const agent = new Agent({ cell, machines: [machine('m1').build()], executor: () => new FakeExecutor(), storeBackoff: { initialMs: 5, maxMs: 20 } });
    const starting = agent.start();
    await eventually('a refused attempt', () => store.refused >= 1);
    await agent.stop();
    await starting;
    expect(agent.isRunning).toBe(false);
    store.resume();
    expect(await cell.getMachine(m1)).toBeUndefined();
    await inner.close();
  });
});

