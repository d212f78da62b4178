/**
 * The web UI of the cell, served by the API server process on its own address
 * (`omega-api --ui-listen HOST:PORT`): pages, their JSON, live updates (server-sent events)
 * and task logs, over HTTPS with the API's own certificate, or plain HTTP with `--insecure`.
 *
 * ```
 *   browser ──GET /, /jobs/<id>──────────► page (static, packages/api/ui/)  ── no session: 303 /login
 *           ──GET /api/overview, /api/jobs/<id>, /api/stats-history──► JSON (CellReader.fresh + view functions)
 *           ──GET /api/events[?job=<id>]─► server-sent events (mirror changes, coalesced: ui-live.ts)
 *           ──GET /api/logs/<id>/<index>?stream=&attempt=&follow=1──► text (task-logs.ts, the agent's log server)
 *           ──POST /login, /logout───────► the session cookie (ui-session.ts)
 * ```
 *
 * Authentication and authorization are the API's: every request (page, JSON, stream, log)
 * authenticates the cookie's token with the gRPC server's authenticator (an etcd read, no
 * cache) and asks auth/policy.ts, so the UI shows what the same token would see through the
 * API. The UI is read-only for every role: no request changes the cell (changes go through the
 * CLI or the API), and the only POSTs (login, logout) change only the browser's cookie; they
 * must be JSON from the UI's own origin (CSRF). Logs are read with the API's TLS identity and
 * a log grant, exactly as GetTaskLogs.
 *
 * The schedulers' stats are sampled every `sampleMs` from the mirror into a bounded ring
 * buffer (stats-history.ts) for the chart.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { CellMirror, TlsIdentity } from '@omega/cell-state';
import type { Logger } from 'pino';
import { UnauthenticatedError, type Authenticate } from '../auth/token-auth.js';
import { authorize, type Caller } from '../auth/policy.js';
import { CellReader, requestJobId } from '../cell-reader.js';
import { invalidArgument } from '../errors.js';
import { changeConcernsJob } from '../job-view.js';
import { locateTaskLog, streamTaskLog } from '../task-logs.js';
import { StatsHistory } from './stats-history.js';
import { loadAssets, readBody, sendAsset, sendError, sendJson, SECURITY_HEADERS, type Asset } from './ui-http.js';
import { serveLiveStream } from './ui-live.js';
import { clearedSessionCookie, sessionCookie, sessionToken, tokenTextProblem, uiAuthenticate } from './ui-session.js';
import { jobPageView, overviewView, sessionView, versionSummaries } from './ui-views.js';

export interface UiServerOptions {
  /** `host:port`; port 0 picks a free one. */
  readonly listen: string;
  readonly reader: CellReader;
  /** The gRPC server's authenticator (the same tokens, the same checks). */
  readonly authenticate: Authenticate;
  /** HTTPS with this identity (the API's certificate); absent: plain HTTP (`--insecure`). */
  readonly tls?: TlsIdentity;
  readonly logger: Logger;
  /** How often the schedulers' stats are sampled for the chart; default 2 s. */
  readonly sampleMs?: number;
  /** Points kept per scheduler; default 300 (10 minutes at 2 s). */
  readonly historyPoints?: number;
  /** Least time between two events of one stream; default 250 ms. */
  readonly coalesceMs?: number;
  /** How often an idle stream (events, a followed log) checks its token again; default 5 s. */
  readonly recheckMs?: number;
}

export interface UiServer {
  /** `host:port` listened on. */
  readonly address: string;
  readonly port: number;
  /** `https://host:port/` (or `http://` with `--insecure`). */
  readonly url: string;
  /** Ends open streams and stops listening. Idempotent. */
  close(): Promise<void>;
}

const LOGIN_BODY_BYTES = 4096;

