import { status } from '@grpc/grpc-js';
import { createToken } from '@omega/cell-state';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

const MiB = 1024 * 1024;
const spec = (namespace: string, cpu: number, instances = 1) => ({
  name: 'web',
  namespace,
  kind: 'JOB_KIND_BATCH',
  instances,
  task: { command: ['true'], resources: { cpu_millis: cpu, memory_bytes: 64 * MiB } },
});

let api: TestApi;
beforeEach(async () => {
  api = await startTestApi();
});
afterEach(async () => {
  await api.close();
});

const call = <T = Record<string, unknown>>(method: string, request: unknown) => api.client.unary<T>('namespaces', method, request);
const submit = (namespace: string, cpu: number, instances = 1, requestId = '') => api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: spec(namespace, cpu, instances), request_id: requestId });
const jobCount = async () => (await api.kv.range({ key: '/omega/test/jobs/', prefix: true })).kvs.length;

describe('NamespaceService', () => {
  it('creates a namespace once, lists it beside "default" with quota and use', async () => {
    expect(await call('CreateNamespace', { name: 'team-a' })).toMatchObject({ name: 'team-a', has_quota: false, used: { cpu_millis: 0, tasks: 0 } });
    expect(await call('CreateNamespace', { name: 'team-a' })).toMatchObject({ name: 'team-a' });
    await submit('team-a', 250, 2);
    const { namespaces } = await call<{ namespaces: { name: string; used: { cpu_millis: number; tasks: number } }[] }>('ListNamespaces', {});
    expect(namespaces.map((n) => n.name)).toEqual(['default', 'team-a']);
    expect(namespaces[1]?.used).toMatchObject({ cpu_millis: 500, tasks: 2 });
  });

  it('names the field of a bad name, a negative quota field and an unknown namespace, storing nothing', async () => {
    const bad = await refusal(call('CreateNamespace', { name: 'Team_A' }));
    expect([bad.code, bad.details]).toEqual([status.INVALID_ARGUMENT, expect.stringMatching(/^name: must be a DNS label/)]);
    await call('CreateNamespace', { name: 'a' });
    const negative = await refusal(call('SetQuota', { namespace: 'a', quota: { cpu_millis: -5 } }));
    expect([negative.code, negative.details]).toEqual([status.INVALID_ARGUMENT, 'quota.cpu_millis: must be >= 0 (0: no limit), got -5']);
    const missing = await refusal(call('GetQuota', { namespace: 'nope' }));
    expect([missing.code, missing.details]).toEqual([status.NOT_FOUND, expect.stringMatching(/^namespace: namespace "nope" does not exist/)]);
    expect((await refusal(call('SetQuota', { namespace: 'nope', quota: { tasks: 1 } }))).code).toBe(status.NOT_FOUND);
    expect((await api.kv.range({ key: '/omega/test/namespaces/', prefix: true })).kvs).toHaveLength(1);
  });

  it('refuses a quota below the current use with FAILED_PRECONDITION naming the resource and the use', async () => {
    await call('CreateNamespace', { name: 'a' });
    await submit('a', 500, 3);
    const error = await refusal(call('SetQuota', { namespace: 'a', quota: { cpu_millis: 1000 } }));
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.details).toBe('quota.cpu_millis: namespace "a": cpu quota of 1000m is below the 1500m in use; nothing was changed');
    expect(await call('GetQuota', { namespace: 'a' })).toMatchObject({ has_quota: false, used: { cpu_millis: 1500, tasks: 3 } });
    expect(await call('SetQuota', { namespace: 'a', quota: { cpu_millis: 2000, tasks: 4 } })).toMatchObject({ has_quota: true, quota: { cpu_millis: 2000, tasks: 4 } });
    expect(await call('SetQuota', { namespace: 'a', quota: {} })).toMatchObject({ has_quota: false });
  });
});

describe('SubmitJob in namespaces', () => {
  it('refuses an unknown namespace with NOT_FOUND naming job.namespace, and stores nothing', async () => {
    const error = await refusal(submit('nope', 100, 1, 'r1'));
    expect([error.code, error.details]).toEqual([status.NOT_FOUND, expect.stringMatching(/^job\.namespace: namespace "nope" does not exist/)]);
    expect(await jobCount()).toBe(0);
  });

  it('refuses a job over the quota with RESOURCE_EXHAUSTED naming namespace, resource, quota and use', async () => {
    await call('CreateNamespace', { name: 'a' });
    await call('SetQuota', { namespace: 'a', quota: { cpu_millis: 10_000 } });
    await submit('a', 1000, 8, 'first');
    const error = await refusal(submit('a', 1000, 3));
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.details).toBe('namespace "a": cpu 3000m requested + 8000m in use exceeds the quota of 10000m');
    expect(await jobCount()).toBe(1);
    // A resend of the admitted submit is answered with its job, not refused by the quota it holds.
    expect(await submit('a', 1000, 8, 'first')).toMatchObject({ created: false });
  });

  it('with tokens: a read token may get the quota of its namespace but not set it', async () => {
    await api.close();
    api = await startTestApi({ auth: 'tokens' });
    await call('CreateNamespace', { name: 'a' });
    const reader = await createToken(api.kv, api.cell.keys, { name: 'r', role: 'read', namespaces: ['a'] });
    if (reader.outcome !== 'created') throw new Error('token not created');
    // A write inside the cell prefix after the token's (outside it): CellReader.fresh() waits for
    // the mirror to reach the store's revision, which a write outside the prefix alone never brings.
    await call('CreateNamespace', { name: 'b' });
    const client = api.clientWith(reader.token);
    expect(await client.unary('namespaces', 'GetQuota', { namespace: 'a' })).toMatchObject({ name: 'a' });
    expect((await refusal(client.unary('namespaces', 'SetQuota', { namespace: 'a', quota: { tasks: 1 } }))).code).toBe(status.PERMISSION_DENIED);
    expect((await refusal(client.unary('namespaces', 'GetQuota', { namespace: 'default' }))).code).toBe(status.PERMISSION_DENIED);
    const { namespaces } = await client.unary<{ namespaces: { name: string }[] }>('namespaces', 'ListNamespaces', {});
    expect(namespaces.map((n) => n.name)).toEqual(['a']);
  });
});
