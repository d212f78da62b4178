/**
 * Log grants: the short-lived credential an agent's log server asks for, minted by the API for
 * exactly one log (job, index, attempt, stream) on one machine.
 *
 * ```
 *   API (has authorized the caller for the job's namespace)
 *     grant = "olg1." base64url(JSON { job, index, attempt, stream, machine, exp, nonce })
 *                 "." base64url(signature of everything before it, with the API's TLS key)
 *     GET https://<logAddress>/logs/<job>/<index>/<attempt>/<stream>
 *         client certificate: the API's (mTLS, CN omega-api)     authorization: Bearer <grant>
 *   agent log server
 *     TLS: the client certificate is signed by the cell's CA        else: no handshake
 *     the certificate's CN is omega-api                             else: 403
 *     the grant verifies against that certificate's public key,
 *     names this very log and this machine, and has not expired   else: 401 / 403
 * ```
 *
 * Why signed with the API's TLS key and checked against the peer's certificate: the agent needs
 * no extra key material or shared secret, a grant is useless to anyone who does not also hold
 * the API's private key (the TLS handshake proves that), and a grant for one log never opens
 * another. Grants expire after {@link LOG_GRANT_TTL_MS}; an agent refuses one valid for longer
 * than {@link LOG_GRANT_MAX_TTL_MS} from its own clock, so clocks may drift by up to that much.
 * There is no replay cache: within its minute a grant may be used again, for the same log only.
 */
import { KeyObject, createPrivateKey, randomBytes, sign, verify } from 'node:crypto';
import { API_USER } from './etcd-access.js';

/** How long a grant the API mints stays valid. */
export const LOG_GRANT_TTL_MS = 60_000;
/** The longest validity an agent accepts (a grant expiring later is refused as malformed). */
export const LOG_GRANT_MAX_TTL_MS = 5 * 60_000;
/** The TLS client certificate CN a log server accepts grants from. */
export const LOG_GRANT_ISSUER_CN = API_USER;

const PREFIX = 'olg1';

export type LogGrantStream = 'stdout' | 'stderr';

/** What one grant opens. */
export interface LogGrantScope {
  readonly jobId: string;
  readonly index: number;
  readonly attempt: number;
  readonly stream: LogGrantStream;
  /** The machine whose agent serves the log. */
  readonly machineId: string;
}

interface GrantPayload {
  readonly job: string;
  readonly index: number;
  readonly attempt: number;
  readonly stream: string;
  readonly machine: string;
  /** Expiry, ms since the epoch. */
  readonly exp: number;
  readonly nonce: string;
}

/** Why a grant was refused: `unauthenticated` (absent, malformed, bad signature, expired) or `forbidden` (valid, for something else). */
export type LogGrantRefusal = { readonly kind: 'unauthenticated' | 'forbidden'; readonly reason: string };

/** ECDSA signatures in the fixed-size form (r || s); RSA keys ignore it. */
const DSA_ENCODING = 'ieee-p1363' as const;

/**
 * Mints a grant for `scope`, valid `ttlMs` (default {@link LOG_GRANT_TTL_MS}) from `nowMs`,
 * signed with `privateKey` (PEM or KeyObject: the API's TLS key). Pure apart from the nonce.
 */
export function mintLogGrant(scope: LogGrantScope, privateKey: KeyObject | Buffer | string, nowMs: number, ttlMs: number = LOG_GRANT_TTL_MS): string {
  const payload: GrantPayload = {
    job: scope.jobId,
    index: scope.index,
    attempt: scope.attempt,
    stream: scope.stream,
    machine: scope.machineId,
    exp: nowMs + ttlMs,
    nonce: randomBytes(9).toString('base64url'),
  };
  const signed = `${PREFIX}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const key = privateKey instanceof KeyObject ? privateKey : createPrivateKey(privateKey);
  const signature = sign('sha256', Buffer.from(signed), { key, dsaEncoding: DSA_ENCODING });
  return `${signed}.${signature.toString('base64url')}`;
}

/**
 * Checks a grant against the public key of the peer that presented it (its TLS client
 * certificate) and the log asked for. Returns undefined when it opens exactly `expected` at
 * `nowMs`, else why not (never throws on bad input).
 */
export function checkLogGrant(grant: string | undefined, publicKey: KeyObject, expected: LogGrantScope, nowMs: number): LogGrantRefusal | undefined {
  const unauthenticated = (reason: string): LogGrantRefusal => ({ kind: 'unauthenticated', reason });
  if (grant === undefined || grant === '') return unauthenticated('no log grant (authorization: Bearer <grant from the API>)');
  const parts = grant.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return unauthenticated('malformed log grant');
  const [, body = '', signature = ''] = parts;
  let valid = false;
  try {
    valid = verify('sha256', Buffer.from(`${PREFIX}.${body}`), { key: publicKey, dsaEncoding: DSA_ENCODING }, Buffer.from(signature, 'base64url'));
  } catch {
    valid = false;
  }
  if (!valid) return unauthenticated("log grant not signed by the client certificate's key");
  let payload: Partial<GrantPayload>;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<GrantPayload>;
  } catch {
    return unauthenticated('malformed log grant');
  }
  if (typeof payload.exp !== 'number' || !Number.isSafeInteger(payload.exp)) return unauthenticated('malformed log grant');
  if (payload.exp <= nowMs) return unauthenticated('log grant expired');
  if (payload.exp > nowMs + LOG_GRANT_MAX_TTL_MS) return unauthenticated(`log grant valid for longer than ${LOG_GRANT_MAX_TTL_MS} ms`);
  const same =
    payload.job === expected.jobId &&
    payload.index === expected.index &&
    payload.attempt === expected.attempt &&
    payload.stream === expected.stream &&
    payload.machine === expected.machineId;
  if (!same) return { kind: 'forbidden', reason: 'log grant is for another log' };
  return undefined;
}