function splitListen(listen: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (match === null || !Number.isInteger(port) || port > 65535) throw new Error(`ui listen address ${JSON.stringify(listen)} is not host:port`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** Starts the UI server; rejects when the address cannot be bound. */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const logger = options.logger.child({ component: 'ui' });
  const { reader } = options;
  const mirror: CellMirror = reader.mirror;
  const secure = options.tls !== undefined;
  const assets = loadAssets();
  const asset = (name: string): Asset => assets.get(name) as Asset;
  const coalesceMs = options.coalesceMs ?? 250;
  const recheckMs = options.recheckMs ?? 5_000;
  const history = new StatsHistory(options.historyPoints);
  const historyListeners = new Set<(event: string, data: unknown) => void>();
  const closers = new Set<() => void>();
  const cellName = reader.cell.keys.cell;

  const sample = (): void => {
    let stats;
    try {
      stats = [...mirror.snapshot().schedulerStats()];
    } catch {
      return;
    }
    if (!history.record(stats) || historyListeners.size === 0) return;
    const series = history.all();
    for (const listener of historyListeners) listener('history', series);
  };
  const sampler = setInterval(sample, options.sampleMs ?? 2_000);
  sampler.unref();

  const callerOf = (request: IncomingMessage): Promise<Caller> => uiAuthenticate(options.authenticate, sessionToken(request.headers.cookie));

  /** CSRF: a state-changing request must be JSON (a cross-site form cannot send it without a preflight) from our own origin. */
  const sameOrigin = (request: IncomingMessage): boolean => {
    const type = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) return false;
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
    const origin = request.headers.origin;
    return origin === undefined || origin === `${secure ? 'https' : 'http'}://${request.headers.host ?? ''}`;
  };

  async function login(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!sameOrigin(request)) {
      sendJson(response, 403, { error: 'login must be a JSON POST from the UI itself', code: 'PERMISSION_DENIED' });
      return;
    }
    let token: unknown;
    try {
      token = (JSON.parse(await readBody(request, LOGIN_BODY_BYTES)) as { token?: unknown }).token;
    } catch {
      sendJson(response, 400, { error: 'the body must be JSON: {"token": "omg1.<name>.<secret>"}', code: 'INVALID_ARGUMENT' });
      return;
    }
    const problem = tokenTextProblem(token);
    if (problem !== undefined) {
      sendJson(response, 400, { error: problem, code: 'INVALID_ARGUMENT' });
      return;
    }
    const caller = await uiAuthenticate(options.authenticate, token as string);
    logger.info({ token: caller.name, role: caller.role }, 'web UI login');
    sendJson(response, 200, sessionView(caller), { 'set-cookie': sessionCookie(token as string, secure) });
  }

  async function logs(url: URL, parts: string[], request: IncomingMessage, response: ServerResponse): Promise<void> {
    const caller = await callerOf(request);
    const id = requestJobId('job_id', decodeURIComponent(parts[0] ?? ''));
    const index = Number(parts[1]);
    if (!/^\d+$/.test(parts[1] ?? '')) throw invalidArgument('index', 'must be a task index (0, 1, ...)');
    const streamName = url.searchParams.get('stream') ?? 'stdout';
    if (streamName !== 'stdout' && streamName !== 'stderr') throw invalidArgument('stream', 'must be stdout or stderr');
    const attemptText = url.searchParams.get('attempt') ?? '0';
    if (!/^\d+$/.test(attemptText)) throw invalidArgument('attempt', 'must be 0 (the latest) or an attempt number');
    const follow = url.searchParams.get('follow') === '1';
    const snapshot = await reader.fresh();
    // Decided before anything about the task is told, as GetTaskLogs.
    const job = snapshot.job(id);
    if (job !== undefined) authorize(caller, 'read-jobs', job.spec.namespace);
    const location = locateTaskLog(snapshot, { job_id: id, index, attempt: Number(attemptText), stream: streamName === 'stdout' ? 'STREAM_STDOUT' : 'STREAM_STDERR' }, { https: options.tls !== undefined });
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    closers.add(abort);
    response.on('close', abort);
    // A followed log may stay open for long: the token is checked again while it does.
    const recheck = setInterval(() => {
      // Only a refused token ends it; a store that does not answer is no verdict on the token.
      callerOf(request).catch((error: unknown) => {
        if (error instanceof UnauthenticatedError) abort();
      });
    }, recheckMs);
    let truncated = false;
    try {
      const chunks = streamTaskLog(location, { signal: controller.signal, follow, onTruncated: (t) => void (truncated ||= t), ...(options.tls === undefined ? {} : { tls: options.tls }) });
      let started = false;
      for await (const chunk of chunks) {
        if (!started) {
          started = true;
          response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-omega-log-truncated': String(truncated) });
        }
        if (controller.signal.aborted) break;
        response.write(chunk);
      }
      if (!started && !response.headersSent) response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      response.end();
    } finally {
      clearInterval(recheck);
      closers.delete(abort);
    }
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // Plain HTTP (--insecure) asks for no login: a page of another site whose name was made to
    // resolve to this address (DNS rebinding) could read the cell. Only addresses and localhost.
    if (!secure && !plainHostAllowed(request.headers.host)) {
      return sendJson(response, 421, { error: 'over plain HTTP the web UI answers only requests to an IP address or localhost (Host header)', code: 'PERMISSION_DENIED' });
    }
    const url = new URL(request.url ?? '/', 'http://ui.invalid');
    const path = url.pathname;
    const method = request.method ?? 'GET';
    if (method === 'POST') {
      if (path === '/login') return login(request, response);
      if (path === '/logout') {
        if (!sameOrigin(request)) return sendJson(response, 403, { error: 'logout must be a JSON POST from the UI itself', code: 'PERMISSION_DENIED' });
        return sendJson(response, 200, {}, { 'set-cookie': clearedSessionCookie(secure) });
      }
      return sendJson(response, 404, { error: `no ${path}`, code: 'NOT_FOUND' });
    }
    if (method !== 'GET' && method !== 'HEAD') {
      return sendJson(response, 405, { error: `${method} is not served: the UI only reads`, code: 'UNIMPLEMENTED' }, { allow: 'GET, HEAD, POST' });
    }
    const head = method === 'HEAD';
    const file = /^\/(app\.js|chart\.js|login\.js|style\.css)$/.exec(path)?.[1];
    if (file !== undefined) return sendAsset(response, asset(file), head);
    if (path === '/login') return sendAsset(response, asset('index.html'), head);
    if (path === '/' || /^\/jobs\/[^/]+$/.test(path)) {
      try {
        await callerOf(request);
      } catch (error) {
        if (!(error instanceof UnauthenticatedError)) throw error;
        response.writeHead(303, { ...SECURITY_HEADERS, location: `/login?next=${encodeURIComponent(path)}`, 'cache-control': 'no-store' });
        response.end();
        return;
      }
      return sendAsset(response, asset('index.html'), head);
    }
    if (!path.startsWith('/api/')) return sendJson(response, 404, { error: `no page ${path}`, code: 'NOT_FOUND' });

    const caller = await callerOf(request);
    const parts = path.slice('/api/'.length).split('/');
    switch (parts[0]) {
      case 'session':
        return sendJson(response, 200, sessionView(caller));
      case 'overview':
        return sendJson(response, 200, overviewView(await reader.fresh(), cellName, caller));
      case 'stats-history':
        return sendJson(response, 200, { sampleMs: options.sampleMs ?? 2_000, schedulers: history.all() });
      case 'jobs': {
        const id = requestJobId('job_id', decodeURIComponent(parts[1] ?? ''));
        const page = jobPageView(await reader.fresh(), id, caller);
        const deadline = reader.deadline();
        const versions = await reader.store(deadline, 'reading the job history', () => reader.cell.jobHistory(id));
        return sendJson(response, 200, { ...page, versions: versionSummaries(versions) });
      }
      case 'events': {
        const jobParam = url.searchParams.get('job');
        const first = await reader.fresh();
        const reauthenticate = (): Promise<Caller> => callerOf(request);
        if (jobParam !== null) {
          const id = requestJobId('job', jobParam);
          // Refused before the stream opens (NOT_FOUND, PERMISSION_DENIED as GetJob).
          jobPageView(first, id, caller);
          const stop = serveLiveStream({ response, mirror, first, view: (s) => jobPageView(s, id, caller), concerns: (c) => changeConcernsJob(c, id), reauthenticate, coalesceMs, recheckMs, logger });
          closers.add(stop);
          response.on('close', () => closers.delete(stop));
          return;
        }
        const stop = serveLiveStream({
          response,
          mirror,
          first,
          view: (s) => overviewView(s, cellName, caller),
          reauthenticate,
          extra: (send) => {
            historyListeners.add(send);
            return () => historyListeners.delete(send);
          },
          coalesceMs,
          recheckMs,
          logger,
        });
        closers.add(stop);
        response.on('close', () => closers.delete(stop));
        return;
      }
      case 'logs':
        return logs(url, parts.slice(1), request, response);
      default:
        return sendJson(response, 404, { error: `no ${path}`, code: 'NOT_FOUND' });
    }
  }

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    route(request, response).catch((error: unknown) => sendError(response, error, logger, request.url?.split('?')[0] ?? ''));
  };
  const server: Server = options.tls === undefined ? createHttpServer(handler) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key, ca: options.tls.ca, minVersion: 'TLSv1.2' }, handler);
  // Event streams and followed logs stay open: no request timeout for them; headers still must come in time.
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;

  const { host, port: askedPort } = splitListen(options.listen);
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(new Error(`could not listen on ${options.listen} (web UI): ${(error as NodeJS.ErrnoException).code ?? error.message}`, { cause: error }));
    server.once('error', onError);
    server.listen(askedPort, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const address = `${shownHost}:${port}`;
  const url = `${secure ? 'https' : 'http'}://${address}/`;
  logger.info({ address, url, tls: secure }, 'web UI listening');
  if (!secure) logger.warn({ address }, 'web UI served over PLAIN HTTP without any login: anyone who reaches this address sees the whole cell (insecure)');
  sample();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      clearInterval(sampler);
      for (const stop of [...closers]) stop();
      historyListeners.clear();
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return { address, port, url, close };
}

/** A Host header naming an IP address or localhost (with or without a port). */
export function plainHostAllowed(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = /^(\[[0-9A-Fa-f:.]+\]|[^:]+)(:\d{1,5})?$/.exec(host)?.[1];
  if (name === undefined) return false;
  return name.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.toLowerCase() === 'localhost';
}
