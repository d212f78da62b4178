/**
 * Test support: a grpc-js client of the API built from the .proto files alone (what any client
 * would do), with promise-returning helpers, and a harness that serves a cell held in memory.
 */
import { credentials, InterceptingCall, loadPackageDefinition, type ChannelCredentials, type Client, type Interceptor, type ServiceError } from '@grpc/grpc-js';
import { Cell, createToken, MemoryKv, type KvStore } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { AuthMode } from '../auth/token-auth.js';
import { loadApiDefinition } from '../proto.js';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../server.js';

/** A gRPC method as grpc-js generates it from the package definition. */
type Method = (request: unknown, ...rest: unknown[]) => unknown;

/** Sends `authorization: Bearer <token>` with every call. */
function bearer(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

export interface ApiTestClientOptions {
  /** A bearer token sent with every call (default: none). */
  readonly token?: string;
  /** Default: plaintext. */
  readonly credentials?: ChannelCredentials;
}

/** The services' clients on one address, with promise helpers. Close it when done. */
export class ApiTestClient {
  readonly jobs: Client & Record<string, Method>;
  readonly cells: Client & Record<string, Method>;
  readonly access: Client & Record<string, Method>;
  readonly namespaces: Client & Record<string, Method>;

  constructor(
    readonly address: string,
    readonly options: ApiTestClientOptions = {},
  ) {
    const loaded = loadPackageDefinition(loadApiDefinition().packageDefinition) as unknown as {
      omega: { v1: Record<string, new (address: string, creds: ChannelCredentials, options?: { interceptors?: Interceptor[] }) => Client & Record<string, Method>> };
    };
    const JobService = loaded.omega.v1.JobService;
    const CellService = loaded.omega.v1.CellService;
    const AccessService = loaded.omega.v1.AccessService;
    const NamespaceService = loaded.omega.v1.NamespaceService;
    if (JobService === undefined || CellService === undefined || AccessService === undefined || NamespaceService === undefined) throw new Error('the API definition lacks its services');
    const creds = options.credentials ?? credentials.createInsecure();
    const clientOptions = options.token === undefined ? {} : { interceptors: [bearer(options.token)] };
    this.jobs = new JobService(address, creds, clientOptions);
    this.cells = new CellService(address, creds, clientOptions);
    this.access = new AccessService(address, creds, clientOptions);
    this.namespaces = new NamespaceService(address, creds, clientOptions);
  }

  /** A client of the same server that sends `token` (close it too). */
  withToken(token: string | undefined): ApiTestClient {
    const { token: _previous, ...rest } = this.options;
    return new ApiTestClient(this.address, token === undefined ? rest : { ...rest, token });
  }

  /** Calls a unary method; rejects with the grpc ServiceError (`code`, `details`). */
  unary<T = Record<string, unknown>>(service: 'jobs' | 'cells' | 'access' | 'namespaces', method: string, request: unknown): Promise<T> {
    const client = this[service];
    const fn = client[method];
    if (fn === undefined) throw new Error(`no method ${method}`);
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + 10_000 }, (error: ServiceError | null, response: T) => (error === null ? resolve(response) : reject(error)));
    });
  }

  /** Reads a server stream to its end: every message, or the error that ended it. */
  stream<T = Record<string, unknown>>(method: 'WatchJob' | 'GetTaskLogs', request: unknown, onMessage?: (message: T) => void): Promise<{ messages: T[]; error?: ServiceError }> {
    const fn = this.jobs[method];
    if (fn === undefined) throw new Error(`no method ${method}`);
    const call = fn.call(this.jobs, request) as NodeJS.EventEmitter;
    const messages: T[] = [];
    return new Promise((resolve) => {
      call.on('data', (message: T) => {
        messages.push(message);
        onMessage?.(message);
      });
      call.on('error', (error: ServiceError) => resolve({ messages, error }));
      call.on('end', () => resolve({ messages }));
    });
  }

  close(): void {
    this.jobs.close();
    this.cells.close();
    this.access.close();
    this.namespaces.close();
  }
}

export interface TestApi {
  readonly kv: KvStore;
  readonly cell: Cell;
  readonly server: ApiServer;
  /** With `auth: 'tokens'`, it carries {@link TestApi.adminToken}. */
  readonly client: ApiTestClient;
  /** With `auth: 'tokens'`: the bearer token of the admin token `admin`, created before the server started. */
  readonly adminToken: string | undefined;
  /** A client of the server with `token` (or none), closed with the harness. */
  clientWith(token: string | undefined): ApiTestClient;
  close(): Promise<void>;
}

export interface TestApiOptions {
  kv?: KvStore;
  cellName?: string;
  logger?: Logger;
  /**
   * `none` (default): the server asks for no token (the tests of job semantics). `tokens`: it
   * does, and the harness creates an admin token first (straight in the store, as `omega dev`
   * does) for its client.
   */
  auth?: AuthMode;
  server?: Pick<ApiServerOptions, 'storeTimeoutMs' | 'watchProbeMs' | 'mirrorRetry' | 'now' | 'metrics'>;
}

/** An API server on 127.0.0.1 (free port) over `kv` (default a fresh MemoryKv), and a client of it. */
export async function startTestApi(options: TestApiOptions = {}): Promise<TestApi> {
  const kv = options.kv ?? new MemoryKv();
  const cell = new Cell(kv, options.cellName ?? 'test');
  const auth = options.auth ?? 'none';
  let adminToken: string | undefined;
  if (auth === 'tokens') {
    const created = await createToken(kv, cell.keys, { name: 'admin', role: 'admin', namespaces: [] });
    if (created.outcome !== 'created') throw new Error('the store already holds a token named admin');
    adminToken = created.token;
  }
  const server = await startApiServer({ ...options.server, cell, auth, listen: '127.0.0.1:0', shutdownGraceMs: 1_000, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  const client = new ApiTestClient(server.address, adminToken === undefined ? {} : { token: adminToken });
  const others: ApiTestClient[] = [];
  return {
    kv,
    cell,
    server,
    client,
    adminToken,
    clientWith: (token) => {
      const other = client.withToken(token);
      others.push(other);
      return other;
    },
    close: async () => {
      for (const other of others) other.close();
      client.close();
      await server.close();
    },
  };
}

/** The gRPC error a call failed with; fails the test when the call succeeded. */
export async function refusal(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error('the call succeeded');
}
