/**
 * GetTaskLogs end to end over TLS, in one process: a gRPC client (TLS, the cell's CA) asks an
 * API server that has its identity; the API reads the log from an agent's log server over
 * HTTPS with its client certificate and a log grant. The cell store is a MemoryKv (not what is
 * under test).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, MemoryKv, jobId, machineId, taskId, type Heartbeat, type TlsIdentity } from '@omega/cell-state';
import { jobSpec, machine, plan } from '@omega/cell-state/testing';
import { createCa, issueCertificate, type CertificateAuthority } from '@omega/pki';
import { loadApiDefinition, startApiServer, type ApiServer } from '@omega/api';
import { startLogServer, type LogServer } from '@omega/node-agent';

const M1 = machineId('m1');
const JOB = jobId('web-1');

let ca: CertificateAuthority;
let kv: MemoryKv;
let cell: Cell;
let api: ApiServer;
let dataDir: string;
let jobs: Client & Record<string, (request: unknown) => NodeJS.EventEmitter>;
const servers: LogServer[] = [];
const heartbeats: Heartbeat[] = [];

async function identity(commonName: string): Promise<TlsIdentity> {
  const issued = await issueCertificate(ca, { commonName, hosts: ['127.0.0.1', 'localhost'] });
  return { ca: Buffer.from(ca.certPem), cert: Buffer.from(issued.certPem), key: Buffer.from(issued.keyPem) };
}

/** A log server for machine m1 under `cn`'s certificate (or plain HTTP), advertised in alive/m1. */
async function serveLogsAs(cn: string | undefined): Promise<void> {
  for (const h of heartbeats.splice(0)) await h.stop();
  const server = await startLogServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    logPathFor: (job, index, attempt, stream) => join(dataDir, `${job}~${index}~${attempt}`, `${stream}.log`),
    ...(cn === undefined ? {} : { tls: { identity: await identity(cn), machineId: M1 } }),
  });
  servers.push(server);
  heartbeats.push(await cell.startHeartbeat(M1, { logAddress: server.address }));
}

function readLogs(): Promise<{ data: string; error?: ServiceError }> {
  const call = jobs.GetTaskLogs!({ job_id: JOB, index: 0, stream: 'STREAM_STDOUT' });
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    call.on('data', (m: { data: Buffer }) => chunks.push(m.data));
    call.on('error', (error: ServiceError) => resolve({ data: Buffer.concat(chunks).toString(), error }));
    call.on('end', () => resolve({ data: Buffer.concat(chunks).toString() }));
  });
}

beforeAll(async () => {
  ca = await createCa({ commonName: 'logs test CA' });
  dataDir = await mkdtemp(join(tmpdir(), 'omega-logs-tls-'));
  await mkdir(join(dataDir, `${JOB}~0~1`));
  await writeFile(join(dataDir, `${JOB}~0~1`, 'stdout.log'), 'hello over tls\n');
  kv = new MemoryKv();
  cell = new Cell(kv, 'logs');
  api = await startApiServer({ cell, listen: '127.0.0.1:0', tls: await identity('omega-api'), auth: 'none', shutdownGraceMs: 500 });
  await cell.registerMachine(machine('m1').build());
  await cell.createJob({ id: JOB, spec: jobSpec('web').build() });
  await api.mirror.waitForRevision(await kv.currentRevision());
  await cell.committer().commit(plan(api.mirror.snapshot(), [[taskId(JOB, 0), M1, 100]]).transaction('resource-fit', 'incremental'));
  const loaded = loadPackageDefinition(loadApiDefinition().packageDefinition) as unknown as {
    omega: { v1: { JobService: new (address: string, creds: ReturnType<typeof credentials.createSsl>) => typeof jobs } };
  };
  jobs = new loaded.omega.v1.JobService(api.address, credentials.createSsl(Buffer.from(ca.certPem)));
});

afterAll(async () => {
  jobs?.close();
  for (const h of heartbeats) await h.stop();
  for (const s of servers) await s.close();
  await api?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('GetTaskLogs over TLS', () => {
  it("streams the log from the machine's agent, which asked the API for its certificate and a grant", async () => {
    await serveLogsAs('omega-agent-m1');
    await api.mirror.waitForRevision(await kv.currentRevision());
    expect(await readLogs()).toEqual({ data: 'hello over tls\n' });
  });

  it("refuses a log server whose certificate is another machine's: UNAVAILABLE naming it, no data", async () => {
    await serveLogsAs('omega-agent-m2');
    await api.mirror.waitForRevision(await kv.currentRevision());
    const { data, error } = await readLogs();
    expect(data).toBe('');
    expect(error?.details).toMatch(/log server did not answer.*not omega-agent-m1/);
  });

  it('does not read logs from a plaintext log server', async () => {
    await serveLogsAs(undefined);
    await api.mirror.waitForRevision(await kv.currentRevision());
    const { data, error } = await readLogs();
    expect(data).toBe('');
    expect(error?.details).toMatch(/log server did not answer/);
  });
});
