/**
 * Test support: a grpc-js client of the API built from the .proto files alone (what any client
 * would do), with promise-returning helpers, and a harness that serves a cell held in memory.
 */
import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import { Cell, MemoryKv, type KvStore } from '@omega/cell-state';
import type { Logger } from 'pino';
import { loadApiDefinition } from '../proto.js';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../server.js';

/** A gRPC method as grpc-js generates it from the package definition. */
type Method = (request: unknown, ...rest: unknown[]) => unknown;

/** Both services' clients on one address, with promise helpers. Close it when done. */
export class ApiTestClient {
  readonly jobs: Client & Record<string, Method>;
  readonly cells: Client & Record<string, Method>;

  constructor(readonly address: string) {
    const loaded = loadPackageDefinition(loadApiDefinition().packageDefinition) as unknown as {
      omega: { v1: Record<string, new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client & Record<string, Method>> };
    };
    const JobService = loaded.omega.v1.JobService;
    const CellService = loaded.omega.v1.CellService;
    if (JobService === undefined || CellService === undefined) throw new Error('the API definition lacks its services');
    this.jobs = new JobService(address, credentials.createInsecure());
    this.cells = new CellService(address, credentials.createInsecure());
  }

  /** Calls a unary method; rejects with the grpc ServiceError (`code`, `details`). */
  unary<T = Record<string, unknown>>(service: 'jobs' | 'cells', method: string, request: unknown): Promise<T> {
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
  }
}

export interface TestApi {
  readonly kv: KvStore;
  readonly cell: Cell;
  readonly server: ApiServer;
  readonly client: ApiTestClient;
  close(): Promise<void>;
}

/** An API server on 127.0.0.1 (free port) over `kv` (default a fresh MemoryKv), and a client of it. */
export async function startTestApi(
  options: { kv?: KvStore; cellName?: string; logger?: Logger; server?: Pick<ApiServerOptions, 'storeTimeoutMs' | 'watchProbeMs' | 'mirrorRetry'> } = {},
): Promise<TestApi> {
  const kv = options.kv ?? new MemoryKv();
  const cell = new Cell(kv, options.cellName ?? 'test');
  const server = await startApiServer({ ...options.server, cell, listen: '127.0.0.1:0', shutdownGraceMs: 1_000, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  const client = new ApiTestClient(server.address);
  return {
    kv,
    cell,
    server,
    client,
    close: async () => {
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
