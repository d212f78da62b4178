/**
 * Bearer tokens of a cell: `/omega-auth/<cell>/tokens/<name>` holds a {@link TokenRecord}, the
 * secret kept only as its SHA-256. Outside the cell prefix, so etcd's role-based access can let
 * API servers read them and keep schedulers and agents (which mirror the cell) away from them.
 *
 * ```
 *   createToken(name, role, namespaces, ttl)
 *     └─ 32 random bytes S; one txn: tokens/<name> absent, every named namespace present?
 *          yes ─► put { name, sha256(S), namespaces, role, expiresAt, createdAt }
 *                 and hand back "omg1.<name>.<base64url S>" (the only time S leaves the call)
 *          no  ─► read them in the same txn:
 *                   tokens/<name> holds sha256(S)   our own put, resent (reply lost)   created
 *                   tokens/<name> holds another     'exists'                           nothing written
 *                   a namespace is missing          InvalidRecordError naming it       nothing written
 *
 *   a call's "Bearer omg1.<name>.<S>" ─► parseBearerToken ─► getToken(name) ─► tokenMatches (constant time)
 * ```
 *
 * Every check reads etcd (no cache), so a revocation or an expiry holds at once on every API
 * server. The callers: the API server (authentication, AccessService) and processes that hold
 * root access to etcd (`omega cell init`, `omega dev`) creating the first admin token.
 *
 * Every write also rewrites the cell's sync marker (`keys.syncMarker`, empty) in its transaction.
 * The API reads from a mirror of the cell prefix brought up to etcd's current revision; a write
 * outside that prefix alone would raise the revision without an event the mirror sees, and the
 * next read would have to write the marker itself first (see the API's CellReader).
 *
 * Nothing here logs, and no message ever contains a secret: a malformed token is described by
 * what is wrong with it, never quoted.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeTokenRecord, encodeTokenRecord, InvalidRecordError, ROLES, type Role, type TokenRecord } from './codec.js';
import type { CellKeys } from './keys.js';
import type { Compare, KvStore, OpResult } from './kv.js';
import { DEFAULT_NAMESPACE } from './types.js';

export { ROLES, type Role, type TokenRecord } from './codec.js';
// The token's text form is pure (no store): clients import it alone through the vocabulary entry.
export { ALL_NAMESPACES, TOKEN_PREFIX, TOKEN_SECRET_BYTES, formatToken, parseToken, type ParsedToken } from './token-syntax.js';
import { ALL_NAMESPACES, TOKEN_SECRET_BYTES, formatToken } from './token-syntax.js';

/** The longest `ttlMs` accepted: 10 years (a longer one is almost certainly a unit mistake). */
export const MAX_TOKEN_TTL_MS = 10 * 365 * 24 * 60 * 60 * 1000;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** What {@link createToken} is asked to store. */
export interface NewToken {
  readonly name: string;
  readonly role: Role;
  /** Each must exist or be `"*"`; at least one unless the role is admin (admin: ignored, every one). */
  readonly namespaces: readonly string[];
  /** 0 or absent: never expires. */
  readonly ttlMs?: number;
}

export type CreateTokenResult =
  /** Stored. `token` is the bearer token; it exists nowhere else, hand it to the caller once. */
  | { readonly outcome: 'created'; readonly record: TokenRecord; readonly token: string }
  /** A token of that name exists already; nothing was written. */
  | { readonly outcome: 'exists'; readonly name: string };

export type RevokeTokenResult = 'revoked' | 'not-found';

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** Whether `secret` is the token's: compares the SHA-256s in constant time. */
export function tokenMatches(record: TokenRecord, secret: Uint8Array): boolean {
  const hash = sha256(secret);
  return record.secretSha256.length === hash.length && timingSafeEqual(record.secretSha256, hash);
}

/** Whether the token has expired at `nowMs` (a token with `expiresAtMs` 0 never does). */
export function tokenExpired(record: TokenRecord, nowMs: number): boolean {
  return record.expiresAtMs !== 0 && nowMs >= record.expiresAtMs;
}

/** Checks a token name; throws {@link InvalidRecordError} naming `field`. */
export function checkTokenName(field: string, name: string): void {
  if (name === '') throw new InvalidRecordError(field, 'is required');
  if (!DNS_LABEL.test(name)) throw new InvalidRecordError(field, `must be a DNS label (1-63 lowercase letters, digits and '-', not starting or ending with '-'), got ${JSON.stringify(name)}`);
}

/** The stored form of a request's namespaces (validated, sorted, unique; `["*"]` for every one). */
function normaliseNamespaces(role: Role, namespaces: readonly string[]): string[] {
  if (role === 'admin') return [ALL_NAMESPACES];
  if (namespaces.length === 0) throw new InvalidRecordError('namespaces', `a ${role} token needs at least one namespace (or "${ALL_NAMESPACES}" for every one)`);
  namespaces.forEach((ns, i) => {
    if (ns !== ALL_NAMESPACES && !DNS_LABEL.test(ns)) throw new InvalidRecordError(`namespaces[${i}]`, `must be a namespace name (a DNS label) or "${ALL_NAMESPACES}", got ${JSON.stringify(ns)}`);
  });
  if (namespaces.includes(ALL_NAMESPACES)) return [ALL_NAMESPACES];
  return [...new Set(namespaces)].sort();
}

