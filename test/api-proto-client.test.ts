// A client written the way a user in any language would write one: only the .proto files,
// loaded with @grpc/proto-loader and grpc-js's loadPackageDefinition; no project TypeScript.
// It talks to API server processes (the built entry point) on a real etcd.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type RunningEtcd } from '@omega/cell-state';
import { repoPath, startNode, stopAll, type Started } from './support/processes.js';

const PROTOS = fileURLToPath(new URL('../protos/', import.meta.url));

type Callback = (error: grpc.ServiceError | null, reply: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any
type AnyClient = grpc.Client & Record<string, (request: unknown, options: grpc.CallOptions, callback: Callback) => void>;

function clientsFor(address: string): { jobs: AnyClient; cells: AnyClient } {
  const definition = protoLoader.loadSync('omega/v1/api.proto', { includeDirs: [PROTOS], keepCase: true, longs: String, enums: String, defaults: true });
  const omega = (grpc.loadPackageDefinition(definition) as any).omega.v1; // eslint-disable-line @typescript-eslint/no-explicit-any
  return {
    jobs: new omega.JobService(address, grpc.credentials.createInsecure()) as AnyClient,
    cells: new omega.CellService(address, grpc.credentials.createInsecure()) as AnyClient,
  };
}

function call(client: AnyClient, method: string, request: unknown): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    client[method]?.(request, { deadline: Date.now() + 10_000 }, (error, reply) => (error === null ? resolve(reply) : reject(error)));
  });
}

let etcd: RunningEtcd;
const servers: Started[] = [];
const addresses: string[] = [];
const cell = `proto-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  etcd = await startEtcd();
  // Two API servers on the same cell: they share nothing but etcd.
  for (let i = 0; i < 2; i++) {
    const { started, match } = await startNode(repoPath('packages/api/dist/main.js'), ['--insecure', '--etcd', etcd.clientUrl, '--cell', cell, '--listen', '127.0.0.1:0', '--log-level', 'warn'], /omega-api listening on (\S+)/);
    servers.push(started);
    addresses.push(match[1] as string);
  }
});

afterAll(async () => {
  await stopAll();
  await etcd?.stop();
});

describe('the API from a plain gRPC client built from the .proto files', () => {
  it('submits a job, gets it, lists it and kills it', async () => {
    const { jobs, cells } = clientsFor(addresses[0] as string);
    try {
      const job = {
        name: 'proto-client',
        kind: 'JOB_KIND_BATCH',
        instances: 2,
        task: { command: ['sh', '-c', 'echo hi'], resources: { cpu_millis: '250', memory_bytes: String(64 * 1024 * 1024) }, env: { GREETING: 'hi' } },
        constraints: [{ attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_IN', values: ['a', 'b'] }],
      };
      const submitted = await call(jobs, 'SubmitJob', { job, request_id: 'proto-client-1' });
      expect(submitted).toEqual({ job_id: expect.stringMatching(/^proto-client-[0-9a-z]+$/), created: true });
      const id = submitted.job_id as string;

      const view = await call(jobs, 'GetJob', { job_id: id });
      expect(view).toMatchObject({
        id,
        state: 'JOB_VIEW_STATE_PENDING',
        kill_requested: false,
        spec: { name: 'proto-client', kind: 'JOB_KIND_BATCH', instances: 2, task: { resources: { cpu_millis: '250' }, env: { GREETING: 'hi' } } },
      });
      expect(view.tasks.map((t: { state: string }) => t.state)).toEqual(['TASK_VIEW_STATE_PENDING', 'TASK_VIEW_STATE_PENDING']);

      const listed = await call(jobs, 'ListJobs', {});
      expect(listed.jobs.map((j: { id: string }) => j.id)).toEqual([id]);

      const killed = await call(jobs, 'KillJob', { job_id: id });
      expect(killed.job).toMatchObject({ id, kill_requested: true, state: 'JOB_VIEW_STATE_KILLED' });

      expect((await call(cells, 'ListMachines', {})).machines).toEqual([]);
      expect((await call(cells, 'GetSchedulerStats', {})).schedulers).toEqual([]);
    } finally {
      jobs.close();
      cells.close();
    }
  });

  it('answers a malformed spec with INVALID_ARGUMENT naming the proto field', async () => {
    const { jobs, cells } = clientsFor(addresses[0] as string);
    try {
      const error = await call(jobs, 'SubmitJob', { job: { name: 'x', kind: 'JOB_KIND_SERVICE', instances: 1, task: { command: ['true'], resources: { cpu_millis: 0, memory_bytes: 1 } } } }).catch((e: grpc.ServiceError) => e);
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error.details).toBe('job.task.resources.cpu_millis: must be > 0');
      const missing = await call(jobs, 'GetJob', { job_id: 'no-such-job' }).catch((e: grpc.ServiceError) => e);
      expect(missing.code).toBe(grpc.status.NOT_FOUND);
    } finally {
      jobs.close();
      cells.close();
    }
  });

  it('reads on one API server what was written through another, and never makes two jobs of one request id', async () => {
    const a = clientsFor(addresses[0] as string);
    const b = clientsFor(addresses[1] as string);
    try {
      const job = { name: 'shared', kind: 'JOB_KIND_SERVICE', instances: 1, task: { command: ['sleep', '1000'], resources: { cpu_millis: 100, memory_bytes: 1048576 } } };
      const first = await call(a.jobs, 'SubmitJob', { job, request_id: 'shared-1' });
      expect((await call(b.jobs, 'GetJob', { job_id: first.job_id })).id).toBe(first.job_id);
      const again = await call(b.jobs, 'SubmitJob', { job, request_id: 'shared-1' });
      expect(again).toEqual({ job_id: first.job_id, created: false });
    } finally {
      for (const c of [a, b]) {
        c.jobs.close();
        c.cells.close();
      }
    }
  });

  it('loses nothing when an API server restarts', async () => {
    const { jobs, cells } = clientsFor(addresses[1] as string);
    try {
      const before = (await call(jobs, 'ListJobs', {})).jobs.map((j: { id: string }) => j.id);
      await servers[1]?.stop();
      const { started, match } = await startNode(repoPath('packages/api/dist/main.js'), ['--insecure', '--etcd', etcd.clientUrl, '--cell', cell, '--listen', addresses[1] as string, '--log-level', 'warn'], /omega-api listening on (\S+)/);
      servers[1] = started;
      expect(match[1]).toBe(addresses[1]);
      const after = (await call(jobs, 'ListJobs', {})).jobs.map((j: { id: string }) => j.id);
      expect(after).toEqual(before);
    } finally {
      jobs.close();
      cells.close();
    }
  });
});
