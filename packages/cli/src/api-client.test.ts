import { Server, ServerCredentials, loadPackageDefinition, status, type Metadata, type ServerUnaryCall, type ServerWritableStream, type ServiceDefinition, type sendUnaryData } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@omega/api/client';
import { createCa, issueCertificate, type CertificateAuthority } from '@omega/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, explainGrpcError } from './api-client.js';
import { CliError, EXIT_FAILED_PRECONDITION, EXIT_PERMISSION_DENIED, EXIT_QUOTA_EXCEEDED, EXIT_UNAUTHENTICATED } from './errors.js';

const TOKEN = `omg1.ci.${Buffer.alloc(32, 7).toString('base64url')}`;

/** What the fake API saw: the authorization header of every call, by method. */
const seen: { method: string; authorization: string | undefined }[] = [];

function record(method: string, metadata: Metadata): void {
  const value = metadata.get('authorization')[0];
  seen.push({ method, authorization: value === undefined ? undefined : String(value) });
}

/** A JobService that answers ListJobs and WatchJob, and fails GetJob with the code named by the job id. */
function jobService(): { definition: ServiceDefinition; implementation: Record<string, unknown> } {
  const loaded = loadPackageDefinition(protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS)) as unknown as { omega: { v1: Record<string, { service: ServiceDefinition }> } };
  const definition = loaded.omega.v1.JobService?.service;
  if (definition === undefined) throw new Error('no JobService');
  return {
    definition,
    implementation: {
      ListJobs: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        record('ListJobs', call.metadata);
        callback(null, { jobs: [], truncated: false });
      },
      GetJob: (call: ServerUnaryCall<{ job_id: string }, unknown>, callback: sendUnaryData<unknown>) => {
        record('GetJob', call.metadata);
        const code = status[call.request.job_id as keyof typeof status] as number;
        callback({ code, details: `refused with ${call.request.job_id}` }, null);
      },
      // Never answers: for the deadline.
      KillJob: (call: ServerUnaryCall<unknown, unknown>) => {
        record('KillJob', call.metadata);
      },
      WatchJob: (call: ServerWritableStream<unknown, unknown>) => {
        record('WatchJob', call.metadata);
        call.write({ revision: 1, job: { id: 'a-1' } });
        call.end();
      },
    },
  };
}

async function serve(credentials: ServerCredentials): Promise<{ address: string; stop: () => Promise<void> }> {
  const server = new Server();
  const { definition, implementation } = jobService();
  server.addService(definition, implementation as never);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (error, p) => (error === null ? resolve(p) : reject(error))));
  return { address: `127.0.0.1:${port}`, stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
}

async function failure(call: Promise<unknown>): Promise<CliError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error('the call succeeded');
}

