/**
 * A gRPC client of the Omega API for benchmarks that submit (churn, agent): SubmitJob with a
 * request id of the caller's choosing (so a retried submit is answered with the same job, as a
 * careful client does) or one the server makes. Built from the wire code generated from protos/
 * (`@omega/api/wire`: the JobService's methods and a grpc-js definition decoding as the server
 * does), like the CLI. Plaintext: the benchmark's API server runs with `--insecure`.
 */
import { credentials, makeClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { JobService, grpcServiceDefinition, type JobSpecInput, type ListJobsRequestInput, type SubmitJobRequestInput, type SubmitJobResponse } from '@omega/api/wire';

type Callback<T> = (error: ServiceError | null, response: T) => void;
type JobServiceGrpcClient = Client & {
  SubmitJob(request: SubmitJobRequestInput, options: object, callback: Callback<SubmitJobResponse>): unknown;
  ListJobs(request: ListJobsRequestInput, options: object, callback: Callback<unknown>): unknown;
};
type JobServiceConstructor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => JobServiceGrpcClient;

let constructor: JobServiceConstructor | undefined;

function jobService(): JobServiceConstructor {
  constructor ??= makeClientConstructor(grpcServiceDefinition(JobService), JobService.name) as unknown as JobServiceConstructor;
  return constructor;
}

/** One connection (one HTTP/2 channel) to the API. */
export class SubmitClient {
  private readonly client: JobServiceGrpcClient;

  constructor(readonly address: string) {
    const Service = jobService();
    this.client = new Service(address, credentials.createInsecure());
  }

  /**
   * Submits `spec` under `requestId` (1-128 letters, digits, `.`, `_`, `-`; empty: the server
   * makes one for the call); resolves to the job's id.
   */
  submit(spec: JobSpecInput, requestId = '', deadlineMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      this.client.SubmitJob({ job: spec, request_id: requestId }, { deadline: Date.now() + deadlineMs }, (error, response) => {
        if (error !== null) reject(error);
        else resolve(response.job_id);
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
