import { status } from '@grpc/grpc-js';
import { jobId, machineId, taskId } from '@omega/cell-state';
import { machine, plan } from '@omega/cell-state/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

let api: TestApi;
beforeEach(async () => {
  api = await startTestApi();
});
afterEach(async () => {
  await api.close();
});

describe('a job deleted after its retention', () => {
  it('is NOT_FOUND for GetJob, KillJob and WatchJob, and is not listed', async () => {
    await api.cell.registerMachine(machine('m0').build());
    const spec = { name: 'gone', kind: 'JOB_KIND_BATCH', instances: 1, retention_ms: 1000, task: { command: ['true'], resources: { cpu_millis: 100, memory_bytes: 1024 ** 2 } } };
    const { job_id } = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec, request_id: '' });
    const id = jobId(job_id);
    const job = await api.cell.getJob(id);
    expect(job?.spec.retentionMs).toBe(1000);
    await api.server.mirror.waitForRevision(await api.kv.currentRevision());
    const placed = await api.cell.committer().commit(plan(api.server.mirror.snapshot(), [[taskId(id, 0), machineId('m0'), 100]]).transaction('resource-fit', 'incremental'));
    await api.cell.updateTask(taskId(id, 0), placed.committed[0]!.claim.id, { state: 'succeeded', exitCode: 0 });
    await api.cell.putJobStatus({ jobId: id, state: 'succeeded', reason: '', ruledOut: [], attempts: 1, scheduler: 's', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const statusKv = (await api.kv.range({ key: api.cell.keys.status(id) })).kvs[0]!;
    expect((await api.client.unary<{ state: string }>('jobs', 'GetJob', { job_id: id })).state).toBe('JOB_VIEW_STATE_SUCCEEDED');

    expect((await api.cell.deleteJob({ jobId: id, jobRevision: job!.revision, statusRevision: statusKv.modRevision })).outcome).toBe('deleted');
    expect((await refusal(api.client.unary('jobs', 'GetJob', { job_id: id }))).code).toBe(status.NOT_FOUND);
    expect((await refusal(api.client.unary('jobs', 'KillJob', { job_id: id }))).code).toBe(status.NOT_FOUND);
    expect((await api.client.stream('WatchJob', { job_id: id })).error?.code).toBe(status.NOT_FOUND);
    expect((await api.client.unary<{ jobs: unknown[] }>('jobs', 'ListJobs', { states: [], limit: 0, include_tasks: false })).jobs).toEqual([]);
  });
});
