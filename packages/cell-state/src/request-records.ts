/**
 * Request records (`requests/<request id>`): what makes a job submit idempotent.
 *
 * ```
 *   submit (request id R, spec S, nonce N)
 *     └─ one txn: jobs/<id> and requests/R both absent?
 *          yes ─► write the job and { jobId, sha256(S), N, createdAtMs }         created: true
 *          no  ─► read requests/R in the same txn:
 *                   nonce N            our own create, resent (reply lost)      created: true
 *                   same spec hash     a repeat of the request                 created: false
 *                   other spec hash    RequestIdReusedError (ALREADY_EXISTS at the API)
 *                   job since deleted  RequestJobGoneError  (ALREADY_EXISTS at the API)
 * ```
 *
 * The nonce is what tells a resend from a repeat: etcd3 resends a call whose reply was lost, and
 * the resend finds the record its first attempt wrote. Without it the resend would look like a
 * repeat and answer `created: false` for a job this very call created.
 *
 * Records expire: {@link deleteExpiredRequests} deletes those older than a retention (default
 * {@link DEFAULT_REQUEST_RETENTION_MS}); a request id is idempotent for that long.
 */
import { createHash } from 'node:crypto';
import { decodeRequestRecord, encodeRequestRecord } from './codec.js';
import type { CellKeys } from './keys.js';
import type { KeyValue, KvStore, Op } from './kv.js';
import type { JobId, JobSpec } from './types.js';

/** How long a request id stays idempotent (its record is kept) by default: 24 hours. */
export const DEFAULT_REQUEST_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Keys read per page by {@link deleteExpiredRequests}. */
const PAGE_SIZE = 500;

/** A request id was used before for a job with a different spec. Nothing was written. */
export class RequestIdReusedError extends Error {
  readonly retryable = false;
  constructor(
    readonly requestId: string,
    readonly jobId: JobId,
    options?: { cause?: unknown },
  ) {
    super(`request_id ${JSON.stringify(requestId)}: already used for job ${jobId} with a different spec`, options);
    this.name = 'RequestIdReusedError';
  }
}

/**
 * A request id was used before, but the job created for it has since been deleted (finished and
 * past its retention). Nothing was written: the request was served once, and a new job needs a
 * new request id.
 */
export class RequestJobGoneError extends Error {
  readonly retryable = false;
  constructor(
    readonly requestId: string,
    readonly jobId: JobId,
    options?: { cause?: unknown },
  ) {
    super(`request_id ${JSON.stringify(requestId)}: already used for job ${jobId}, which has since been deleted; use a new request_id to submit again`, options);
    this.name = 'RequestJobGoneError';
  }
}

/** The same value with object keys sorted at every level, so equal specs serialise equally. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * Hex SHA-256 of a (validated, defaults filled) job spec in canonical form: object keys sorted
 * (env order does not matter), arrays in order (argument order does). Two submits of the same
 * spec hash equally in any process.
 */
export function specSha256(spec: JobSpec): string {
  return createHash('sha256').update(JSON.stringify(canonical(spec))).digest('hex');
}

/**
 * Deletes the request records created at least `retentionMs` before `nowMs`; returns how many it
 * deleted. Pages through `requests/` ({@link PAGE_SIZE} keys a read); every delete is guarded by
 * the record's mod_revision, so a record rewritten meanwhile is kept (and judged again next time).
 * A record of an older version (a bare job id, no creation time) is stamped with `nowMs` instead,
 * so it expires one retention from now rather than at once. Undecodable records are left alone.
 * Safe to run from several processes at once: each record is deleted once.
 */
export async function deleteExpiredRequests(kv: KvStore, keys: CellKeys, nowMs: number, retentionMs: number): Promise<number> {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) throw new RangeError(`nowMs: must be a whole number of milliseconds >= 0, got ${nowMs}`);
  if (!Number.isSafeInteger(retentionMs) || retentionMs < 0) throw new RangeError(`retentionMs: must be a whole number of milliseconds >= 0, got ${retentionMs}`);
  const prefix = keys.prefix('requests');
  const chunk = Math.max(1, Math.min(kv.limits.maxTxnOps, PAGE_SIZE));
  let deleted = 0;
  let fromKey: string | undefined;
  for (;;) {
    const page = await kv.range({ key: prefix, prefix: true, limit: PAGE_SIZE, ...(fromKey === undefined ? {} : { fromKey }) });
    const ops: { kv: KeyValue; op: Op; deletes: boolean }[] = [];
    for (const stored of page.kvs) {
      let record;
      try {
        record = decodeRequestRecord(stored.value);
      } catch {
        continue;
      }
      const guard = { key: stored.key, target: 'mod' as const, op: '==' as const, value: stored.modRevision };
      if (record.createdAtMs === 0) {
        const stamped = encodeRequestRecord({ ...record, createdAtMs: nowMs });
        ops.push({ kv: stored, deletes: false, op: { type: 'txn', txn: { compare: [guard], success: [{ type: 'put', key: stored.key, value: stamped }], failure: [] } } });
      } else if (record.createdAtMs + retentionMs <= nowMs) {
        ops.push({ kv: stored, deletes: true, op: { type: 'txn', txn: { compare: [guard], success: [{ type: 'delete', key: stored.key }], failure: [] } } });
      }
    }
    for (let start = 0; start < ops.length; start += chunk) {
      const part = ops.slice(start, start + chunk);
      const reply = await kv.txn({ compare: [], success: part.map((p) => p.op), failure: [] });
      for (const [i, result] of reply.results.entries()) {
        if (part[i]?.deletes === true && result.type === 'txn' && result.succeeded) deleted++;
      }
    }
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || last === undefined) return deleted;
    fromKey = `${last.key}\0`;
  }
}
