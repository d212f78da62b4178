import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { status } from '@grpc/grpc-js';
import { jobId, machineId, taskId, type Cell, type JobId, type SchedulerStats } from '@omega/cell-state';
import { machine, plan } from '@omega/cell-state/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

type View = Record<string, unknown> & { id: string; state: string; tasks: Record<string, unknown>[] };

const spec = (overrides: Record<string, unknown> = {}) => ({
  name: 'hello',
  kind: 'JOB_KIND_BATCH',
  instances: 1,
  task: { command: ['sh', '-c', 'echo hi'], resources: { cpu_millis: 100, memory_bytes: 100 * 1024 * 1024 } },
  ...overrides,
});

let api: TestApi;
beforeEach(async () => {
  api = await startTestApi();
});
afterEach(async () => {
  await api.close();
});

async function submit(overrides: Record<string, unknown> = {}, requestId = ''): Promise<JobId> {
  const reply = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec(overrides), request_id: requestId });
  return jobId(reply.job_id);
}

async function keyCount(prefix: string): Promise<number> {
  return (await api.kv.range({ key: `/omega/test/${prefix}/`, prefix: true })).kvs.length;
}

/** Places task `index` of `job` on machine `m` as a scheduler would; returns the claim id. */
async function place(cell: Cell, job: JobId, index: number, m = 'm0'): Promise<string> {
  const { revision } = await cell.kv.range({ key: cell.keys.root });
  await api.server.mirror.waitForRevision(revision);
  const pc = plan(api.server.mirror.snapshot(), [[taskId(job, index), machineId(m), 100]]);
  const result = await cell.committer().commit(pc.transaction('resource-fit', 'incremental'));
  const delta = result.committed[0];
  if (delta === undefined) throw new Error('placement conflicted');
  return delta.claim.id;
}

describe('SubmitJob', () => {
  it('refuses an invalid spec with INVALID_ARGUMENT naming the proto field path, and stores nothing', async () => {
    const error = await refusal(submit({ task: { command: ['true'], resources: { cpu_millis: 100, memory_bytes: 0 } } }, 'req-1'));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toBe('job.task.resources.memory_bytes: must be > 0');
    expect(await keyCount('jobs')).toBe(0);
    expect(await keyCount('requests')).toBe(0);
  });

  it('refuses an unspecified job kind, a missing job and a malformed request id', async () => {
    expect((await refusal(submit({ kind: 'JOB_KIND_UNSPECIFIED' }))).details).toBe('job.kind: must be JOB_KIND_BATCH or JOB_KIND_SERVICE');
    expect((await refusal(api.client.unary('jobs', 'SubmitJob', { request_id: 'x' }))).details).toBe('job: is required');
    const bad = await refusal(submit({}, '../etc'));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^request_id: /);
    expect(await keyCount('jobs')).toBe(0);
  });

  it('creates one job per request id, answering a repeat of the same spec with the first job', async () => {
    const first = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: spec(), request_id: 'same' });
    const again = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: spec(), request_id: 'same' });
    expect(first.created).toBe(true);
    expect(again).toEqual({ job_id: first.job_id, created: false });
    expect(await keyCount('jobs')).toBe(1);
  });

  it('refuses a request id reused with a different spec with ALREADY_EXISTS naming request_id, and stores nothing', async () => {
    const first = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec(), request_id: 'same' });
    const error = await refusal(api.client.unary('jobs', 'SubmitJob', { job: spec({ name: 'other' }), request_id: 'same' }));
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(error.details).toBe(`request_id "same": already used for job ${first.job_id} with a different spec`);
    expect(await keyCount('jobs')).toBe(1);
  });

  it('answers ALREADY_EXISTS, saying so, for a request id whose job has since been deleted', async () => {
    const first = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec(), request_id: 'gone' });
    await api.kv.delete(api.cell.keys.job(jobId(first.job_id)));
    const error = await refusal(api.client.unary('jobs', 'SubmitJob', { job: spec(), request_id: 'gone' }));
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(error.details).toMatch(new RegExp(`^request_id "gone": already used for job ${first.job_id}, which has since been deleted`));
    expect(await keyCount('jobs')).toBe(0);
  });

  it('generates job ids from the name that are safe key segments and unique', async () => {
    const a = await submit();
    const b = await submit();
    expect(a).toMatch(/^hello-[0-9a-z]{10}$/);
    expect(b).not.toBe(a);
  });
});

