import { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { jobId, machineId, taskId } from '@omega/cell-state';
import { machine, plan } from '@omega/cell-state/testing';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

const SECRET = 'p4ss-w0rd-never-shown';
const OTHER_SECRET = 'an0ther-s3cret-value';

const spec = (secretEnv: Record<string, string> = { DB_PASSWORD: SECRET }, overrides: Record<string, unknown> = {}) => ({
  name: 'hello',
  kind: 'JOB_KIND_BATCH',
  instances: 2,
  task: { command: ['sh', '-c', 'echo hi'], env: { PLAIN: 'visible' }, secret_env: secretEnv, resources: { cpu_millis: 100, memory_bytes: 100 * 1024 * 1024 } },
  ...overrides,
});

let api: TestApi;
let logged: string;

beforeEach(async () => {
  logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged += chunk.toString();
      done();
    },
  });
  // Every level: a secret must not appear even in debug and trace lines.
  api = await startTestApi({ logger: pino({ level: 'trace' }, sink) });
  await api.cell.registerMachine(machine('m0').cpu(4000).memory('8Gi').build());
});
afterEach(async () => {
  await api.close();
});

describe('secret env values over the API', () => {
  it('are stored for the agents and appear in no reply (SubmitJob, GetJob, ListJobs with tasks, WatchJob) and no log line', async () => {
    const submitted = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: spec(), request_id: 'req-1' });
    const id = jobId(submitted.job_id);
    expect(await api.cell.readSecretEnv(id)).toEqual({ DB_PASSWORD: SECRET });
    // A placed task too, so the views carry tasks.
    await api.server.mirror.waitForRevision(await api.kv.currentRevision());
    const placed = await api.cell.committer().commit(plan(api.server.mirror.snapshot(), [[taskId(id, 0), machineId('m0'), 100]]).transaction('resource-fit', 'incremental'));
    const claim = placed.committed[0]?.claim.id ?? '';
    const repeat = await api.client.unary('jobs', 'SubmitJob', { job: spec(), request_id: 'req-1' });

    const got = await api.client.unary<{ spec: { task: { env: Record<string, string>; secret_env: Record<string, string>; secret_env_names: string[] } } }>('jobs', 'GetJob', { job_id: id });
    expect(got.spec.task.secret_env_names).toEqual(['DB_PASSWORD']);
    expect(got.spec.task.secret_env).toEqual({});
    expect(got.spec.task.env).toEqual({ PLAIN: 'visible' });
    const listed = await api.client.unary('jobs', 'ListJobs', { include_tasks: true });
    const killed = await api.client.unary('jobs', 'KillJob', { job_id: id });
    // The job ends once its placed task has stopped: then WatchJob ends too.
    await api.cell.updateTask(taskId(id, 0), claim, { state: 'killed', finishedAtMs: Date.now() });
    await api.cell.putJobStatus({ jobId: id, state: 'killed', reason: '', ruledOut: [], attempts: 1, scheduler: 's1', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const watched = await api.client.stream('WatchJob', { job_id: id });

    expect(watched.error).toBeUndefined();
    expect(watched.messages.length).toBeGreaterThan(0);
    const replies = JSON.stringify([submitted, repeat, got, listed, killed, watched.messages]);
    expect(replies).toContain('DB_PASSWORD');
    expect(replies).not.toContain(SECRET);
    expect(logged).toContain('job submitted');
    expect(logged).not.toContain(SECRET);
  });

  it('a repeat of the request id with other secret values is ALREADY_EXISTS, with the same values the same job', async () => {
    const first = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: spec(), request_id: 'same' });
    const again = await api.client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: spec(), request_id: 'same' });
    expect(again).toEqual({ job_id: first.job_id, created: false });
    const error = await refusal(api.client.unary('jobs', 'SubmitJob', { job: spec({ DB_PASSWORD: OTHER_SECRET }), request_id: 'same' }));
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(error.details).not.toContain(OTHER_SECRET);
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain(OTHER_SECRET);
  });

  it('refuses bad secret env with INVALID_ARGUMENT naming job.task.secret_env.<NAME>, quoting no value, storing nothing', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ PLAIN: SECRET }, 'job.task.secret_env.PLAIN: is also in task.env: a name is either secret or not'],
      [{ '9LIVES': SECRET }, 'job.task.secret_env.9LIVES: name must be letters, digits and "_", not starting with a digit'],
      [{ OMEGA_TASK_ID: SECRET }, 'job.task.secret_env.OMEGA_TASK_ID: name must not start with OMEGA_ (reserved for the variables the agent sets)'],
      [{ NUL: `${SECRET}\0` }, 'job.task.secret_env.NUL: value must be a string without NUL bytes'],
    ];
    for (const [secretEnv, details] of cases) {
      const error = await refusal(api.client.unary('jobs', 'SubmitJob', { job: spec(secretEnv), request_id: 'bad' }));
      expect(error.code, details).toBe(status.INVALID_ARGUMENT);
      expect(error.details, details).toBe(details);
    }
    expect((await api.kv.range({ key: api.cell.keys.root, prefix: true })).kvs.filter((kv) => !kv.key.includes('/machines/'))).toEqual([]);
    expect((await api.kv.range({ key: api.cell.keys.secretsRoot, prefix: true })).kvs).toEqual([]);
    expect(logged).not.toContain(SECRET);
  });

  it('ignores secret_env_names on submit: the stored names are those of the values given', async () => {
    const reply = await api.client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: { ...spec(), task: { ...spec().task, secret_env_names: ['FORGED'] } } });
    const got = await api.client.unary<{ spec: { task: { secret_env_names: string[] } } }>('jobs', 'GetJob', { job_id: reply.job_id });
    expect(got.spec.task.secret_env_names).toEqual(['DB_PASSWORD']);
  });
});
