/**
 * The churn benchmark's gRPC client of the Omega API: SubmitJob only, built from the .proto files
 * with the server's own proto-loader options (`@omega/api/client`), as any client would.
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

/** One connection to the API. */
export class ChurnClient {
  private readonly client: JobServiceClient;

  constructor(readonly address: string) {
    const JobService = jobService();
    this.client = new JobService(address, credentials.createInsecure());
  }

  /** Submits a job (no request id: the server makes one); resolves to its id. */
  submit(spec: WireJobSpec, deadlineMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      this.client.SubmitJob({ job: spec, request_id: '' }, { deadline: Date.now() + deadlineMs }, (error, response) => {
        if (error !== null) reject(error);
        else resolve((response as { job_id: string }).job_id);
      });
    });
  }

  /** Resolves once the server answers a call (waiting for it to come up), or rejects after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.ListJobs({ states: [], limit: 1, include_tasks: false }, { deadline: Date.now() + timeoutMs, waitForReady: true }, (error) => {
        if (error !== null) reject(error);
        else resolve();
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