describe('GetJob and ListJobs', () => {
  it('shows a new job pending with one pending task per instance', async () => {
    const id = await submit({ instances: 3 });
    const view = await api.client.unary<View>('jobs', 'GetJob', { job_id: id });
    expect(view).toMatchObject({ id, state: 'JOB_VIEW_STATE_PENDING', kill_requested: false, spec: { name: 'hello', kind: 'JOB_KIND_BATCH', instances: 3 } });
    expect(view.tasks.map((t) => [t.index, t.state])).toEqual([
      [0, 'TASK_VIEW_STATE_PENDING'],
      [1, 'TASK_VIEW_STATE_PENDING'],
      [2, 'TASK_VIEW_STATE_PENDING'],
    ]);
  });

  it('answers NOT_FOUND for an unknown job and INVALID_ARGUMENT for a malformed id', async () => {
    expect((await refusal(api.client.unary('jobs', 'GetJob', { job_id: 'nope' }))).code).toBe(status.NOT_FOUND);
    const bad = await refusal(api.client.unary('jobs', 'GetJob', { job_id: 'a/b' }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^job_id: /);
  });

  it('derives the job state from its tasks as they are placed, run and end', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const id = await submit({ instances: 2 });
    const claim0 = await place(api.cell, id, 0);
    const get = () => api.client.unary<View>('jobs', 'GetJob', { job_id: id });
    expect((await get()).state).toBe('JOB_VIEW_STATE_RUNNING');
    await api.cell.updateTask(taskId(id, 0), claim0, { state: 'running', startedAtMs: 5 });
    expect((await get()).tasks[0]).toMatchObject({ state: 'TASK_VIEW_STATE_RUNNING', machine: 'm0', attempt: 1, started_at_ms: 5 });
    await api.cell.updateTask(taskId(id, 0), claim0, { state: 'succeeded', exitCode: 0 });
    const claim1 = await place(api.cell, id, 1);
    await api.cell.updateTask(taskId(id, 1), claim1, { state: 'failed', exitCode: 2 });
    const view = await get();
    expect(view).toMatchObject({ state: 'JOB_VIEW_STATE_FAILED', reason: 'task 1 exit code 2' });
    expect(view.tasks[1]).toMatchObject({ state: 'TASK_VIEW_STATE_FAILED', has_exit_code: true, exit_code: 2 });
  });

  it('lists jobs newest first, filtered by state, with task counts and tasks only on request', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const older = await submit({ name: 'older', instances: 2 });
    const newer = await submit({ name: 'newer' });
    await place(api.cell, older, 0);
    const all = await api.client.unary<{ jobs: View[]; truncated: boolean }>('jobs', 'ListJobs', {});
    expect(all.jobs.map((j) => j.id)).toEqual([newer, older]);
    expect(all.jobs[1]).toMatchObject({ tasks: [], task_counts: { placed: 1, pending: 1 } });
    expect(all.truncated).toBe(false);
    const running = await api.client.unary<{ jobs: View[] }>('jobs', 'ListJobs', { states: ['JOB_VIEW_STATE_RUNNING'], include_tasks: true });
    expect(running.jobs.map((j) => j.id)).toEqual([older]);
    expect(running.jobs[0]?.tasks).toHaveLength(2);
    const one = await api.client.unary<{ jobs: View[]; truncated: boolean }>('jobs', 'ListJobs', { limit: 1 });
    expect(one).toMatchObject({ jobs: [{ id: newer }], truncated: true });
  });
});

