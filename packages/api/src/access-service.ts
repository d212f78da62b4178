/**
 * `omega.v1.AccessService`: bearer tokens (create, list, revoke: admin only, as the policy says)
 * and WhoAmI (any valid token).
 *
 * Tokens live in etcd (`/omega-auth/<cell>/tokens/<name>`, cell-state's token-records.ts); this
 * service only translates. CreateToken returns the bearer token once: the cell keeps its hash.
 * Logged: who created or revoked which token (by name), never a secret.
 */
import { status, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { createToken, listTokens, revokeToken, type Role, type TokenRecord } from '@omega/cell-state';
import type { Logger } from 'pino';
import { callerOf } from './auth/guarded-server.js';
import type { Caller } from './auth/policy.js';
import type { CellReader } from './cell-reader.js';
import { ApiError, invalidArgument, notFound } from './errors.js';
import { unary } from './rpc.js';
import { ROLE_WIRE, type WireTokenInfo } from './wire.js';

const ROLE_OF_WIRE: Readonly<Record<string, Role>> = Object.fromEntries(Object.entries(ROLE_WIRE).map(([role, wire]) => [wire, role as Role]));

interface CreateTokenRequest {
  name: string;
  namespaces: string[];
  role: string | number;
  ttl_ms: number;
}

/** A token as the API shows it: everything but its hash. */
export function tokenInfo(token: Pick<TokenRecord, 'name' | 'namespaces' | 'role' | 'expiresAtMs' | 'createdAtMs'> | Caller): WireTokenInfo {
  return { name: token.name, namespaces: [...token.namespaces], role: ROLE_WIRE[token.role], expires_at_ms: token.expiresAtMs, created_at_ms: token.createdAtMs };
}

export function accessServiceImplementation(options: { readonly reader: CellReader; readonly logger: Logger; readonly now?: () => number }): UntypedServiceImplementation {
  const { reader, logger } = options;
  const { kv, keys } = reader.cell;
  const now = options.now ?? Date.now;

  async function create(request: CreateTokenRequest, call: ServerUnaryCall<unknown, unknown>): Promise<{ token: WireTokenInfo; secret: string }> {
    const role = ROLE_OF_WIRE[String(request.role)];
    if (role === undefined) throw invalidArgument('role', 'must be ROLE_READ, ROLE_SUBMIT or ROLE_ADMIN');
    const result = await reader.store(reader.deadline(), 'creating the token', () =>
      createToken(kv, keys, { name: request.name ?? '', role, namespaces: request.namespaces ?? [], ttlMs: request.ttl_ms ?? 0 }, { nowMs: now() }),
    );
    if (result.outcome === 'exists') throw new ApiError(status.ALREADY_EXISTS, `token ${JSON.stringify(result.name)} already exists (revoke it first to replace it)`);
    const { record } = result;
    logger.info({ token: record.name, role: record.role, namespaces: record.namespaces, expiresAtMs: record.expiresAtMs, by: callerOf(call).name }, 'token created');
    return { token: tokenInfo(record), secret: result.token };
  }

  async function list(): Promise<{ tokens: WireTokenInfo[] }> {
    const records = await reader.store(reader.deadline(), 'listing the tokens', () => listTokens(kv, keys));
    return { tokens: records.map(tokenInfo) };
  }

  async function revoke(request: { name: string }, call: ServerUnaryCall<unknown, unknown>): Promise<Record<string, never>> {
    const name = request.name ?? '';
    const result = await reader.store(reader.deadline(), 'revoking the token', () => revokeToken(kv, keys, name));
    if (result === 'not-found') throw notFound(`token ${JSON.stringify(name)} not found`);
    logger.info({ token: name, by: callerOf(call).name }, 'token revoked');
    return {};
  }

  return {
    CreateToken: unary(logger, 'CreateToken', create),
    ListTokens: unary(logger, 'ListTokens', list),
    RevokeToken: unary(logger, 'RevokeToken', revoke),
    WhoAmI: unary(logger, 'WhoAmI', (_request: unknown, call) => Promise.resolve(tokenInfo(callerOf(call)))),
  };
}
