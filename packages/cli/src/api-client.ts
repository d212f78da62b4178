/**
 * The CLI's gRPC client of the Omega API: typed service clients (`client.jobs.listJobs(request)`)
 * made from the wire code generated from protos/ (`@omega/api/wire`: the services' methods, their
 * message types and a JSON descriptor, so nothing parses a .proto at start), with the server's
 * own decoding (snake_case fields, enums as names, 64-bit integers as numbers).
 *
 * ```
 *   ApiClient ── one Channel ── TLS (the cell's CA) + `authorization: Bearer <token>` on every call
 *      ├─ jobs        JobService        (unary calls and the WatchJob / GetTaskLogs streams)
 *      ├─ cells       CellService
 *      ├─ access      AccessService
 *      └─ namespaces  NamespaceService
 * ```
 *
 * The token rides as call credentials combined into the channel credentials, so every unary call
 * and every stream carries it and no call site can forget it; grpc-js sends call credentials only
 * over TLS, and so does this client: an `insecure` connection sends no token at all (a plaintext
 * API asks for none, and a token must not cross the network in the clear).
 *
 * Every call fails fast when the API cannot be reached (`waitForReady: false`, a short deadline)
 * and every failure becomes a {@link CliError} whose message says what went wrong and whose exit
 * status tells the kind apart (see errors.ts); an unreachable server's message names the address.
 *
 * grpc-js is the heaviest thing the CLI loads: commands import this file only when they call the
 * API (program.ts), so `omega --help` never pays for it.
 */
import { Channel, Metadata, credentials, makeClientConstructor, status, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import {
  AccessService,
  CellService,
  JobService,
  NamespaceService,
  grpcServiceDefinition,
  type AccessServiceClient,
  type CellServiceClient,
  type JobServiceClient,
  type NamespaceServiceClient,
  type ServiceDescriptor,
} from '@omega/api/wire';
import { DEFAULT_API_ADDRESS, checkApiAddress, type ApiSecurity } from './client-config.js';
import { CliError, EXIT_FAILED_PRECONDITION, EXIT_PERMISSION_DENIED, EXIT_QUOTA_EXCEEDED, EXIT_UNAUTHENTICATED } from './errors.js';

export { DEFAULT_API_ADDRESS };

/**
 * The API address from `--api`, else `$OMEGA_API`, else {@link DEFAULT_API_ADDRESS}, checked to be
 * host:port. For callers without a client config (`omega dev` knows its own address); commands
 * use `resolveConnection`, which also reads the config file.
 */
export function resolveApiAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined) return checkApiAddress(flag, '--api');
  if (env.OMEGA_API !== undefined && env.OMEGA_API !== '') return checkApiAddress(env.OMEGA_API, '$OMEGA_API');
  return DEFAULT_API_ADDRESS;
}

type GrpcMethod = (request: unknown, options: object, callback?: (error: ServiceError | null, response: unknown) => void) => unknown;
type GrpcClient = Client & Record<string, GrpcMethod>;
type GrpcClientConstructor = new (address: string, creds: ChannelCredentials, options?: object) => GrpcClient;

const constructors = new Map<string, GrpcClientConstructor>();

/** grpc-js' client class of `service` (made once per process). */
function clientConstructor(service: ServiceDescriptor<unknown>): GrpcClientConstructor {
  let constructor = constructors.get(service.name);
  if (constructor === undefined) {
    constructor = makeClientConstructor(grpcServiceDefinition(service), service.name) as unknown as GrpcClientConstructor;
    constructors.set(service.name, constructor);
  }
  return constructor;
}

/** Channel credentials for `security`: TLS verified against the cell's CA, the token on every call. */
export function channelCredentials(security: ApiSecurity): ChannelCredentials {
  if (security.kind === 'insecure') return credentials.createInsecure();
  const header = `Bearer ${security.token}`;
  const bearer = credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new Metadata();
    metadata.set('authorization', header);
    callback(null, metadata);
  });
  return credentials.combineChannelCredentials(credentials.createSsl(security.ca), bearer);
}

/** How long a unary call may take, connection included. */
export const DEFAULT_DEADLINE_MS = 10_000;