describe('KillJob', () => {
  it('answers NOT_FOUND for an unknown job and stores nothing', async () => {
    expect((await refusal(api.client.unary('jobs', 'KillJob', { job_id: 'nope' }))).code).toBe(status.NOT_FOUND);
    expect(await keyCount('jobs')).toBe(0);
  });

  it('requests the kill and shows the job killed once no task is live', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const id = await submit({ instances: 2 });
    const claim = await place(api.cell, id, 0);
    const killed = await api.client.unary<{ job: View }>('jobs', 'KillJob', { job_id: id });
    expect(killed.job).toMatchObject({ kill_requested: true, state: 'JOB_VIEW_STATE_RUNNING' });
    expect((await api.cell.getJob(id))?.desired).toBe('killed');
    await api.cell.updateTask(taskId(id, 0), claim, { state: 'killed', reason: 'job-killed' });
    const view = await api.client.unary<View>('jobs', 'GetJob', { job_id: id });
    expect(view.state).toBe('JOB_VIEW_STATE_KILLED');
    expect(view.tasks.map((t) => t.reason)).toEqual(['job-killed', 'job-killed']);
  });
});

describe('WatchJob', () => {
  it('sends the job as it is, then its changes, and ends when the job has ended', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const id = await submit();
    const states: string[] = [];
    let claim: Promise<string> | undefined;
    const watched = api.client.stream<{ revision: number; job: View }>('WatchJob', { job_id: id }, (event) => {
      states.push(`${event.job.state}/${String(event.job.tasks[0]?.state)}`);
      // Drive the job one step per event, so every step is seen.
      if (states.length === 1) claim = place(api.cell, id, 0);
      if (states.length === 2) void claim?.then((c) => api.cell.updateTask(taskId(id, 0), c, { state: 'running' }));
      if (states.length === 3) void claim?.then((c) => api.cell.updateTask(taskId(id, 0), c, { state: 'succeeded', exitCode: 0 }));
    });
    const { messages, error } = await watched;
    expect(error).toBeUndefined();
    expect(states).toEqual([
      'JOB_VIEW_STATE_PENDING/TASK_VIEW_STATE_PENDING',
      'JOB_VIEW_STATE_RUNNING/TASK_VIEW_STATE_PLACED',
      'JOB_VIEW_STATE_RUNNING/TASK_VIEW_STATE_RUNNING',
      'JOB_VIEW_STATE_SUCCEEDED/TASK_VIEW_STATE_SUCCEEDED',
    ]);
    const revisions = messages.map((m) => m.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
  });

  it('ends at once for a job that has already ended, and answers NOT_FOUND for an unknown one', async () => {
    const id = await submit();
    await api.client.unary('jobs', 'KillJob', { job_id: id });
    const { messages, error } = await api.client.stream<{ job: View }>('WatchJob', { job_id: id });
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.job.state)).toEqual(['JOB_VIEW_STATE_KILLED']);
    expect((await api.client.stream('WatchJob', { job_id: 'nope' })).error?.code).toBe(status.NOT_FOUND);
  });
});

