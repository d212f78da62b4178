/**
 * Authentication of one call: the `authorization: Bearer omg1.<name>.<secret>` metadata → the
 * {@link Caller}, or UNAUTHENTICATED saying what was wrong.
 *
 * ```
 *   metadata ─► one "Bearer <token>" value? ─► parseToken ─► tokens/<name> from etcd ─► hash matches? ─► not expired? ─► Caller
 *                 no: UNAUTHENTICATED            malformed     absent (never, revoked)   no                expired
 * ```
 *
 * The token record is read from etcd on every call, within the call's store budget (a store
 * that does not answer is UNAVAILABLE, as for any call, never a silent pass): a revocation or an
 * expiry holds at once on every API server, with no cache to go stale. The secret's hash is
 * compared in constant time. No message and no log line holds a token: a malformed one is
 * described, never quoted; a refused one is named by its token name only.
 *
 * With mode `none` (`omega-api --insecure`) no metadata is read and every caller is admin.
 */
import { status, type Metadata } from '@grpc/grpc-js';
import { getToken, KvError, parseToken, tokenExpired, tokenMatches, type TokenRecord } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { CellReader } from '../cell-reader.js';
import { StoreTimeoutError } from '../deadline.js';
import { ApiError } from '../errors.js';
import type { Caller } from './policy.js';

/** `tokens`: every call needs a valid bearer token. `none`: nothing is asked, every caller is admin (`--insecure`). */
export type AuthMode = 'tokens' | 'none';

/** The caller of every call on a server without authentication. */
export const INSECURE_CALLER: Caller = Object.freeze({ name: 'insecure', role: 'admin', namespaces: Object.freeze(['*']), expiresAtMs: 0, createdAtMs: 0, via: 'none' });

/** How a client sends its token. */
export const AUTHORIZATION_METADATA = 'authorization';

/** The call's credential was missing, malformed, unknown, revoked or expired. Not retryable with the same token. */
export class UnauthenticatedError extends ApiError {
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(status.UNAUTHENTICATED, message, options);
    this.name = 'UnauthenticatedError';
  }
}

/** Authenticates one call from its metadata. */
export type Authenticate = (metadata: Metadata) => Promise<Caller>;

export interface TokenAuthOptions {
  readonly mode: AuthMode;
  /** Reads the token records (the cell's store, within the call's budget). */
  readonly reader: CellReader;
  readonly logger: Logger;
  /** For tests: the clock expiries are judged by. */
  readonly now?: () => number;
}

/** The caller a token record describes. */
export function tokenCaller(record: TokenRecord): Caller {
  return { name: record.name, role: record.role, namespaces: record.namespaces, expiresAtMs: record.expiresAtMs, createdAtMs: record.createdAtMs, via: 'token' };
}

const HOW = `send the metadata "${AUTHORIZATION_METADATA}: Bearer <token>" (a token from omega token create)`;

/** The bearer token text of the metadata, or the problem with it. */
function bearerText(metadata: Metadata): string {
  const values = metadata.get(AUTHORIZATION_METADATA);
  if (values.length === 0) throw new UnauthenticatedError(`missing credentials: ${HOW}`);
  if (values.length > 1) throw new UnauthenticatedError(`more than one ${AUTHORIZATION_METADATA} metadata value: ${HOW}`);
  const value = values[0];
  const text = typeof value === 'string' ? value : '';
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(text);
  if (match === null) throw new UnauthenticatedError(`malformed ${AUTHORIZATION_METADATA} metadata: expected "Bearer <token>"`);
  return match[1] as string;
}

/** The authenticator of a server. */
export function tokenAuthenticator(options: TokenAuthOptions): Authenticate {
  const { mode, reader, logger } = options;
  const now = options.now ?? Date.now;
  if (mode === 'none') return () => Promise.resolve(INSECURE_CALLER);

  return async (metadata) => {
    const parsed = parseToken(bearerText(metadata));
    if ('problem' in parsed) throw new UnauthenticatedError(`malformed bearer token: ${parsed.problem}`);
    let record: TokenRecord | undefined;
    try {
      record = await reader.store(reader.deadline(), "reading the caller's token", () => getToken(reader.cell.kv, reader.cell.keys, parsed.name));
    } catch (error) {
      if (error instanceof StoreTimeoutError || error instanceof KvError) throw error;
      // A record that does not decode grants nothing; say so once per call in the log (name only).
      logger.warn({ err: error, token: parsed.name }, 'token record unreadable; refusing the token');
      throw new UnauthenticatedError(`token ${JSON.stringify(parsed.name)} is not valid (its record is unreadable)`, { cause: error });
    }
    // One message for "no such token" and "not its secret": a guess learns nothing about which.
    if (record === undefined || !tokenMatches(record, parsed.secret)) {
      throw new UnauthenticatedError(`token ${JSON.stringify(parsed.name)} is not valid (unknown, revoked, or not its secret)`);
    }
    if (tokenExpired(record, now())) throw new UnauthenticatedError(`token ${JSON.stringify(parsed.name)} expired at ${new Date(record.expiresAtMs).toISOString()}`);
    return tokenCaller(record);
  };
}