/** One open connection to the API, with a typed client per service. Call `close()` when done. */
export class ApiClient {
  private readonly channel: Channel;
  private readonly creds: ChannelCredentials;
  private readonly grpcClients: GrpcClient[] = [];
  private readonly typed = new Map<string, unknown>();

  /**
   * `security` defaults to plaintext without a token (what `omega dev --insecure` serves); pass
   * the resolved connection's security for a secured cell.
   */
  constructor(
    readonly address: string,
    private readonly deadlineMs = DEFAULT_DEADLINE_MS,
    readonly security: ApiSecurity = { kind: 'insecure' },
  ) {
    this.creds = channelCredentials(security);
    // Replies may list many tasks: accept more than grpc-js's 4 MiB default.
    const options = { 'grpc.max_receive_message_length': 64 * 1024 * 1024 };
    // One channel (one connection) shared by the four services.
    this.channel = new Channel(address, this.creds, options);
  }

  // Each service's client is made on first use: a command pays only for the messages it sends.
  get jobs(): JobServiceClient {
    return this.service(JobService);
  }

  get cells(): CellServiceClient {
    return this.service(CellService);
  }

  get access(): AccessServiceClient {
    return this.service(AccessService);
  }

  get namespaces(): NamespaceServiceClient {
    return this.service(NamespaceService);
  }

  close(): void {
    for (const client of this.grpcClients) client.close();
    this.channel.close();
  }

  /** The typed client of `service` (made once): one promise-returning function per method of its descriptor. */
  private service<C>(service: ServiceDescriptor<C>): C {
    const made = this.typed.get(service.name);
    if (made !== undefined) return made as C;
    const grpc = new (clientConstructor(service))(this.address, this.creds, { channelOverride: this.channel });
    this.grpcClients.push(grpc);
    const typed: Record<string, unknown> = {};
    for (const method of service.methods) {
      const fn = grpc[method.name];
      if (fn === undefined) throw new Error(`the API definition lacks ${service.name}.${method.name}`);
      typed[method.key] = method.responseStream
        ? (request: unknown, onMessage: (message: unknown) => void | Promise<void>) => this.stream(grpc, fn, request, onMessage)
        : (request: unknown) => this.unary(grpc, fn, request);
    }
    this.typed.set(service.name, typed);
    return typed as C;
  }

