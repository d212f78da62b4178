import { status } from '@grpc/grpc-js';
import { machineId, type Heartbeat } from '@omega/cell-state';
import { machine } from '@omega/cell-state/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

const spec = (overrides: Record<string, unknown> = {}) => ({
  name: 'web',
  kind: 'JOB_KIND_SERVICE',
  instances: 3,
  task: { command: ['sleep', '600'], resources: { cpu_millis: 1000, memory_bytes: 64 * 1024 * 1024 } },
  ...overrides,
});

interface Plan {
  create: { index: number; machine: string }[];
  replace: { index: number; machine: string }[];
  stop: { index: number; machine: string; reason: string }[];
  unplaced: number[];
  ruled_out: { filter: string; machines: number }[];
  reason: string;
  change: string;
  refused: string;
  version: number;
}

let api: TestApi;
const heartbeats: Heartbeat[] = [];
beforeEach(async () => {
  api = await startTestApi();
  for (const id of ['m0', 'm1']) {
    await api.cell.registerMachine(machine(id).cpu(2000).memory('4Gi').build());
    heartbeats.push(await api.cell.startHeartbeat(machineId(id)));
  }
});
afterEach(async () => {
  for (const h of heartbeats.splice(0)) await h.stop();
  await api.close();
});

const planOf = (request: Record<string, unknown>) => api.client.unary<Plan>('jobs', 'PlanJob', request);

describe('PlanJob', () => {
  it('says what a submit would place and what would wait, per filter, and stores nothing', async () => {
    const planned = await planOf({ job: spec({ instances: 5 }) });
    expect(planned.create.map((t) => t.index)).toEqual([0, 1, 2, 3, 4]);
    expect(planned.create.filter((t) => t.machine !== '').length).toBe(4);
    expect(planned.unplaced).toHaveLength(1);
    expect(planned.ruled_out).toEqual([{ filter: 'cpu', machines: 2 }]);
    expect(planned.reason).toMatch(/^1 of 5 tasks could not be placed: cpu: 2 machines/);
    expect([planned.refused, planned.version, planned.stop]).toEqual(['', 1, []]);
    expect((await api.kv.range({ key: '/omega/test/jobs/', prefix: true })).kvs).toHaveLength(0);
  });

  it('plans a scale and an update of a running job; the job stays as it was', async () => {
    const { job_id: id } = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec({ instances: 2 }), request_id: '' });
    const down = await planOf({ job_id: id, instances: 1 });
    // No scheduler runs here: nothing was placed, so nothing is stopped and what is left waits.
    expect(down.stop).toEqual([]);
    expect([down.create.map((t) => t.index), down.change, down.version]).toEqual([[0], 'instances 2 -> 1', 2]);
    const up = await planOf({ job_id: id, instances: 4 });
    expect(up.create.map((t) => t.index)).toEqual([0, 1, 2, 3]);
    const same = await planOf({ job_id: id, job: spec({ instances: 2 }) });
    expect([same.change, same.version]).toEqual(['nothing changed', 1]);
    const job = await api.client.unary<{ version: number; task_counts: Record<string, number> }>('jobs', 'GetJob', { job_id: id });
    expect(job.version).toBe(1);
  });

  it('refuses what a submit or an update would refuse, naming the field, and says when admission would refuse', async () => {
    const bad = await refusal(planOf({ job: spec({ instances: 0 }) }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^job\.instances: /);
    const unknown = await refusal(planOf({ job_id: 'nope-1', instances: 2 }));
    expect(unknown.code).toBe(status.NOT_FOUND);
    const { job_id: id } = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec(), request_id: '' });
    const renamed = await refusal(planOf({ job_id: id, job: spec({ name: 'other' }) }));
    expect(renamed.details).toBe('job.name: cannot change ("web" -> "other"): submit a new job instead');
    const nothing = await refusal(planOf({ job_id: id }));
    expect(nothing.details).toMatch(/^instances: give a new spec/);
    const elsewhere = await planOf({ job: spec({ namespace: 'team-x' }) });
    expect(elsewhere.refused).toBe('job.namespace: namespace "team-x" does not exist (an admin creates it with CreateNamespace)');
  });
});
