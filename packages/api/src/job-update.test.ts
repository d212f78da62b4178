import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

const MiB = 1024 * 1024;
const spec = (command: string[], instances = 2, extra: Record<string, unknown> = {}) => ({
  name: 'web',
  kind: 'JOB_KIND_SERVICE',
  instances,
  task: { command, resources: { cpu_millis: 100, memory_bytes: 64 * MiB } },
  ...extra,
});

interface UpdateReply {
  changed: boolean;
  version: number;
  change: string;
  job: { id: string; version: number; spec: { instances: number; task: { command: string[] } } };
}

let api: TestApi;
beforeEach(async () => {
  api = await startTestApi();
});
afterEach(async () => {
  await api.close();
});

const jobs = <T = Record<string, unknown>>(method: string, request: unknown) => api.client.unary<T>('jobs', method, request);
const submit = async (): Promise<string> => (await jobs<{ job_id: string }>('SubmitJob', { job: spec(['sleep', '1']) })).job_id;

describe('UpdateJob and GetJobHistory', () => {
  it('stores a new version, scales, rolls back and lists the versions newest first', async () => {
    const id = await submit();
    const updated = await jobs<UpdateReply>('UpdateJob', { job_id: id, job: spec(['sleep', '2']) });
    expect([updated.changed, updated.version, updated.change]).toEqual([true, 2, 'task.command changed']);
    expect(updated.job.spec.task.command).toEqual(['sleep', '2']);
    const scaled = await jobs<UpdateReply>('UpdateJob', { job_id: id, scale: true, instances: 4 });
    expect([scaled.version, scaled.change, scaled.job.spec.instances]).toEqual([3, 'instances 2 -> 4', 4]);
    const back = await jobs<UpdateReply>('UpdateJob', { job_id: id, rollback: true, rollback_to: 1 });
    expect([back.version, back.job.spec.task.command, back.job.spec.instances]).toEqual([4, ['sleep', '1'], 2]);
    const { versions } = await jobs<{ versions: { version: number; change: string; current: boolean; by: string }[] }>('GetJobHistory', { job_id: id });
    expect(versions.map((v) => v.version)).toEqual([4, 3, 2, 1]);
    expect(versions[0]).toMatchObject({ current: true, by: 'insecure' });
    expect(versions[3]?.change).toBe('submitted');
  });

  it('finds the job by the spec name when no id is given', async () => {
    const id = await submit();
    const updated = await jobs<UpdateReply>('UpdateJob', { job: spec(['sleep', '3']) });
    expect([updated.job.id, updated.version]).toEqual([id, 2]);
  });

  it('answers an unchanged spec with changed false and no new version', async () => {
    const id = await submit();
    const same = await jobs<UpdateReply>('UpdateJob', { job_id: id, job: spec(['sleep', '1']) });
    expect([same.changed, same.version]).toEqual([false, 1]);
  });

  it('names the field of a bad update: a kind change, surge, a stale expected version, an unknown version', async () => {
    const id = await submit();
    const kind = await refusal(jobs('UpdateJob', { job_id: id, job: { ...spec(['x']), kind: 'JOB_KIND_BATCH' } }));
    expect([kind.code, kind.details]).toEqual([status.INVALID_ARGUMENT, expect.stringMatching(/^job\.kind: cannot change/)]);
    const surge = await refusal(jobs('UpdateJob', { job_id: id, job: spec(['x'], 2, { update: { max_surge: 1 } }) }));
    expect([surge.code, surge.details]).toEqual([status.INVALID_ARGUMENT, expect.stringMatching(/job\.update\.max_surge: must be 0/)]);
    const stale = await refusal(jobs('UpdateJob', { job_id: id, scale: true, instances: 3, expected_version: 7 }));
    expect([stale.code, stale.details]).toEqual([status.FAILED_PRECONDITION, expect.stringMatching(/^expected_version: job .* is at version 1, not 7/)]);
    const unknown = await refusal(jobs('UpdateJob', { job_id: id, rollback: true, rollback_to: 9 }));
    expect([unknown.code, unknown.details]).toEqual([status.NOT_FOUND, expect.stringMatching(/^rollback_to: .* has no version 9/)]);
    const none = await refusal(jobs('UpdateJob', { job_id: id }));
    expect(none.code).toBe(status.INVALID_ARGUMENT);
  });

  it('refuses a job that was killed', async () => {
    const id = await submit();
    await jobs('KillJob', { job_id: id });
    const error = await refusal(jobs('UpdateJob', { job_id: id, scale: true, instances: 3 }));
    expect(error.code).toBe(status.FAILED_PRECONDITION);
  });
});
