/**
 * The web UI's session: the caller's API token, kept by the browser in one cookie and checked
 * against etcd on every request by the API's own authenticator (auth/token-auth.ts), so a
 * revocation or an expiry holds at once, as for a gRPC call.
 *
 * ```
 *   POST /login {"token": "omg1.<name>.<secret>"} ─► authenticate ─► Set-Cookie: omega_session=<token>;
 *                                                                     HttpOnly; SameSite=Strict; Path=/ (; Secure)
 *   every other request: Cookie omega_session ─► authenticate (etcd read) ─► Caller | 401
 * ```
 *
 * The cookie is HttpOnly (page scripts never see it after the login), SameSite=Strict (no
 * other site's page can make the browser send it), Secure over HTTPS. No message or log line
 * holds the token: the authenticator describes a malformed one and names a refused one.
 */
import { Metadata } from '@grpc/grpc-js';
import type { Authenticate } from '../auth/token-auth.js';
import { AUTHORIZATION_METADATA } from '../auth/token-auth.js';
import type { Caller } from '../auth/policy.js';

/** The cookie holding the caller's token. */
export const SESSION_COOKIE = 'omega_session';

/** Largest token text accepted from a cookie or a login (tokens are ~60 characters). */
const MAX_TOKEN_CHARS = 512;

/** The session cookie's token in a `Cookie` header, if any. */
export function sessionToken(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return value === '' || value.length > MAX_TOKEN_CHARS ? undefined : value;
  }
  return undefined;
}

/**
 * The `Set-Cookie` value that keeps `token` for the browser's session (no Max-Age: it ends
 * with the browser; the token's own expiry still holds). Tokens are base64url and dots: no
 * character needs quoting in a cookie.
 */
export function sessionCookie(token: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`;
}

/** The `Set-Cookie` value that removes the session. */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
}

/** Whether a login body's token has the shape of one (the authenticator judges it further). */
export function tokenTextProblem(token: unknown): string | undefined {
  if (typeof token !== 'string' || token === '') return 'token: is required (a token from omega token create)';
  if (token.length > MAX_TOKEN_CHARS) return `token: must be at most ${MAX_TOKEN_CHARS} characters`;
  if (!/^[A-Za-z0-9._-]+$/.test(token)) return "token: must be omg1.<name>.<secret> (letters, digits, '.', '_' and '-')";
  return undefined;
}

/**
 * Authenticates a UI request's token exactly as a gRPC call's bearer token: same parsing, same
 * etcd read, same errors (UnauthenticatedError; UNAVAILABLE when etcd does not answer). A
 * missing token is "missing credentials" unless the server asks for none (`--insecure`).
 */
export function uiAuthenticate(authenticate: Authenticate, token: string | undefined): Promise<Caller> {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set(AUTHORIZATION_METADATA, `Bearer ${token}`);
  return authenticate(metadata);
}
