/**
 * The API server: JobService and CellService on one gRPC port, over one cell.
 *
 * ```
 *   gRPC clients ──► ApiServer ──► Cell (writes: jobs, kill)      ──► etcd
 *                        └───────► CellMirror (reads, watches)   ◄── watch
 * ```
 *
 * Owns its mirror (started by {@link startApiServer}, stopped by `close()`), not the Cell or its
 * store: the caller opened those and closes them after the server. Holds no other state: any
 * number of servers may serve one cell.
 *
 * Survives the store: it listens at once, whether or not etcd answers, lists its mirror in the
 * background until etcd does ({@link MirrorLink}), and answers UNAVAILABLE within the store
 * timeout while etcd is unreachable ({@link CellReader}). Nothing needs a restart afterwards.
 */
import { ServerCredentials } from '@grpc/grpc-js';
import { exposeMirrorMetrics, type Cell, type CellMirror, type JobId, type TlsIdentity } from '@omega/cell-state';
import type { Metrics } from '@omega/metrics/seam';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { accessServiceImplementation } from './access-service.js';
import { namespaceServiceImplementation } from './namespace-service.js';
import { DEFAULT_RECHECK_MS, GuardedServer } from './auth/guarded-server.js';
import { tokenAuthenticator, type AuthMode } from './auth/token-auth.js';
import { CellReader } from './cell-reader.js';
import { MirrorLink, type MirrorLinkOptions } from './mirror-link.js';
import { cellServiceImplementation } from './cell-service.js';
import { API_LIMITS } from './job-spec-wire.js';
import { jobServiceImplementation, type StreamCloser } from './job-service.js';
import { loadApiDefinition } from './proto.js';
import { RpcMetrics } from './rpc-metrics.js';
import { startUiServer, type UiServer, type UiServerOptions } from './ui/ui-server.js';

export interface ApiServerOptions {
  readonly cell: Cell;
  /** `host:port` to listen on; port 0 picks a free one. Default `127.0.0.1:7070`. */
  readonly listen?: string;
  readonly logger?: Logger;
  /**
   * Budget of one call's store steps (etcd round trips, the mirror catching up); past it the
   * call answers UNAVAILABLE. Default 5 s.
   */
  readonly storeTimeoutMs?: number;
  /** How often an idle WatchJob checks that the store answers, and an open stream that its token is still valid; default `storeTimeoutMs`. */
  readonly watchProbeMs?: number;
  /** Backoff of the background mirror start (default 200 ms doubling to 5 s). */
  readonly mirrorRetry?: MirrorLinkOptions;
  /** How long `close()` lets calls in flight finish before cutting them; default 5 s. */
  readonly shutdownGraceMs?: number;
  /** For tests: a different job id generator. */
  readonly newJobId?: (name: string) => JobId;
  /**
   * `tokens` (default): every call needs a valid bearer token (auth/token-auth.ts) and is
   * authorized by its role and namespaces (auth/policy.ts). `none`: no token is asked and every
   * caller is admin: only for `--insecure`.
   */
  readonly auth?: AuthMode;
  /** For tests: the clock token expiries are judged by. */
  readonly now?: () => number;
  /**
   * Serve TLS with this identity (its certificate, verified by clients against the cell's CA).
   * Client certificates are accepted but not required: callers authenticate with tokens.
   * Without it the port is plaintext: only for `--insecure`.
   */
  readonly tls?: TlsIdentity;
  /**
   * Also serve the web UI (ui/ui-server.ts) on `ui.listen`: HTTPS with `tls`, else plain HTTP.
   * Absent (the default): no UI.
   */
  readonly ui?: Pick<UiServerOptions, 'listen' | 'sampleMs' | 'historyPoints' | 'coalesceMs' | 'recheckMs'>;
  /** Where calls and the mirror are counted (rpc-metrics.ts, cell-state's mirror-metrics.ts); default nowhere. */
  readonly metrics?: Metrics;
}

export interface ApiServer {
  /** `host:port` actually listened on (the chosen port when 0 was asked). */
  readonly address: string;
  readonly port: number;
  readonly mirror: CellMirror;
  /** The web UI, when `ui` was given. */
  readonly ui: UiServer | undefined;
  /** Resolves true once the mirror is listed (calls are served), false if not within `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean>;
  /**
   * Stops accepting calls, ends open watches and log streams with UNAVAILABLE (clients retry
   * against another server), waits for calls in flight up to the grace period, then stops the
   * mirror. Idempotent.
   */
  close(): Promise<void>;
}

