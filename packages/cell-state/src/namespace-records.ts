/**
 * Namespace records (`/omega/<cell>/namespaces/<name>`): creating a namespace, reading one, and
 * setting its quota, each a guarded transaction. Admission (a submit checked against the quota)
 * is `Cell.submitJob`; what a namespace uses is quota.ts.
 *
 * ```
 *   createNamespace(name) ── txn: namespaces/<name> absent? ── put { name, createdAt }   (idempotent)
 *
 *   setQuota(name, quota)
 *     read namespaces/<name> at mod revision M    ("default" without a record: create it first)
 *     snapshot at revision >= M ── use = namespaceUsage(snapshot, name)
 *     quota below use?  ──yes──► below-use (resource, quota, use)           nothing written
 *     txn: mod(namespaces/<name>) == M ── put { quota }                      else: retry (bounded)
 * ```
 *
 * Why the guard suffices: every submit to a namespace that has a record rewrites the record in
 * the transaction that stores the job (admissions + 1, see Cell.submitJob), so any job admitted
 * after the snapshot moved the record past M and the quota's write fails and is retried against
 * a fresh snapshot. "default" exists without a record, and a submit to it then guards only that
 * the record is still absent; to put a quota on it, setQuota first creates the record, so from
 * then on default's submits rewrite it too.
 *
 * There is no delete: a namespace, once created, exists as long as the cell (its jobs, tokens
 * and quota refer to it by name, and a submit's guard only checks that the record is there).
 */
import type { CellSnapshot } from './cell-snapshot.js';
import { decodeNamespace, encodeNamespace, InvalidRecordError } from './codec.js';
import type { CellKeys } from './keys.js';
import type { KvStore } from './kv.js';
import { isUnlimited, namespaceUsage, quotaExcess, type QuotaExcess, type Usage } from './quota.js';
import { DEFAULT_NAMESPACE, type Namespace, type Quota } from './types.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** How many times setQuota tries again when a submit or another setQuota changed the record meanwhile. */
export const SET_QUOTA_ATTEMPTS = 16;

/** Whether `name` can name a namespace: a DNS label (1-63 lowercase letters, digits, '-'). */
export function isNamespaceName(name: unknown): name is string {
  return typeof name === 'string' && DNS_LABEL.test(name);
}

/** Throws {@link InvalidRecordError} naming `field` unless `name` is a DNS label. */
export function checkNamespaceName(field: string, name: unknown): asserts name is string {
  if (!isNamespaceName(name)) {
    throw new InvalidRecordError(field, `must be a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit (got ${JSON.stringify(name)})`);
  }
}

/**
 * Throws {@link InvalidRecordError} naming `<field>.<resource field>` unless every field of the
 * quota is a whole number >= 0 (0: no limit on that resource) within the store's integer range.
 */
export function checkQuota(field: string, quota: Quota): void {
  for (const [name, value] of [
    ['cpuMillis', quota.cpuMillis],
    ['memoryBytes', quota.memoryBytes],
    ['tasks', quota.tasks],
  ] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new InvalidRecordError(`${field}.${name}`, `must be a whole number >= 0 (0: no limit), got ${String(value)}`);
  }
  if (quota.tasks > 0xffff_ffff) throw new InvalidRecordError(`${field}.tasks`, `must be at most ${0xffff_ffff}`);
}

/** The namespace "default" as it is without a record. */
export function implicitDefault(): Namespace {
  return { name: DEFAULT_NAMESPACE, createdAtMs: 0, admissions: 0, revision: 0 };
}

/**
 * The namespace as stored now (a linearizable read), "default" without a record as
 * {@link implicitDefault}; undefined when no such namespace exists.
 */
export async function readNamespace(kv: KvStore, keys: CellKeys, name: string): Promise<Namespace | undefined> {
  checkNamespaceName('namespace', name);
  const { kvs } = await kv.range({ key: keys.namespace(name) });
  const found = kvs[0];
  if (found !== undefined) return decodeNamespace(found.value, found.modRevision);
  return name === DEFAULT_NAMESPACE ? implicitDefault() : undefined;
}

/** A namespace as a snapshot holds it ("default" without a record included); undefined when unknown. */
export function snapshotNamespace(snapshot: CellSnapshot, name: string): Namespace | undefined {
  return snapshot.namespace(name) ?? (name === DEFAULT_NAMESPACE ? implicitDefault() : undefined);
}

