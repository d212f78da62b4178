/**
 * The CLI's gRPC client of the Omega API, built from the .proto files at run time (no generated
 * code), with the server's own proto-loader options (`@omega/api/client`): snake_case fields,
 * enums as names, 64-bit integers as numbers.
 *
 * Every call fails fast when the API cannot be reached (`waitForReady: false`, a short deadline)
 * and every failure becomes a {@link CliError} whose message says what went wrong and, when the
 * server could not be reached, which address was tried.
 */
import { credentials, loadPackageDefinition, status, type Client, type ServiceError } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@omega/api/client';
import { CliError } from './errors.js';

/** Where the API is when neither `--api` nor `OMEGA_API` says. */
export const DEFAULT_API_ADDRESS = '127.0.0.1:7070';

/** The API address: `--api`, else `OMEGA_API`, else {@link DEFAULT_API_ADDRESS}. Checked to be host:port. */
export function resolveApiAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const address = flag ?? (env.OMEGA_API !== undefined && env.OMEGA_API !== '' ? env.OMEGA_API : DEFAULT_API_ADDRESS);
  const source = flag !== undefined ? '--api' : env.OMEGA_API !== undefined && env.OMEGA_API !== '' ? 'OMEGA_API' : 'the default address';
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  if (match === null || Number(match[2]) === 0 || Number(match[2]) > 65535) throw new CliError(`${source}: ${JSON.stringify(address)} is not HOST:PORT`, 2);
  return address;
}

type Callback = (error: ServiceError | null, response: unknown) => void;
type GrpcMethod = (request: unknown, metadataOrOptions?: unknown, optionsOrCallback?: unknown, callback?: Callback) => unknown;
type ServiceClient = Client & Record<string, GrpcMethod>;
type ServiceConstructor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>, options?: object) => ServiceClient;

let services: { JobService: ServiceConstructor; CellService: ServiceConstructor } | undefined;

function loadServices(): { JobService: ServiceConstructor; CellService: ServiceConstructor } {
  if (services !== undefined) return services;
  const definition = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);
  const v1 = (loadPackageDefinition(definition) as unknown as { omega: { v1: Record<string, ServiceConstructor | undefined> } }).omega.v1;
  if (v1.JobService === undefined || v1.CellService === undefined) throw new Error(`${API_PROTO_FILE} lacks JobService or CellService`);
  services = { JobService: v1.JobService, CellService: v1.CellService };
  return services;
}

/** How long a unary call may take, connection included. */
export const DEFAULT_DEADLINE_MS = 10_000;

/** One open connection to the API. Call `close()` when done. */
export class ApiClient {
  private readonly jobs: ServiceClient;
  private readonly cells: ServiceClient;

  constructor(
    readonly address: string,
    private readonly deadlineMs = DEFAULT_DEADLINE_MS,
  ) {
    const { JobService, CellService } = loadServices();
    // Replies may list many tasks: accept more than grpc-js's 4 MiB default.
    const options = { 'grpc.max_receive_message_length': 64 * 1024 * 1024 };
    this.jobs = new JobService(address, credentials.createInsecure(), options);
    this.cells = new CellService(address, credentials.createInsecure(), options);
  }

  /** Calls a unary method. Rejects with a {@link CliError} explaining the failure. */
  call<T>(service: 'jobs' | 'cells', method: string, request: unknown): Promise<T> {
    const client = service === 'jobs' ? this.jobs : this.cells;
    const fn = client[method];
    if (fn === undefined) return Promise.reject(new Error(`the API has no method ${method}`));
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + this.deadlineMs, waitForReady: false }, (error: ServiceError | null, response: unknown) => {
        if (error === null) resolve(response as T);
        else reject(this.explain(error));
      });
    });
  }

  /**
   * Calls a server-streaming method, handing every message to `onMessage` (which may return a
   * promise: the stream waits for it). Resolves at the stream's end; rejects with a CliError.
   * No deadline: a watch lasts as long as the job (the first message is still awaited fail-fast).
   */
  stream<T>(method: 'WatchJob' | 'GetTaskLogs', request: unknown, onMessage: (message: T) => void | Promise<void>): Promise<void> {
    const fn = this.jobs[method];
    if (fn === undefined) return Promise.reject(new Error(`the API has no method ${method}`));
    const call = fn.call(this.jobs, request, { waitForReady: false }) as NodeJS.ReadableStream & { cancel(): void };
    return new Promise<void>((resolve, reject) => {
      let pending = Promise.resolve();
      let failed = false;
      call.on('data', (message: T) => {
        call.pause();
        pending = pending
          .then(() => onMessage(message))
          .then(
            () => {
              call.resume();
            },
            (error: unknown) => {
              failed = true;
              call.cancel();
              reject(error);
            },
          );
      });
      call.on('error', (error: ServiceError) => {
        if (!failed) void pending.then(() => reject(this.explain(error)));
      });
      call.on('end', () => {
        if (!failed) void pending.then(() => resolve());
      });
    });
  }

  close(): void {
    this.jobs.close();
    this.cells.close();
  }

  /** A gRPC failure as one line for the user. */
  private explain(error: ServiceError): CliError {
    const details = error.details || error.message;
    switch (error.code) {
      case status.UNAVAILABLE:
        if (/No connection established|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|Failed to connect|Name resolution failed/i.test(details)) {
          const why = /\b(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EAI_AGAIN)\b/.exec(details)?.[1] ?? (/Name resolution failed/i.test(details) ? 'name resolution failed' : details);
          return new CliError(`cannot reach the Omega API at ${this.address}: ${why} (set --api or OMEGA_API; is \`omega dev\` running?)`, 1, { cause: error });
        }
        return new CliError(`the Omega API at ${this.address} is unavailable: ${details}`, 1, { cause: error });
      case status.DEADLINE_EXCEEDED:
        return new CliError(`the Omega API at ${this.address} did not answer within ${this.deadlineMs} ms`, 1, { cause: error });
      case status.INVALID_ARGUMENT:
        return new CliError(`refused: ${details}`, 1, { cause: error });
      case status.NOT_FOUND:
      case status.FAILED_PRECONDITION:
        return new CliError(details, 1, { cause: error });
      case status.RESOURCE_EXHAUSTED:
        return new CliError(`too large: ${details}`, 1, { cause: error });
      default:
        return new CliError(`${status[error.code] ?? error.code}: ${details}`, 1, { cause: error });
    }
  }
}

/** Whether a failed call may be sent again safely with the same request id (the first may have applied). */
export function isRetryable(error: unknown): boolean {
  const cause = (error as { cause?: { code?: number } }).cause;
  return cause?.code === status.DEADLINE_EXCEEDED || cause?.code === status.ABORTED;
}