  /** A unary call. Rejects with a {@link CliError} explaining the failure. */
  private unary(grpc: GrpcClient, fn: GrpcMethod, request: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      fn.call(grpc, request, { deadline: Date.now() + this.deadlineMs, waitForReady: false }, (error: ServiceError | null, response: unknown) => {
        if (error === null) resolve(response);
        else reject(this.explain(error));
      });
    });
  }

  /**
   * A server-streaming call, handing every message to `onMessage` (which may return a promise:
   * the stream waits for it). Resolves at the stream's end; rejects with a CliError. No
   * deadline: a watch lasts as long as the job (the first message is still awaited fail-fast).
   */
  private stream(grpc: GrpcClient, fn: GrpcMethod, request: unknown, onMessage: (message: unknown) => void | Promise<void>): Promise<void> {
    const call = fn.call(grpc, request, { waitForReady: false }) as NodeJS.ReadableStream & { cancel(): void };
    return new Promise<void>((resolve, reject) => {
      let pending = Promise.resolve();
      let failed = false;
      call.on('data', (message: unknown) => {
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

  /** A gRPC failure as one line for the user, with the exit status of its kind. */
  private explain(error: ServiceError): CliError {
    return explainGrpcError(error, this.address, this.deadlineMs, this.security.kind === 'tls');
  }
}

/** TLS failures as grpc-js reports them (OpenSSL's words), and what to do about each. */
const TLS_HINTS: readonly [RegExp, string][] = [
  [/self[- ]signed certificate|unable to (get local issuer|verify the first) certificate|certificate verify failed|unknown ca/i, 'the server certificate is not signed by the configured CA (check ca: / --ca)'],
  [/certificate has expired|CERT_HAS_EXPIRED/i, 'the server certificate has expired'],
  [/Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID|altnames/i, "the server certificate does not name this address (use the host the certificate was issued for)"],
  [/wrong version number|packet length too long|http request|WRONG_VERSION_NUMBER/i, 'the API does not speak TLS (if it was started with --insecure, pass --insecure)'],
];

/** Whether a connection failure looks like a TLS problem, and which. */
function tlsHint(details: string): string | undefined {
  for (const [pattern, hint] of TLS_HINTS) if (pattern.test(details)) return hint;
  return undefined;
}

/**
 * Maps a gRPC failure to a {@link CliError}: the exit status says which kind (UNAUTHENTICATED 3,
 * PERMISSION_DENIED 4, RESOURCE_EXHAUSTED over quota 5, FAILED_PRECONDITION 6, else 1) and the
 * message what to do. The server's own details are kept: they name the missing role, namespace,
 * resource or field. Exported for tests.
 */
export function explainGrpcError(error: ServiceError, address: string, deadlineMs: number, tls: boolean): CliError {
  const details = error.details || error.message;
  const options = { cause: error };
  switch (error.code) {
    case status.UNAVAILABLE: {
      const hint = tlsHint(details);
      if (hint !== undefined) return new CliError(`cannot connect securely to the Omega API at ${address}: ${hint} (${details})`, 1, options);
      const unreachable = /\b(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN)\b/.exec(details)?.[1] ?? (/Name resolution failed/i.test(details) ? 'name resolution failed' : undefined);
      if (unreachable !== undefined) {
        return new CliError(`cannot reach the Omega API at ${address}: ${unreachable} (check api: in the client config, --api or OMEGA_API; is \`omega dev\` running?)`, 1, { ...options, retryable: true });
      }
      // Reached, but no gRPC connection came of it: most often one side speaks TLS and the other not
      // (grpc-js then says only "Failed to connect" or "Connection dropped").
      if (/No connection established|Failed to connect|Connection dropped|Protocol error|ECONNRESET|socket hang up|closed before/i.test(details)) {
        const advice = tls
          ? 'the API may not speak TLS: if it was started with --insecure, pass --insecure'
          : "the API may require TLS: use a client config with ca: and token: (or --ca and OMEGA_TOKEN) instead of --insecure";
        // grpc-js's text carries a timestamp and an empty resolution note: keep only what it says.
        const said = details.replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, '').replace(/\.?\s*Resolution note:\s*$/, '');
        return new CliError(`cannot connect to the Omega API at ${address}: ${advice} (${said})`, 1, { ...options, retryable: true });
      }
      return new CliError(`the Omega API at ${address} is unavailable: ${details}`, 1, { ...options, retryable: true });
    }
    case status.DEADLINE_EXCEEDED:
      return new CliError(`the Omega API at ${address} did not answer within ${deadlineMs} ms`, 1, { ...options, retryable: true });
    case status.UNAUTHENTICATED:
      return new CliError(`not authenticated: ${details} (check OMEGA_TOKEN, --token or token: in the client config)`, EXIT_UNAUTHENTICATED, options);
    case status.PERMISSION_DENIED:
      return new CliError(`permission denied: ${details}`, EXIT_PERMISSION_DENIED, options);
    case status.RESOURCE_EXHAUSTED:
      // gRPC's own message-size limit answers RESOURCE_EXHAUSTED too; a quota refusal names the namespace.
      if (/message larger than max|exceeds maximum|max(imum)? (receive|send) message/i.test(details)) return new CliError(`too large: ${details}`, 1, options);
      return new CliError(`over quota: ${details}`, EXIT_QUOTA_EXCEEDED, options);
    case status.FAILED_PRECONDITION:
      return new CliError(details, EXIT_FAILED_PRECONDITION, options);
    case status.INVALID_ARGUMENT:
      return new CliError(`refused: ${details}`, 1, options);
    case status.NOT_FOUND:
    case status.ALREADY_EXISTS:
      return new CliError(details, 1, options);
    case status.ABORTED:
      return new CliError(`${status[error.code]}: ${details}`, 1, { ...options, retryable: true });
    default:
      return new CliError(`${status[error.code] ?? error.code}: ${details}`, 1, options);
  }
}

/** Whether a failed call may be sent again safely with the same request id (the first may have applied). */
export function isRetryable(error: unknown): boolean {
  const cause = (error as { cause?: { code?: number } }).cause;
  return cause?.code === status.DEADLINE_EXCEEDED || cause?.code === status.ABORTED;
}