/**
 * Stores a new token and returns it with its bearer text, or `'exists'` when the name is taken.
 * Bad input (name, role, namespaces, ttl) throws {@link InvalidRecordError} naming the field,
 * as does a namespace that does not exist; nothing is stored then. One transaction, guarded by
 * the token's absence and every named namespace's presence; safe to resend (see the header).
 */
export async function createToken(kv: KvStore, keys: CellKeys, request: NewToken, options: { readonly nowMs?: number } = {}): Promise<CreateTokenResult> {
  checkTokenName('name', request.name);
  if (!ROLES.includes(request.role)) throw new InvalidRecordError('role', `must be one of ${ROLES.join(', ')}, got ${JSON.stringify(request.role)}`);
  const namespaces = normaliseNamespaces(request.role, request.namespaces);
  const ttlMs = request.ttlMs ?? 0;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_TOKEN_TTL_MS) throw new InvalidRecordError('ttlMs', `must be a whole number of milliseconds from 0 (never expires) to ${MAX_TOKEN_TTL_MS} (10 years), got ${ttlMs}`);
  const nowMs = options.nowMs ?? Date.now();

  const secret = new Uint8Array(randomBytes(TOKEN_SECRET_BYTES));
  const record: TokenRecord = {
    name: request.name,
    secretSha256: sha256(secret),
    namespaces,
    role: request.role,
    expiresAtMs: ttlMs === 0 ? 0 : nowMs + ttlMs,
    createdAtMs: nowMs,
  };
  const key = keys.token(request.name);
  const checked = namespaces.filter((ns) => ns !== ALL_NAMESPACES && ns !== DEFAULT_NAMESPACE);
  const compare: Compare[] = [
    { key, target: 'create', op: '==', value: 0 },
    ...checked.map((ns): Compare => ({ key: keys.namespace(ns), target: 'version', op: '>', value: 0 })),
  ];
  const reply = await kv.txn({
    compare,
    success: [{ type: 'put', key, value: encodeTokenRecord(record) }, { type: 'put', key: keys.syncMarker, value: new Uint8Array() }],
    failure: [{ type: 'range', key }, ...checked.map((ns) => ({ type: 'range' as const, key: keys.namespace(ns) }))],
  });
  if (reply.succeeded) return { outcome: 'created', record, token: formatToken(record.name, secret) };

  const found = (result: OpResult | undefined) => (result?.type === 'range' ? result.kvs[0] : undefined);
  const stored = found(reply.results[0]);
  if (stored !== undefined) {
    // Our own put, applied once and sent again: the stored hash is of the secret made above.
    const existing = decodeTokenRecord(stored.value);
    if (tokenMatches(existing, secret)) return { outcome: 'created', record: existing, token: formatToken(record.name, secret) };
    return { outcome: 'exists', name: request.name };
  }
  const missing = checked.findIndex((_, i) => found(reply.results[i + 1]) === undefined);
  const name = checked[missing] ?? checked[0] ?? '';
  throw new InvalidRecordError(`namespaces[${request.namespaces.indexOf(name)}]`, `namespace ${JSON.stringify(name)} does not exist`);
}

/** The token of that name, or `undefined` (never created, or revoked). One read of etcd. */
export async function getToken(kv: KvStore, keys: CellKeys, name: string): Promise<TokenRecord | undefined> {
  const { kvs } = await kv.range({ key: keys.token(name) });
  const stored = kvs[0];
  return stored === undefined ? undefined : decodeTokenRecord(stored.value);
}

/** Every token of the cell, by name (expired ones too: they stay until revoked). */
export async function listTokens(kv: KvStore, keys: CellKeys): Promise<TokenRecord[]> {
  const { kvs } = await kv.range({ key: keys.tokensPrefix, prefix: true });
  return kvs.map((stored) => decodeTokenRecord(stored.value)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Deletes the token: every API server refuses it from the next call on. `'not-found'` when no
 * token of that name exists. The delete is guarded by the revision read just before, so a
 * resend (reply lost) still answers `'revoked'`: the guard fails, the token is gone either way.
 */
export async function revokeToken(kv: KvStore, keys: CellKeys, name: string): Promise<RevokeTokenResult> {
  checkTokenName('name', name);
  const key = keys.token(name);
  const { kvs } = await kv.range({ key });
  const stored = kvs[0];
  if (stored === undefined) return 'not-found';
  const reply = await kv.txn({
    compare: [{ key, target: 'mod', op: '==', value: stored.modRevision }],
    success: [{ type: 'delete', key }, { type: 'put', key: keys.syncMarker, value: new Uint8Array() }],
    failure: [{ type: 'range', key }],
  });
  if (reply.succeeded) return 'revoked';
  const now = reply.results[0];
  // Gone: deleted by this call's first attempt or by a concurrent revoke. Rewritten meanwhile
  // (revoked and created again under the same name): revoke the new one too, as asked.
  if (now?.type !== 'range' || now.kvs.length === 0) return 'revoked';
  return revokeToken(kv, keys, name);
}