function splitHostPort(listen: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (match === null || !Number.isInteger(port) || port > 65535) throw new Error(`listen address ${JSON.stringify(listen)} is not host:port`);
  return { host: match[1] as string, port };
}

/**
 * Serves both services at once and lists the mirror in the background (calls wait for it within
 * their deadline). Rejects only if the address cannot be bound; an unreachable etcd is not a
 * reason to fail.
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'api' });
  const listen = options.listen ?? '127.0.0.1:7070';
  const { host } = splitHostPort(listen);
  const definition = loadApiDefinition();

  const mirror = options.cell.mirror({ logger });
  const link = new MirrorLink(mirror, logger, options.mirrorRetry);
  const reader = new CellReader(options.cell, mirror, { link, logger, ...(options.storeTimeoutMs === undefined ? {} : { storeTimeoutMs: options.storeTimeoutMs }) });
  const streams = new Set<StreamCloser>();
  const track = (closer: StreamCloser): (() => void) => {
    streams.add(closer);
    return () => streams.delete(closer);
  };

  const auth = options.auth ?? 'tokens';
  const authenticate = tokenAuthenticator({ mode: auth, reader, logger, ...(options.now === undefined ? {} : { now: options.now }) });
  // Every service added to it is authenticated and role-checked before any handler runs.
  const server = new GuardedServer({
    'grpc.max_receive_message_length': API_LIMITS.maxReceiveMessageBytes,
    // Replies may be larger than requests (a job view lists every task); keep a bound anyway.
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // grpc-js binds with SO_REUSEPORT by default: a second server on a busy port would silently
    // share it (and its clients) with the first. Fail instead.
    'grpc.so_reuseport': 0,
  }, { authenticate, logger, recheckMs: options.watchProbeMs ?? options.storeTimeoutMs ?? DEFAULT_RECHECK_MS, ...(options.metrics === undefined ? {} : { rpcMetrics: new RpcMetrics(options.metrics) }) });
  if (options.metrics !== undefined) exposeMirrorMetrics(options.metrics, mirror, options.cell.kv, options.cell.keys);
  server.addService(definition.jobService, jobServiceImplementation({
      reader,
      logger,
      track,
      ...(options.newJobId === undefined ? {} : { newJobId: options.newJobId }),
      ...(options.watchProbeMs === undefined ? {} : { watchProbeMs: options.watchProbeMs }),
      ...(options.tls === undefined ? {} : { logTls: options.tls }),
    }));
  server.addService(definition.cellService, cellServiceImplementation({ reader, logger, ...(options.now === undefined ? {} : { now: options.now }) }));
  server.addService(definition.accessService, accessServiceImplementation({ reader, logger, ...(options.now === undefined ? {} : { now: options.now }) }));
  server.addService(definition.namespaceService, namespaceServiceImplementation({ reader, logger, ...(options.now === undefined ? {} : { now: options.now }) }));

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const credentials =
        options.tls === undefined
          ? ServerCredentials.createInsecure()
          : ServerCredentials.createSsl(options.tls.ca, [{ cert_chain: options.tls.cert, private_key: options.tls.key }], false);
      server.bindAsync(listen, credentials, (error, bound) => (error === null ? resolve(bound) : reject(error)));
    });
  } catch (error) {
    // grpc-js wraps the socket error in a long sentence (repeated); the socket error says it all.
    const message = (error as Error).message;
    const reason = /listen (E[A-Z]+: [^\]]*)/.exec(message)?.[1] ?? message;
    throw new Error(`could not listen on ${listen}: ${reason}`, { cause: error });
  }
  const address = `${host}:${port}`;
  let ui: UiServer | undefined;
  if (options.ui !== undefined) {
    try {
      ui = await startUiServer({ ...options.ui, reader, authenticate, logger, ...(options.tls === undefined ? {} : { tls: options.tls }), recheckMs: options.ui.recheckMs ?? options.watchProbeMs ?? options.storeTimeoutMs ?? DEFAULT_RECHECK_MS });
    } catch (error) {
      server.forceShutdown();
      throw error;
    }
  }
  logger.info({ address, cell: options.cell.keys.cell, auth }, 'API server listening');
  if (auth === 'none') logger.warn({ address }, 'API server asks for no token: every caller is admin (insecure)');
  link.start();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const closer of [...streams]) closer();
      await ui?.close();
      const grace = options.shutdownGraceMs ?? 5_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ graceMs: grace }, 'calls still in flight after the grace period; cutting them');
          server.forceShutdown();
          resolve();
        }, grace);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await link.stop();
      logger.info({ address }, 'API server stopped');
    })());

  return { address, port, mirror, ui, whenReady: (timeoutMs) => link.whenReady(timeoutMs), close };
}
