/**
 * A gRPC client of the Omega API for benchmarks that submit (churn, agent): SubmitJob with a
 * request id of the caller's choosing (so a retried submit is answered with the same job, as a
 * careful client does) or one the server makes, built from the .proto files with the server's
 * own proto-loader options (`@omega/api/client`). Plaintext: the benchmark's API server runs with `--insecure`.
 */
import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS, type WireJobSpec } from '@omega/api/client';

type Callback = (error: ServiceError | null, response: unknown) => void;
type JobServiceClient = Client & { SubmitJob(request: unknown, options: unknown, callback: Callback): unknown; ListJobs(request: unknown, options: unknown, callback: Callback): unknown };
type JobServiceConstructor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => JobServiceClient;

let constructor: JobServiceConstructor | undefined;

function jobService(): JobServiceConstructor {
  if (constructor !== undefined) return constructor;
  const definition = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);
  const v1 = (loadPackageDefinition(definition) as unknown as { omega: { v1: { JobService?: JobServiceConstructor } } }).omega.v1;
  if (v1.JobService === undefined) throw new Error(`${API_PROTO_FILE} lacks JobService`);
  constructor = v1.JobService;
  return constructor;
}

/** One connection (one HTTP/2 channel) to the API. */
export class SubmitClient {
  private readonly client: JobServiceClient;

  constructor(readonly address: string) {
    const JobService = jobService();
    this.client = new JobService(address, credentials.createInsecure());
  }

  /**
   * Submits `spec` under `requestId` (1-128 letters, digits, `.`, `_`, `-`; empty: the server
   * makes one for the call); resolves to the job's id.
   */
  submit(spec: WireJobSpec, requestId = '', deadlineMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      this.client.SubmitJob({ job: spec, request_id: requestId }, { deadline: Date.now() + deadlineMs }, (error, response) => {
        if (error !== null) reject(error);
        else resolve((response as { job_id: string }).job_id);
      });
    });
  }

  /** Resolves once the server answers a call (retrying while it is not up yet), or rejects after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await new Promise<void>((resolve, reject) => {
          this.client.ListJobs({ states: [], limit: 1, include_tasks: false }, { deadline: Date.now() + 5_000, waitForReady: true }, (error) => {
            if (error !== null) reject(error);
            else resolve();
          });
        });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  close(): void {
    this.client.close();
  }
}
