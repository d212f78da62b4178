/**
 * The agent's log server: a small HTTPS server that streams a task attempt's captured output to
 * the API (which relays it to `omega logs`). Its `host:port` goes into the machine's alive record
 * (`logAddress`).
 *
 * ```
 *   GET /logs/<job id>/<index>/<attempt>/<stdout|stderr>   → 200, the log as it is now: the
 *                                                            rotated <stream>.log.1 (if any),
 *                                                            then <stream>.log; header
 *                                                            x-omega-log-truncated: true when
 *                                                            the oldest bytes were dropped
 *       x-omega-log-follow: true                           → then what the task writes, until
 *                                                            its attempt ended (log-follow.ts);
 *                                                            trailer x-omega-log-truncated: true
 *                                                            when bytes were dropped meanwhile
 *       authorization: Bearer <log grant>                  → 401 no grant, or not a valid one
 *                                                          → 403 a client other than omega-api,
 *                                                                or a grant for another log
 *                                                          → 404 no such log
 *                                                          → 400 anything malformed
 *                                                          → 405 any method but GET / HEAD
 * ```
 *
 * Who may read (with `tls`): only a client whose TLS certificate the cell's CA signed (else no
 * handshake) and whose CN is `omega-api`, presenting a log grant (cell-state's log-grant.ts)
 * that the API minted for exactly this log on this machine, signed with the key of that very
 * certificate and not expired. The agent never trusts a caller by its address. Without `tls`
 * (`--insecure`) it is plain HTTP and anyone who reaches the port reads every task's output:
 * it says so loudly at start.
 *
 * Safety: the request path is never normalised or decoded and never joined into a file path.
 * It must be exactly four segments after `/logs/`: a job id that passes cell-state's `checkId`
 * (so never `..`, never a `/`, never a `%`), two plain decimal integers and one of two stream
 * names; the file path comes from the agent's own `logPathFor`, is checked to resolve inside the
 * data directory (symlinks included), and is opened without following a final symlink.
 */
import { constants as fsConstants } from 'node:fs';
import { open, readFile, realpath, type FileHandle } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { checkId, checkLogGrant, LOG_GRANT_ISSUER_CN, type TlsIdentity } from '@omega/cell-state';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { followLog } from './log-follow.js';
import { TASK_FILES } from './task-files.js';

export type LogStreamName = 'stdout' | 'stderr';

/**
 * The response header that says the log lost its oldest bytes to the agent's log cap
 * (`true`/`false`). Read from `truncated.json` beside the log (written by the supervisor).
 */
export const LOG_TRUNCATED_HEADER = 'x-omega-log-truncated';
/** The request header (`true`) that asks to follow the log until the attempt ended. */
export const LOG_FOLLOW_HEADER = 'x-omega-log-follow';

export interface LogServerOptions {
  /** The agent's data directory: every file served must lie inside it. */
  readonly dataDir: string;
  /** Address to listen on; the agent uses one the API can reach. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /**
   * Where the agent keeps a task attempt's stream, or undefined when it has none. Called only
   * with checked arguments (a valid job id, non-negative integers, a stream name).
   */
  readonly logPathFor: (jobId: string, index: number, attempt: number, stream: LogStreamName) => string | undefined;
  readonly logger?: Logger;
  /** HTTPS with client certificates and log grants (see the header); absent: plain HTTP (`--insecure`). */
  readonly tls?: LogServerTls;
}

export interface LogServerTls {
  /** The agent's identity: its certificate serves, the CA verifies clients. */
  readonly identity: TlsIdentity;
  /** The machine whose logs this server serves: a grant must name it. */
  readonly machineId: string;
  /** The client certificate CN accepted (default `omega-api`). */
  readonly clientCommonName?: string;
  /** The clock grants expire by (default `Date.now`). */
  readonly now?: () => number;
}

export interface LogServer {
  /** `host:port` as listened on (with the chosen port): what goes into `logAddress`. */
  readonly address: string;
  /** Stops accepting requests and ends open transfers. Idempotent. */
  close(): Promise<void>;
}

/** A parsed, checked log request. */
export interface LogRequest {
  readonly jobId: string;
  readonly index: number;
  readonly attempt: number;
  readonly stream: LogStreamName;
}

