/**
 * A client of the Omega API for fault tests: submits jobs with a request id of its own and, when
 * a call fails with UNAVAILABLE or DEADLINE_EXCEEDED (the server or etcd is down, or the reply
 * was lost), sends the SAME request again until the server acknowledges it: that is what request
 * ids are for, and it is what a careful client does. Remembers every submission and its outcome
 * so the test can check that no acknowledged job was lost and that one request made one job.
 *
 * Built on the API's own proto-loader options (`@omega/api/client`), like the CLI. Plaintext
 * without a token (an `--insecure` API) unless given the cell's CA and a bearer token.
 */
import { credentials, loadPackageDefinition, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@omega/api/client';

type Callback = (error: ServiceError | null, reply: unknown) => void;
type Method = (request: unknown, metadata: Metadata, options: { deadline: number; waitForReady: boolean }, callback: Callback) => void;
type ServiceClient = Client & Record<string, Method>;
type ServiceConstructor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>, options?: object) => ServiceClient;

/** One submission as the client saw it. */
export interface Submission {
  readonly requestId: string;
  readonly kind: 'batch' | 'service';
  readonly job: unknown;
  /** Set once the server answered it. */
  jobId?: string;
  /** Calls made for it (1 when the first one was answered). */
  calls: number;
  /** Retryable failures seen, by gRPC code name. */
  readonly retried: Record<string, number>;
  /** When it was first sent / answered (ms since the epoch). */
  readonly sentAtMs: number;
  ackedAtMs?: number;
  /** A non-retryable refusal, or giving up: the test fails on it. */
  failure?: string;
}

/** How to reach a TLS API: the cell's CA certificate (PEM) and a bearer token (`omg1.<name>.<secret>`). */
export interface ApiCredentials {
  readonly ca: Buffer;
  readonly token: string;
}

/** A refused or abandoned submission. */
export class SubmitFailedError extends Error {
  constructor(
    readonly submission: Submission,
    message: string,
  ) {
    super(message);
    this.name = 'SubmitFailedError';
  }
}

const RETRYABLE = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

export class JobSubmitter {
  readonly submissions = new Map<string, Submission>();
  private readonly jobs: ServiceClient;
  private readonly cells: ServiceClient;
  private readonly metadata = new Metadata();

  constructor(
    readonly address: string,
    private readonly callDeadlineMs = 5_000,
    secure?: ApiCredentials,
  ) {
    const definition = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);
    const v1 = (loadPackageDefinition(definition) as unknown as { omega: { v1: Record<string, ServiceConstructor> } }).omega.v1;
    // Reconnect fast after the API server comes back: this client is meant to see it restart.
    const options = { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1_000 };
    const channel = secure === undefined ? credentials.createInsecure() : credentials.createSsl(secure.ca);
    if (secure !== undefined) this.metadata.set('authorization', `Bearer ${secure.token}`);
    this.jobs = new (v1.JobService as ServiceConstructor)(address, channel, options);
    this.cells = new (v1.CellService as ServiceConstructor)(address, channel, options);
  }

  /**
   * Submits `job` under `requestId`, retrying retryable failures with the same id every
   * `retryEveryMs` until it is answered or `giveUpAfterMs` passed. Resolves with the job id;
   * rejects with {@link SubmitFailedError} on any other error or when it gives up.
   */
  async submit(requestId: string, kind: 'batch' | 'service', job: unknown, options: { giveUpAfterMs?: number; retryEveryMs?: number } = {}): Promise<string> {
    const submission: Submission = { requestId, kind, job, calls: 0, retried: {}, sentAtMs: Date.now() };
    this.submissions.set(requestId, submission);
    const giveUpAt = Date.now() + (options.giveUpAfterMs ?? 120_000);
    for (;;) {
      submission.calls++;
      try {
        const reply = (await this.call(this.jobs, 'SubmitJob', { job, request_id: requestId })) as { job_id: string };
        submission.jobId = reply.job_id;
        submission.ackedAtMs = Date.now();
        return reply.job_id;
      } catch (error) {
        const e = error as ServiceError;
        const name = status[e.code] ?? String(e.code);
        if (!RETRYABLE.has(e.code)) {
          submission.failure = `SubmitJob ${requestId} failed with ${name}: ${e.details ?? e.message}`;
          throw new SubmitFailedError(submission, submission.failure);
        }
        submission.retried[name] = (submission.retried[name] ?? 0) + 1;
        if (Date.now() > giveUpAt) {
          submission.failure = `SubmitJob ${requestId} still failed with ${name} after ${submission.calls} calls: ${e.details ?? e.message}`;
          throw new SubmitFailedError(submission, submission.failure);
        }
        await new Promise((r) => setTimeout(r, options.retryEveryMs ?? 300));
      }
    }
  }

  /** GetJob; rejects with the gRPC error. */
  getJob(jobId: string): Promise<{ id: string; state: string; reason: string; tasks: unknown[] }> {
    return this.call(this.jobs, 'GetJob', { job_id: jobId }) as Promise<{ id: string; state: string; reason: string; tasks: unknown[] }>;
  }

  /** ListMachines; rejects with the gRPC error. */
  listMachines(): Promise<{ machines: { id: string; alive: boolean }[] }> {
    return this.call(this.cells, 'ListMachines', {}) as Promise<{ machines: { id: string; alive: boolean }[] }>;
  }

  /** Acknowledged submissions. */
  acknowledged(): Submission[] {
    return [...this.submissions.values()].filter((s) => s.jobId !== undefined);
  }

  /** How many calls failed retryably, by code name, over all submissions. */
  retriedCodes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.submissions.values()) for (const [code, n] of Object.entries(s.retried)) out[code] = (out[code] ?? 0) + n;
    return out;
  }

  close(): void {
    this.jobs.close();
    this.cells.close();
  }

  private call(client: ServiceClient, method: string, request: unknown): Promise<unknown> {
    const fn = client[method] as Method;
    return new Promise((resolve, reject) => {
      fn.call(client, request, this.metadata, { deadline: Date.now() + this.callDeadlineMs, waitForReady: false }, (error, reply) => (error === null ? resolve(reply) : reject(error)));
    });
  }
}

/** A batch job for hollow machines: `instances` tasks that "run" `runMs` and succeed. */
export function hollowBatchJob(name: string, instances: number, cpuMillis: number, runMs: number): unknown {
  return {
    name,
    kind: 'JOB_KIND_BATCH',
    instances,
    task: { command: ['true'], resources: { cpu_millis: cpuMillis, memory_bytes: 64 * 1024 * 1024 }, run_duration_ms: runMs },
  };
}

/** A service job for hollow machines whose instances run for an hour (longer than any test). */
export function hollowServiceJob(name: string, instances: number, cpuMillis: number): unknown {
  return {
    name,
    kind: 'JOB_KIND_SERVICE',
    instances,
    task: { command: ['true'], resources: { cpu_millis: cpuMillis, memory_bytes: 128 * 1024 * 1024 }, run_duration_ms: 3_600_000 },
  };
}
