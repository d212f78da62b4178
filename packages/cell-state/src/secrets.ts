/**
 * Secret env values: stored apart from the job, where the components that mirror the cell
 * cannot read them, and handed to the task by the agent that starts it.
 *
 * ```
 *   API  ── one txn (Cell.createJob) ──► /omega/<cell>/jobs/<id>        spec with task.secretEnvNames
 *                                      ► /omega/<cell>/requests/<rid>  hash of spec + HMAC of the values
 *                                      ► /omega-secrets/<cell>/<id>    SecretRecord { env }
 *   agent ── range /omega-secrets/<cell>/<id> when it starts a task ──► the task's environment
 *   janitor ── Cell.deleteJob ──► deletes it with the job, in the same transaction as the job record
 * ```
 *
 * etcd roles (set up by the cell's RBAC): API servers write (never read) the secrets prefix,
 * schedulers delete, agents read. etcd cannot narrow an agent to the jobs placed on its own
 * machines (placements change at any time): every agent may read every job's secrets.
 *
 * Idempotent submit without storing values: a request record (mirrored by every scheduler)
 * must tell a repeat with other secret values (refused) from a repeat of the same request. A
 * plain hash of the values there could be brute-forced offline by anyone who reads the cell
 * (short passwords fall fast), so the record holds a hash of the spec and an HMAC-SHA256 of
 * the values, keyed by a random per-cell key at `/omega-auth/<cell>/secret-digest-key`, which
 * only API servers can read (see {@link secretDigestKey}). Every API server computes the same
 * digest, so a repeat through another server is recognised too.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { decodeSecretEnv } from './codec.js';
import type { CellKeys } from './keys.js';
import type { KvStore } from './kv.js';
import { specSha256 } from './request-records.js';
import type { JobId, JobSpec, SecretEnv } from './types.js';

/** Bytes of the per-cell digest key. */
export const SECRET_DIGEST_KEY_BYTES = 32;

/**
 * The cell's secret digest key: read from `/omega-auth/<cell>/secret-digest-key`, created
 * (random, once, create-if-absent) when it is missing. Concurrent first calls on several API
 * servers all end with the one key that won the create. Never logged, never changes.
 */
export async function secretDigestKey(kv: KvStore, keys: CellKeys): Promise<Uint8Array> {
  const key = keys.secretDigestKey;
  const { kvs } = await kv.range({ key });
  const found = kvs[0];
  if (found !== undefined && found.value.length === SECRET_DIGEST_KEY_BYTES) return found.value;
  const reply = await kv.txn({
    compare: [{ key, target: 'create', op: '==', value: 0 }],
    success: [{ type: 'put', key, value: randomBytes(SECRET_DIGEST_KEY_BYTES) }],
    failure: [{ type: 'range', key }],
  });
  if (reply.succeeded) {
    // Read back rather than trust our own bytes: a resent create (reply lost) finds its own key.
    return secretDigestKey(kv, keys);
  }
  const stored = reply.results[0]?.type === 'range' ? reply.results[0].kvs[0] : undefined;
  if (stored === undefined || stored.value.length !== SECRET_DIGEST_KEY_BYTES) {
    throw new Error(`${key}: holds ${stored?.value.length ?? 0} bytes, not a ${SECRET_DIGEST_KEY_BYTES}-byte key; delete it to make a new one`);
  }
  return stored.value;
}

/** Hex HMAC-SHA256 of a secret env (names and values, in name order) under the cell's digest key. */
export function secretEnvDigest(digestKey: Uint8Array, env: SecretEnv): string {
  const entries = Object.keys(env)
    .sort()
    .map((name) => [name, env[name]]);
  return createHmac('sha256', digestKey).update(JSON.stringify(entries)).digest('hex');
}

/**
 * What a request record stores as `specSha256`: the spec's own hash when the job has no secret
 * values (the same as before secrets existed), else a hash of that and of the values' digest.
 */
export function requestSpecHash(spec: JobSpec, secretDigest: string | undefined): string {
  const specHash = specSha256(spec);
  if (secretDigest === undefined) return specHash;
  return createHash('sha256').update(`${specHash}\nsecret-env-hmac:${secretDigest}`).digest('hex');
}

/** A job's secret env values, or undefined when it has no secret record. For agents only. */
export async function readSecretEnv(kv: KvStore, keys: CellKeys, id: JobId): Promise<SecretEnv | undefined> {
  const { kvs } = await kv.range({ key: keys.secret(id) });
  const found = kvs[0];
  return found === undefined ? undefined : decodeSecretEnv(found.value);
}