describe('ApiClient over TLS', () => {
  let ca: CertificateAuthority;
  let otherCa: CertificateAuthority;
  let tlsApi: { address: string; stop: () => Promise<void> };
  let plainApi: { address: string; stop: () => Promise<void> };

  beforeAll(async () => {
    ca = await createCa({ commonName: 'cell CA' });
    otherCa = await createCa({ commonName: 'another CA' });
    const server = await issueCertificate(ca, { commonName: 'omega-api', hosts: ['127.0.0.1', 'localhost'] });
    tlsApi = await serve(ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(server.certPem), private_key: Buffer.from(server.keyPem) }], false));
    plainApi = await serve(ServerCredentials.createInsecure());
  });
  afterAll(async () => {
    await tlsApi?.stop();
    await plainApi?.stop();
  });

  it('sends the bearer token with every unary call and every stream', async () => {
    const client = new ApiClient(tlsApi.address, 5_000, { kind: 'tls', ca: Buffer.from(ca.certPem), caPath: 'ca.pem', token: TOKEN });
    try {
      seen.length = 0;
      await client.jobs.listJobs({});
      const events: unknown[] = [];
      await client.jobs.watchJob({ job_id: 'a-1' }, (e) => {
        events.push(e);
      });
      expect(events).toHaveLength(1);
      expect(seen).toEqual([
        { method: 'ListJobs', authorization: `Bearer ${TOKEN}` },
        { method: 'WatchJob', authorization: `Bearer ${TOKEN}` },
      ]);
    } finally {
      client.close();
    }
  });

  it('sends no token over a plaintext connection', async () => {
    const client = new ApiClient(plainApi.address, 5_000, { kind: 'insecure' });
    try {
      seen.length = 0;
      await client.jobs.listJobs({});
      expect(seen).toEqual([{ method: 'ListJobs', authorization: undefined }]);
    } finally {
      client.close();
    }
  });

  it('refuses a server whose certificate another CA signed, saying to check the CA', async () => {
    const client = new ApiClient(tlsApi.address, 5_000, { kind: 'tls', ca: Buffer.from(otherCa.certPem), caPath: 'ca.pem', token: TOKEN });
    try {
      seen.length = 0;
      const error = await failure(client.jobs.listJobs({}));
      expect(error.message).toMatch(new RegExp(`^cannot connect securely to the Omega API at ${tlsApi.address}: the server certificate is not signed by the configured CA`));
      expect(error.message).not.toContain(TOKEN);
      expect(seen).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('cannot talk plaintext to the TLS API, and says the API may require TLS', async () => {
    const client = new ApiClient(tlsApi.address, 5_000, { kind: 'insecure' });
    try {
      seen.length = 0;
      const error = await failure(client.jobs.listJobs({}));
      expect(error.message).toMatch(new RegExp(`^cannot connect to the Omega API at ${tlsApi.address}: the API may require TLS: use a client config with ca: and token:`));
      expect(seen).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('says a plaintext API does not speak TLS, and never sends it the token', async () => {
    const client = new ApiClient(plainApi.address, 5_000, { kind: 'tls', ca: Buffer.from(ca.certPem), caPath: 'ca.pem', token: TOKEN });
    try {
      seen.length = 0;
      const error = await failure(client.jobs.listJobs({}));
      expect(error.message).toMatch(/does not speak TLS|may not speak TLS/);
      expect(error.message).toMatch(/pass --insecure/);
      expect(seen).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("maps the API's refusals to distinct exit statuses and keeps the server's words", async () => {
    const client = new ApiClient(tlsApi.address, 5_000, { kind: 'tls', ca: Buffer.from(ca.certPem), caPath: 'ca.pem', token: TOKEN });
    try {
      const cases: [string, number, RegExp][] = [
        ['UNAUTHENTICATED', EXIT_UNAUTHENTICATED, /^not authenticated: refused with UNAUTHENTICATED \(check OMEGA_TOKEN/],
        ['PERMISSION_DENIED', EXIT_PERMISSION_DENIED, /^permission denied: refused with PERMISSION_DENIED$/],
        ['RESOURCE_EXHAUSTED', EXIT_QUOTA_EXCEEDED, /^over quota: refused with RESOURCE_EXHAUSTED$/],
        ['FAILED_PRECONDITION', EXIT_FAILED_PRECONDITION, /^refused with FAILED_PRECONDITION$/],
        ['NOT_FOUND', 1, /^refused with NOT_FOUND$/],
      ];
      for (const [code, exit, message] of cases) {
        const error = await failure(client.jobs.getJob({ job_id: code }));
        expect({ code, exit: error.exitCode, message: error.message }).toEqual({ code, exit, message: expect.stringMatching(message) });
      }
    } finally {
      client.close();
    }
  });
});

describe('ApiClient calls', () => {
  let api: { address: string; stop: () => Promise<void> };

  beforeAll(async () => {
    api = await serve(ServerCredentials.createInsecure());
  });
  afterAll(async () => {
    await api?.stop();
  });

  it('gives up on a call the server never answers at the deadline, as a retryable error', async () => {
    const client = new ApiClient(api.address, 300, { kind: 'insecure' });
    try {
      const error = await failure(client.jobs.killJob({ job_id: 'a-1' }));
      expect(error.message).toBe(`the Omega API at ${api.address} did not answer within 300 ms`);
      expect(error.retryable).toBe(true);
    } finally {
      client.close();
    }
  });

  it('ends a stream with the handler’s own error when the handler fails, and the connection still serves calls', async () => {
    const client = new ApiClient(api.address, 5_000, { kind: 'insecure' });
    try {
      const failed = new Error('the handler failed');
      await expect(client.jobs.watchJob({ job_id: 'a-1' }, () => Promise.reject(failed))).rejects.toBe(failed);
      await expect(client.jobs.listJobs({})).resolves.toMatchObject({ jobs: [], truncated: false });
    } finally {
      client.close();
    }
  });

  it('says the API cannot be reached when nothing listens at the address', async () => {
    const closed = await serve(ServerCredentials.createInsecure());
    await closed.stop();
    const client = new ApiClient(closed.address, 5_000, { kind: 'insecure' });
    try {
      const error = await failure(client.jobs.listJobs({}));
      expect(error.message).toMatch(new RegExp(`^cannot reach the Omega API at ${closed.address}: ECONNREFUSED`));
    } finally {
      client.close();
    }
  });
});

describe('explainGrpcError', () => {
  it("tells gRPC's message size limit apart from a quota refusal", () => {
    const tooBig = explainGrpcError(Object.assign(new Error('x'), { code: status.RESOURCE_EXHAUSTED, details: 'Received message larger than max (5000000 vs 4194304)', metadata: undefined as never }), 'a:1', 1, true);
    expect(tooBig.exitCode).toBe(1);
    expect(tooBig.message).toMatch(/^too large: /);
  });
});