const INTEGER = /^(0|[1-9]\d{0,8})$/;

/**
 * Parses a raw request target (`/logs/<job>/<index>/<attempt>/<stream>`, no query) into a
 * {@link LogRequest}, or returns the reason it is refused.
 */
export function parseLogPath(target: string): LogRequest | { readonly refused: string } {
  if (target.includes('?') || target.includes('#')) return { refused: 'no query or fragment allowed' };
  const parts = target.split('/');
  if (parts.length !== 6 || parts[0] !== '' || parts[1] !== 'logs') return { refused: 'path must be /logs/<job id>/<index>/<attempt>/<stdout|stderr>' };
  const [, , jobId = '', index = '', attempt = '', stream = ''] = parts;
  try {
    checkId('job id', jobId);
  } catch (error) {
    return { refused: (error as Error).message };
  }
  if (!INTEGER.test(index)) return { refused: 'index must be a non-negative integer' };
  if (!INTEGER.test(attempt)) return { refused: 'attempt must be a non-negative integer' };
  if (stream !== 'stdout' && stream !== 'stderr') return { refused: 'stream must be stdout or stderr' };
  return { jobId, index: Number(index), attempt: Number(attempt), stream };
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
}

function reply(response: ServerResponse, code: number, text: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  response.end(`${text}\n`);
}

/** The common name of a certificate subject (`CN=omega-api`), or undefined. */
function commonName(subject: string): string | undefined {
  return /^CN=(.*)$/m.exec(subject)?.[1]?.trim();
}

/**
 * With TLS: who the client is (its certificate's CN must be the API's) and whether its grant
 * opens exactly `parsed`. Replies and returns false when not. The TLS layer has already refused
 * clients without a certificate signed by the cell's CA.
 */
function admitted(tls: LogServerTls, log: Logger, request: IncomingMessage, response: ServerResponse, parsed: LogRequest): boolean {
  const peer = (request.socket as TLSSocket).getPeerX509Certificate?.();
  const wanted = tls.clientCommonName ?? LOG_GRANT_ISSUER_CN;
  if (peer === undefined || !(request.socket as TLSSocket).authorized) {
    reply(response, 401, 'a client certificate signed by the cell CA is required');
    return false;
  }
  const cn = commonName(peer.subject);
  if (cn !== wanted) {
    log.warn({ client: cn ?? '', jobId: parsed.jobId }, 'log request from a client that is not the API refused');
    reply(response, 403, `only ${wanted} may read logs`);
    return false;
  }
  const header = request.headers.authorization ?? '';
  const grant = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : undefined;
  const refusal = checkLogGrant(grant, peer.publicKey, { ...parsed, machineId: tls.machineId }, (tls.now ?? Date.now)());
  if (refusal !== undefined) {
    log.warn({ refusal: refusal.reason, jobId: parsed.jobId, index: parsed.index, attempt: parsed.attempt }, 'log request with no valid grant refused');
    reply(response, refusal.kind === 'forbidden' ? 403 : 401, refusal.reason);
    return false;
  }
  return true;
}

