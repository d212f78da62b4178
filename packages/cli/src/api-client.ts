/**
 * The CLI's gRPC client of the Omega API: typed service clients (`client.jobs.listJobs(request)`)
 * made from the wire code generated from protos/ (`@omega/api/wire`: the services' methods, their
 * message types and a JSON descriptor, so nothing parses a .proto at start), with the server's
 * own decoding (snake_case fields, enums as names, 64-bit integers as numbers).
 *
 * ```
 *   ApiClient ── one HTTP/2 connection (grpc-h2.ts) ── TLS (the cell's CA) + `authorization: Bearer <token>` on every call
 *      ├─ jobs        JobService        (unary calls and the WatchJob / GetTaskLogs streams)
 *      ├─ cells       CellService
 *      ├─ access      AccessService
 *      └─ namespaces  NamespaceService
 * ```
 *
 * The token is set on the connection, so every unary call and every stream carries it and no
 * call site can forget it; it is sent only over TLS: an `insecure` connection sends no token at
 * all (a plaintext API asks for none, and a token must not cross the network in the clear).
 *
 * Every call fails fast when the API cannot be reached (no waiting for a connection, a deadline)
 * and every failure becomes a {@link CliError} whose message says what went wrong and whose exit
 * status tells the kind apart (see errors.ts); an unreachable server's message names the address.
 * The transport is the CLI's own small gRPC client over `node:http2` rather than grpc-js, which
 * alone would cost more start-up CPU than the rest of a command (grpc-h2.ts says why and what it
 * leaves out).
 */
import {
  AccessService,
  CellService,
  JobService,
  NamespaceService,
  methodCodec,
  type AccessServiceClient,
  type CellServiceClient,
  type JobServiceClient,
  type MethodCodec,
  type NamespaceServiceClient,
  type ServiceDescriptor,
} from '@omega/api/wire';
import { DEFAULT_API_ADDRESS, checkApiAddress, type ApiSecurity } from './client-config.js';
import { CliError, EXIT_FAILED_PRECONDITION, EXIT_PERMISSION_DENIED, EXIT_QUOTA_EXCEEDED, EXIT_UNAUTHENTICATED } from './errors.js';
import { GRPC_STATUS, GrpcFailure, H2Channel, grpcStatusName } from './grpc-h2.js';

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

/** How long a unary call may take, connection included. */
export const DEFAULT_DEADLINE_MS = 10_000;

/** Replies may list many tasks: more than gRPC's usual 4 MiB. */
const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;

/** One open connection to the API, with a typed client per service. Call `close()` when done. */
export class ApiClient {
  private readonly channel: H2Channel;
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
    // One connection shared by the four services; the token only ever over TLS.
    this.channel = new H2Channel(
      security.kind === 'tls'
        ? { address, ca: security.ca, authorization: `Bearer ${security.token}`, maxReceiveBytes: MAX_RECEIVE_BYTES }
        : { address, maxReceiveBytes: MAX_RECEIVE_BYTES },
    );
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
    this.channel.close();
  }

  /** The typed client of `service` (made once): one promise-returning function per method of its descriptor. */
  private service<C>(service: ServiceDescriptor<C>): C {
    const made = this.typed.get(service.name);
    if (made !== undefined) return made as C;
    const typed: Record<string, unknown> = {};
    for (const method of service.methods) {
      // Built on the method's first call, from only the types it uses.
      let made: MethodCodec | undefined;
      const codec = (): MethodCodec => (made ??= methodCodec(method));
      typed[method.key] = method.responseStream
        ? (request: unknown, onMessage: (message: unknown) => void | Promise<void>) => this.channel.stream(codec(), request, onMessage).catch((error: unknown) => Promise.reject(this.explain(error)))
        : (request: unknown) => this.channel.unary(codec(), request, this.deadlineMs).catch((error: unknown) => Promise.reject(this.explain(error)));
    }
    this.typed.set(service.name, typed);
    return typed as C;
  }

  /** A gRPC failure as one line for the user, with the exit status of its kind; anything else (a handler's own error) as it is. */
  private explain(error: unknown): unknown {
    return error instanceof GrpcFailure ? explainGrpcError(error, this.address, this.deadlineMs, this.security.kind === 'tls') : error;
  }
}