describe('GetTaskLogs', () => {
  let logServer: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (logServer === undefined ? resolve(undefined) : logServer.close(resolve)));
    logServer = undefined;
  });

  it('streams the log from the agent at the machine log address', async () => {
    const paths: string[] = [];
    logServer = createServer((request, response) => {
      paths.push(request.url ?? '');
      response.end('hello from the task\n');
    });
    await new Promise<void>((resolve) => logServer?.listen(0, '127.0.0.1', resolve));
    const port = (logServer.address() as AddressInfo).port;
    await api.cell.registerMachine(machine('m0').build());
    const heartbeat = await api.cell.startHeartbeat(machineId('m0'), { logAddress: `127.0.0.1:${port}` });
    try {
      const id = await submit();
      await place(api.cell, id, 0);
      const { messages, error } = await api.client.stream<{ data: Buffer }>('GetTaskLogs', { job_id: id, index: 0, stream: 'STREAM_STDERR' });
      expect(error).toBeUndefined();
      expect(Buffer.concat(messages.map((m) => m.data)).toString()).toBe('hello from the task\n');
      expect(paths).toEqual([`/logs/${id}/0/1/stderr`]);
    } finally {
      await heartbeat.stop();
    }
  });

  it("ends with a truncated trailer when the agent says the log lost its oldest bytes, and sends none otherwise", async () => {
    let truncated = 'true';
    logServer = createServer((_request, response) => {
      response.writeHead(200, { 'x-omega-log-truncated': truncated });
      response.end('newest bytes\n');
    });
    await new Promise<void>((resolve) => logServer?.listen(0, '127.0.0.1', resolve));
    const port = (logServer.address() as AddressInfo).port;
    await api.cell.registerMachine(machine('m0').build());
    const heartbeat = await api.cell.startHeartbeat(machineId('m0'), { logAddress: `127.0.0.1:${port}` });
    try {
      const id = await submit();
      await place(api.cell, id, 0);
      const cut = await api.client.stream<{ data: Buffer; truncated: boolean }>('GetTaskLogs', { job_id: id, index: 0, stream: 'STREAM_STDOUT' });
      expect(cut.error).toBeUndefined();
      expect(Buffer.concat(cut.messages.map((m) => m.data)).toString()).toBe('newest bytes\n');
      expect(cut.messages.at(-1)).toMatchObject({ truncated: true });
      expect(cut.messages.at(-1)?.data.length).toBe(0);
      expect(cut.messages.slice(0, -1).every((m) => !m.truncated)).toBe(true);
      truncated = 'false';
      const whole = await api.client.stream<{ data: Buffer; truncated: boolean }>('GetTaskLogs', { job_id: id, index: 0, stream: 'STREAM_STDOUT' });
      expect(whole.messages.some((m) => m.truncated)).toBe(false);
    } finally {
      await heartbeat.stop();
    }
  });

  it('says why there are no logs: task not placed, machine gone, machine serving none, index out of range', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const id = await submit();
    const logs = (request: Record<string, unknown>) => api.client.stream('GetTaskLogs', { job_id: id, index: 0, ...request });
    const unplaced = (await logs({})).error;
    expect(unplaced?.code).toBe(status.FAILED_PRECONDITION);
    expect(unplaced?.details).toMatch(/has not been placed yet/);
    expect((await logs({ index: 4 })).error?.details).toMatch(/^index: /);
    await place(api.cell, id, 0);
    const gone = (await logs({})).error;
    expect(gone?.code).toBe(status.UNAVAILABLE);
    expect(gone?.details).toMatch(/machine m0.*is not alive/);
    const heartbeat = await api.cell.startHeartbeat(machineId('m0'));
    try {
      const none = (await logs({})).error;
      expect(none?.code).toBe(status.FAILED_PRECONDITION);
      expect(none?.details).toMatch(/serves no logs/);
    } finally {
      await heartbeat.stop();
    }
  });
});

