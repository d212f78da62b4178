/**
 * The web UI's HTTP plumbing: headers every answer carries, JSON answers, errors as HTTP
 * statuses (translated from the API's own error translation, errors.ts, so a UI request fails
 * exactly as the gRPC call would, with the same message), and the static assets, read once at
 * start from `packages/api/ui/` (served by us: the machines may have no internet).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toServiceError } from '../errors.js';

/**
 * Every answer: the page may load only its own scripts, styles and connections (no inline
 * script, no other origin), may not be framed (clickjacking), and leaks no address.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The HTTP status of a gRPC status code. */
export function httpStatusOf(code: number | undefined): number {
  switch (code) {
    case status.INVALID_ARGUMENT:
      return 400;
    case status.UNAUTHENTICATED:
      return 401;
    case status.PERMISSION_DENIED:
      return 403;
    case status.NOT_FOUND:
      return 404;
    case status.FAILED_PRECONDITION:
    case status.ALREADY_EXISTS:
    case status.ABORTED:
      return 409;
    case status.RESOURCE_EXHAUSTED:
      return 429;
    case status.UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

export function sendJson(response: ServerResponse, statusCode: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(statusCode, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** A failed request: `{"error": <message>, "code": <grpc status name>}` with its HTTP status. */
export function sendError(response: ServerResponse, error: unknown, logger: Logger, route: string): void {
  const { serviceError, unexpected } = toServiceError(error);
  if (unexpected) logger.error({ err: error, route }, 'web UI request failed unexpectedly');
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const code = serviceError.code ?? status.INTERNAL;
  sendJson(response, httpStatusOf(code), { error: serviceError.details ?? 'internal error', code: status[code] });
}

/** A request's body, at most `maxBytes`; rejects past it. */
export async function readBody(request: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new Error(`the request body is over ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const ASSET_TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'login.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/** The UI's files: `packages/api/ui/`, the same two levels up from `src/ui/` and `dist/ui/`. */
export const ASSET_DIR = new URL('../../ui/', import.meta.url);

/** Reads every asset; throws naming the file when one is missing (a broken install). */
export function loadAssets(dir: URL = ASSET_DIR): ReadonlyMap<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSET_TYPES)) {
    try {
      assets.set(name, { type, body: readFileSync(new URL(name, dir)) });
    } catch (error) {
      throw new Error(`the web UI's file ${new URL(name, dir).pathname} cannot be read: ${(error as Error).message}`, { cause: error });
    }
  }
  return assets;
}

export function sendAsset(response: ServerResponse, asset: Asset, head = false): void {
  // Pages are cheap and change with a build: no caching that could show a stale UI.
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'cache-control': 'no-cache', 'content-length': asset.body.length });
  response.end(head ? undefined : asset.body);
}