/** TLS failures in OpenSSL's and Node's words, and what to do about each. */
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
export function explainGrpcError(error: { readonly code: number; readonly details: string; readonly message: string }, address: string, deadlineMs: number, tls: boolean): CliError {
  const details = error.details || error.message;
  const options = { cause: error };
  switch (error.code) {
    case GRPC_STATUS.UNAVAILABLE: {
      const hint = tlsHint(details);
      if (hint !== undefined) return new CliError(`cannot connect securely to the Omega API at ${address}: ${hint} (${details})`, 1, options);
      const unreachable = /\b(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EAI_AGAIN)\b/.exec(details)?.[1] ?? (/Name resolution failed/i.test(details) ? 'name resolution failed' : undefined);
      if (unreachable !== undefined) {
        return new CliError(`cannot reach the Omega API at ${address}: ${unreachable} (check api: in the client config, --api or OMEGA_API; is \`omega dev\` running?)`, 1, { ...options, retryable: true });
      }
      // Reached, but no gRPC connection came of it: most often one side speaks TLS and the other not
      // (the connection is then reset or dropped without saying why).
      if (/No connection established|Failed to connect|Connection dropped|Protocol error|ECONNRESET|socket hang up|closed before/i.test(details)) {
        const advice = tls
          ? 'the API may not speak TLS: if it was started with --insecure, pass --insecure'
          : "the API may require TLS: use a client config with ca: and token: (or --ca and OMEGA_TOKEN) instead of --insecure";
        return new CliError(`cannot connect to the Omega API at ${address}: ${advice} (${details})`, 1, { ...options, retryable: true });
      }
      return new CliError(`the Omega API at ${address} is unavailable: ${details}`, 1, { ...options, retryable: true });
    }
    case GRPC_STATUS.DEADLINE_EXCEEDED:
      return new CliError(`the Omega API at ${address} did not answer within ${deadlineMs} ms`, 1, { ...options, retryable: true });
    case GRPC_STATUS.UNAUTHENTICATED:
      return new CliError(`not authenticated: ${details} (check OMEGA_TOKEN, --token or token: in the client config)`, EXIT_UNAUTHENTICATED, options);
    case GRPC_STATUS.PERMISSION_DENIED:
      return new CliError(`permission denied: ${details}`, EXIT_PERMISSION_DENIED, options);
    case GRPC_STATUS.RESOURCE_EXHAUSTED:
      // gRPC's own message-size limit answers RESOURCE_EXHAUSTED too; a quota refusal names the namespace.
      if (/message larger than max|exceeds maximum|max(imum)? (receive|send) message/i.test(details)) return new CliError(`too large: ${details}`, 1, options);
      return new CliError(`over quota: ${details}`, EXIT_QUOTA_EXCEEDED, options);
    case GRPC_STATUS.FAILED_PRECONDITION:
      return new CliError(details, EXIT_FAILED_PRECONDITION, options);
    case GRPC_STATUS.INVALID_ARGUMENT:
      return new CliError(`refused: ${details}`, 1, options);
    case GRPC_STATUS.NOT_FOUND:
    case GRPC_STATUS.ALREADY_EXISTS:
      return new CliError(details, 1, options);
    case GRPC_STATUS.ABORTED:
      return new CliError(`${grpcStatusName(error.code)}: ${details}`, 1, { ...options, retryable: true });
    default:
      return new CliError(`${grpcStatusName(error.code) ?? error.code}: ${details}`, 1, options);
  }
}

/** Whether a failed call may be sent again safely with the same request id (the first may have applied). */
export function isRetryable(error: unknown): boolean {
  const cause = (error as { cause?: { code?: number } }).cause;
  return cause?.code === GRPC_STATUS.DEADLINE_EXCEEDED || cause?.code === GRPC_STATUS.ABORTED;
}