describe('CellService', () => {
  it('lists machines with capacity, live claims, liveness and attributes', async () => {
    await api.cell.registerMachine(machine('m0').cpu(2000).memory('4Gi').attr('zone', 'a').build());
    await api.cell.registerMachine(machine('m1').build());
    const heartbeat = await api.cell.startHeartbeat(machineId('m0'));
    try {
      const id = await submit();
      await place(api.cell, id, 0);
      const { machines } = await api.client.unary<{ machines: Record<string, unknown>[] }>('cells', 'ListMachines', {});
      expect(machines).toEqual([
        expect.objectContaining({
          id: 'm0',
          capacity: { cpu_millis: 2000, memory_bytes: 4 * 1024 ** 3 },
          allocated: { cpu_millis: 100, memory_bytes: 100 * 1024 * 1024 },
          tasks: 1,
          alive: true,
          schedulable: true,
          attributes: { zone: 'a' },
        }),
        expect.objectContaining({ id: 'm1', tasks: 0, alive: false, allocated: { cpu_millis: 0, memory_bytes: 0 } }),
      ]);
    } finally {
      await heartbeat.stop();
    }
  });

  it('cordons, drains and uncordons a machine, and refuses an unknown machine or a bad deadline naming the field', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const cordoned = await api.client.unary<Record<string, unknown>>('cells', 'CordonMachine', { machine_id: 'm0', reason: 'disk swap' });
    expect(cordoned).toMatchObject({ id: 'm0', cordoned: true, cordon_reason: 'disk swap', drain_deadline_ms: 0 });
    expect((await api.cell.getMachine(machineId('m0')))?.cordon?.reason).toBe('disk swap');
    const before = Date.now();
    const draining = await api.client.unary<{ drain_deadline_ms: number }>('cells', 'DrainMachine', { machine_id: 'm0', deadline_ms: 60_000 });
    expect(draining.drain_deadline_ms).toBeGreaterThanOrEqual(before + 60_000);
    const listed = await api.client.unary<{ machines: Record<string, unknown>[] }>('cells', 'ListMachines', {});
    expect(listed.machines[0]).toMatchObject({ cordoned: true, drain_deadline_ms: draining.drain_deadline_ms });
    expect(await api.client.unary('cells', 'UncordonMachine', { machine_id: 'm0' })).toMatchObject({ cordoned: false, drain_deadline_ms: 0 });
    expect((await api.cell.getMachine(machineId('m0')))?.cordon).toBeUndefined();
    const unknown = await refusal(api.client.unary('cells', 'CordonMachine', { machine_id: 'm9' }));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toBe('machine_id: unknown machine "m9"');
    const missing = await refusal(api.client.unary('cells', 'DrainMachine', {}));
    expect(missing.details).toBe('machine_id: is required');
    const tooLong = await refusal(api.client.unary('cells', 'DrainMachine', { machine_id: 'm0', deadline_ms: 365 * 24 * 3600 * 1000 }));
    expect(tooLong.code).toBe(status.INVALID_ARGUMENT);
    expect(tooLong.details).toMatch(/^deadline_ms: must be/);
    expect((await api.cell.getMachine(machineId('m0')))?.cordon).toBeUndefined();
  });

  it('reports scheduler stats with the conflict fraction as failed per successful transaction', async () => {
    const stats: SchedulerStats = {
      name: 'batch-1',
      kind: 'batch',
      conflictMode: 'resource-fit',
      transactionMode: 'incremental',
      transactionsOk: 8,
      transactionsFailed: 2,
      claimsCommitted: 30,
      claimsConflicted: 3,
      busyUsefulMs: 300,
      busyWastedMs: 100,
      busyNoFitMs: 50,
      elapsedMs: 1000,
      jobsPlaced: 7,
      jobsAbandoned: 1,
      waitFirstAttemptMeanMs: 12,
      waitFirstAttemptP90Ms: 20,
      waitFullyPlacedMeanMs: 15,
      waitFullyPlacedP90Ms: 25,
      spuriousRetries: 4,
      updatedAtMs: 99,
    };
    await api.cell.publishSchedulerStats(stats);
    await api.cell.publishSchedulerStats({ ...stats, name: 'idle', transactionsOk: 0, transactionsFailed: 0, elapsedMs: 0 });
    const { schedulers } = await api.client.unary<{ schedulers: Record<string, unknown>[] }>('cells', 'GetSchedulerStats', {});
    expect(schedulers).toEqual([
      expect.objectContaining({ name: 'batch-1', kind: 'batch', transactions: 10, transactions_failed: 2, conflict_fraction: 0.25, busyness: 0.4, claims_conflicted: 3, spurious_retries: 4 }),
      expect.objectContaining({ name: 'idle', transactions: 0, conflict_fraction: 0, busyness: 0 }),
    ]);
  });
});