/**
 * Creates a namespace (create-if-absent). Idempotent: an existing namespace, "default"
 * included, is answered as it is with `created: false`; a resend of this call after a lost
 * reply finds the record it wrote and answers the same (`created: false`).
 */
export async function createNamespace(kv: KvStore, keys: CellKeys, name: string, nowMs: number): Promise<{ namespace: Namespace; created: boolean }> {
  checkNamespaceName('name', name);
  if (name === DEFAULT_NAMESPACE) {
    const current = await readNamespace(kv, keys, name);
    if (current !== undefined) return { namespace: current, created: false };
  }
  return createRecord(kv, keys, name, nowMs);
}

/** Writes a namespace's record unless it has one; answers the record stored either way. */
async function createRecord(kv: KvStore, keys: CellKeys, name: string, nowMs: number): Promise<{ namespace: Namespace; created: boolean }> {
  const key = keys.namespace(name);
  const record = { name, createdAtMs: nowMs, admissions: 0 };
  const reply = await kv.txn({
    compare: [{ key, target: 'create', op: '==', value: 0 }],
    success: [{ type: 'put', key, value: encodeNamespace(record) }],
    failure: [{ type: 'range', key }],
  });
  if (reply.succeeded) return { namespace: { ...record, revision: reply.revision }, created: true };
  const stored = reply.results[0]?.type === 'range' ? reply.results[0].kvs[0] : undefined;
  if (stored === undefined) throw new Error(`${key}: create failed but the record is not there`);
  return { namespace: decodeNamespace(stored.value, stored.modRevision), created: false };
}

export type SetQuotaResult =
  | { readonly kind: 'set'; readonly namespace: Namespace; readonly used: Usage; readonly conflicts: number }
  | { readonly kind: 'below-use'; readonly excess: QuotaExcess; readonly conflicts: number }
  | { readonly kind: 'unknown-namespace'; readonly namespace: string }
  | { readonly kind: 'contended'; readonly conflicts: number };

export interface SetQuotaOptions {
  /** A snapshot at `revision` or later (the API passes its reader's `atLeast`). */
  readonly snapshotAtLeast: (revision: number) => Promise<CellSnapshot>;
  readonly nowMs: number;
  /** Default {@link SET_QUOTA_ATTEMPTS}. */
  readonly maxAttempts?: number;
}

/**
 * Sets a namespace's quota (every field 0: removes it). A quota below the namespace's current
 * use is refused (`below-use`, naming the first resource) and nothing is written. The write is
 * guarded by the record's mod revision the use was computed at (see this file's header), and
 * tried again against a fresh snapshot when a submit got in between, up to `maxAttempts` times
 * (`contended` then). Idempotent: a resend writes the same quota again, or fails its guard and
 * is judged again.
 */
export async function setQuota(kv: KvStore, keys: CellKeys, name: string, quota: Quota, options: SetQuotaOptions): Promise<SetQuotaResult> {
  checkNamespaceName('namespace', name);
  checkQuota('quota', quota);
  const key = keys.namespace(name);
  const maxAttempts = options.maxAttempts ?? SET_QUOTA_ATTEMPTS;
  let conflicts = 0;
  let current = await readNamespace(kv, keys, name);
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (current === undefined) return { kind: 'unknown-namespace', namespace: name };
    if (current.revision === 0) {
      // "default" without a record: create it, so that default's submits rewrite it from now on.
      current = (await createRecord(kv, keys, name, options.nowMs)).namespace;
      continue;
    }
    const snapshot = await options.snapshotAtLeast(current.revision);
    const used = namespaceUsage(snapshot, name);
    const limited = !isUnlimited(quota);
    if (limited) {
      const excess = quotaExcess(name, quota, used);
      if (excess !== undefined) return { kind: 'below-use', excess, conflicts };
    }
    const { quota: _old, revision: _rev, ...rest } = current;
    const next: Omit<Namespace, 'revision'> = limited ? { ...rest, quota: { ...quota } } : rest;
    const reply = await kv.txn({
      compare: [{ key, target: 'mod', op: '==', value: current.revision }],
      success: [{ type: 'put', key, value: encodeNamespace(next) }],
      failure: [{ type: 'range', key }],
    });
    if (reply.succeeded) return { kind: 'set', namespace: { ...next, revision: reply.revision }, used, conflicts };
    conflicts++;
    const stored = reply.results[0]?.type === 'range' ? reply.results[0].kvs[0] : undefined;
    current = stored === undefined ? undefined : decodeNamespace(stored.value, stored.modRevision);
  }
  return { kind: 'contended', conflicts };
}