async function serve(options: LogServerOptions, log: Logger, request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    reply(response, 405, 'only GET and HEAD');
    return;
  }
  const parsed = parseLogPath(request.url ?? '');
  if ('refused' in parsed) {
    reply(response, 400, parsed.refused);
    return;
  }
  if (options.tls !== undefined && !admitted(options.tls, log, request, response, parsed)) return;
  const path = options.logPathFor(parsed.jobId, parsed.index, parsed.attempt, parsed.stream);
  if (path === undefined) {
    reply(response, 404, 'no such log');
    return;
  }
  // Defence in depth: whatever logPathFor returned must stay inside the data directory, also
  // after resolving symlinks on the way.
  const root = await realpath(options.dataDir).catch(() => resolve(options.dataDir));
  let real: string;
  try {
    real = await realpath(resolve(path));
  } catch {
    reply(response, 404, 'no such log');
    return;
  }
  if (!isInside(root, real)) {
    log.warn({ jobId: parsed.jobId, index: parsed.index, attempt: parsed.attempt }, 'log path outside the data directory refused');
    reply(response, 404, 'no such log');
    return;
  }
  const current = await openRegular(real);
  if (current === undefined) {
    reply(response, 404, 'no such log');
    return;
  }
  // The rotated file is the older part: served first. Same checks as the current one.
  const rotatedPath = await realpath(`${resolve(path)}.1`).catch(() => undefined);
  const rotated = rotatedPath !== undefined && isInside(root, rotatedPath) ? await openRegular(rotatedPath) : undefined;
  try {
    const truncated = await truncatedFlag(dirname(real), parsed.stream);
    const follow = request.headers[LOG_FOLLOW_HEADER] === 'true' && request.method === 'GET';
    response.writeHead(200, {
      'content-type': 'application/octet-stream',
      'cache-control': 'no-store',
      [LOG_TRUNCATED_HEADER]: String(truncated),
      ...(follow ? { trailer: LOG_TRUNCATED_HEADER } : {}),
    });
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    // The files may still grow (a running task): send what each holds now, up to its current size.
    for (const file of [rotated, current]) {
      if (file === undefined || file.size === 0) continue;
      await pipeline(file.handle.createReadStream({ start: 0, end: file.size - 1, autoClose: false }), response, { end: false });
    }
    if (follow) {
      // The client went away, or the server closed (it destroys every connection).
      const gone = new AbortController();
      response.once('close', () => gone.abort());
      const followed = await followLog({ handle: current.handle, position: current.size }, {
        path: real,
        taskDir: dirname(real),
        write: (bytes) => writeOut(response, bytes),
        signal: gone.signal,
      });
      response.addTrailers({ [LOG_TRUNCATED_HEADER]: String(followed.gap || (await truncatedFlag(dirname(real), parsed.stream))) });
    }
    response.end();
  } finally {
    await current.handle.close().catch(() => undefined);
    await rotated?.handle.close();
  }
}

/** Writes to the response, waiting for it to drain when its buffer is full. */
function writeOut(response: ServerResponse, bytes: Buffer): Promise<void> {
  if (response.destroyed) return Promise.resolve();
  if (response.write(bytes)) return Promise.resolve();
  return new Promise((resolveWrite) => {
    const done = (): void => {
      response.off('drain', done);
      response.off('close', done);
      resolveWrite();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

/** A regular file opened without following a final symlink, with its size now; undefined otherwise. */
async function openRegular(path: string): Promise<{ handle: FileHandle; size: number } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const stat = await handle.stat();
    if (stat.isFile()) return { handle, size: stat.size };
  } catch {
    // Treated as missing.
  }
  await handle.close();
  return undefined;
}

/** Whether the supervisor recorded that `stream` lost bytes (`truncated.json` in the task dir). */
async function truncatedFlag(dir: string, stream: LogStreamName): Promise<boolean> {
  try {
    const record = JSON.parse(await readFile(join(dir, TASK_FILES.truncated), 'utf8')) as Record<string, unknown>;
    return record[stream] === true;
  } catch {
    return false;
  }
}

/** Starts the log server; resolves once it listens. */
export async function startLogServer(options: LogServerOptions): Promise<LogServer> {
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'log-server' });
  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    serve(options, log, request, response).catch((error: unknown) => {
      // The client went away mid-transfer, or the file vanished: nothing to tell anyone but the log.
      log.debug({ err: error }, 'log request ended early');
      if (!response.writableEnded) reply(response, 500, 'could not read the log');
    });
  };
  const tls = options.tls;
  const server: Server =
    tls === undefined
      ? createServer(handle)
      : createTlsServer(
          {
            key: tls.identity.key,
            cert: tls.identity.cert,
            ca: tls.identity.ca,
            // Clients without a certificate of the cell's CA never get past the handshake.
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
          },
          handle,
        );
  // A failed handshake (no certificate, another CA, plaintext) is the client's problem: counted in the log at debug.
  server.on('tlsClientError', (error: Error) => log.debug({ err: error }, 'log client TLS handshake refused'));
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const address = `${host}:${port}`;
  if (tls === undefined) {
    log.warn({ address }, 'LOG SERVER WITHOUT TLS (--insecure): plain HTTP, no credential asked; anyone who reaches this address can read the output of every task on this machine');
  } else {
    log.info({ address, tls: true }, 'log server listening');
  }
  let closing: Promise<void> | undefined;
  return {
    address,
    close: () =>
      (closing ??= new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      })),
  };
}
