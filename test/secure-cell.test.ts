/**
 * A whole cell as processes on a secured etcd (TLS, `--client-cert-auth`, the cell's roles):
 * the API server, a batch scheduler and a hollow agent each run with their own certificate
 * (`--ca --cert --key`), and a job submitted over TLS with a bearer token is placed and finishes.
 * Then what must be refused: a process whose certificate names no etcd user is refused by etcd
 * and exits instead of retrying forever, and a plaintext process never reaches the TLS etcd.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@omega/api/client';
import { CellKeys, EtcdKv, createToken } from '@omega/cell-state';
import { stopCellProcesses } from './support/cell-processes.js';
import { hollowBatchJob, JobSubmitter } from './support/job-submitter.js';
import { eventually, repoPath, spawnLogged, type LoggedProcess } from './support/processes.js';
import { startSecureEtcd, type SecureEtcd } from './support/secure-etcd.js';
import { defineTestCell, startTestCell, type TestCell } from './support/test-cell.js';

const CELL = 'tls-cell';
const BATCH_MAIN = repoPath('packages/scheduler-batch/dist/main.js');

let secure: SecureEtcd;
let cell: TestCell;
let logDir: string;
let token: string;
const loose: LoggedProcess[] = [];

beforeAll(async () => {
  secure = await startSecureEtcd({ cell: CELL, agents: [], hollow: true, hollowPrefix: 'hollow', identities: ['omega-stranger'] });
  logDir = mkdtempSync(join(tmpdir(), 'omega-secure-cell-'));
  cell = await defineTestCell({
    endpoints: secure.endpoints,
    cell: CELL,
    logDir,
    batchSchedulers: 1,
    serviceSchedulers: 0,
    machines: 2,
    machineCpu: '4',
    machineMemory: '8Gi',
    maxTxnOps: secure.etcd.limits.maxTxnOps,
    security: (user) => secure.pki.flags(user),
  });
  await startTestCell(cell);
  const root = new EtcdKv({ endpoints: secure.endpoints, tls: secure.pki.identity('root') });
  try {
    const created = await createToken(root, new CellKeys(CELL), { name: 'test-admin', role: 'admin', namespaces: [] });
    if (created.outcome !== 'created') throw new Error('the admin token existed already');
    token = created.token;
  } finally {
    await root.close();
  }
}, 120_000);

afterAll(async () => {
  for (const process of loose) process.child.kill('SIGKILL');
  await stopCellProcesses();
  await secure?.stop();
  // OMEGA_KEEP_LOGS=1 keeps the processes' logs to look at after a failure.
  if (logDir !== undefined && process.env.OMEGA_KEEP_LOGS === undefined) rmSync(logDir, { recursive: true, force: true });
});

describe('a cell whose every process has its own certificate', () => {
  it('places and finishes a job submitted over TLS with a token', async () => {
    for (const process of cell.all) expect(readFileSync(process.logFile, 'utf8')).toContain('"msg":"TLS identity loaded"');
    const client = new JobSubmitter(cell.apiAddress, 5_000, { ca: readFileSync(secure.pki.caFile), token });
    try {
      const id = await client.submit('secure-1', 'batch', hollowBatchJob('secure', 2, 500, 200));
      const finished = await eventually('the job to finish', async () => {
        const job = await client.getJob(id);
        return job.state === 'JOB_VIEW_STATE_SUCCEEDED' ? job : undefined;
      }, 60_000);
      expect(finished.tasks).toHaveLength(2);
    } finally {
      client.close();
    }
  });

  it('refuses a plaintext gRPC client on the TLS API port', async () => {
    const definition = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);
    type Unary = (request: unknown, options: { deadline: number }, callback: (error: ServiceError | null) => void) => void;
    const v1 = (loadPackageDefinition(definition) as unknown as { omega: { v1: Record<string, new (address: string, creds: unknown) => Client & Record<string, Unary>> } }).omega.v1;
    const jobs = new (v1.JobService as new (address: string, creds: unknown) => Client & Record<string, Unary>)(cell.apiAddress, credentials.createInsecure());
    try {
      const error = await new Promise<ServiceError | null>((resolve) => (jobs.ListJobs as Unary).call(jobs, {}, { deadline: Date.now() + 3_000 }, resolve));
      expect(error).not.toBeNull();
    } finally {
      jobs.close();
    }
  });

  it('a scheduler whose certificate names no user of the cell is refused by etcd and exits instead of retrying', async () => {
    // Signed by the cell's CA (so TLS accepts it), but etcd has no such user: no role, no keys.
    const scheduler = spawnLogged(BATCH_MAIN, [...secure.processFlags('omega-stranger'), '--cell', CELL, '--name', 'impostor', '--log-level', 'info']);
    loose.push(scheduler);
    const code = await Promise.race([scheduler.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 30_000))]);
    expect(code).toBe(1);
    expect(scheduler.messages).toContain("etcd refused a request: this identity's role does not allow these keys");
    expect(scheduler.messages).toContain('the cell store refused the scheduler');
  });

  it('a plaintext process never reaches the TLS etcd', async () => {
    const plain = secure.endpoints.map((url) => url.replace('https://', 'http://')).join(',');
    const scheduler = spawnLogged(BATCH_MAIN, ['--insecure', '--etcd', plain, '--cell', CELL, '--name', 'plaintext', '--log-level', 'info']);
    loose.push(scheduler);
    await eventually('the scheduler to say the store is unreachable', () => scheduler.messages.includes('cell store unreachable; retrying'), 30_000);
    expect(scheduler.messages.some((message) => message.startsWith('INSECURE (--insecure)'))).toBe(true);
    expect(scheduler.messages).not.toContain('scheduler started');
    scheduler.child.kill('SIGTERM');
    expect(await scheduler.exited).toBe(0);
  });
});
