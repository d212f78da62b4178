/**
 * Job versions: storing a new version of a job's spec (update, scale, rollback) and reading its
 * history. Called through {@link Cell.updateJob} and {@link Cell.jobHistory}.
 *
 * ```
 *  jobs/<id>                 the current spec, its version, taskVersion, when, by whom, what changed
 *  history/<id>/<version>    the earlier versions, the last JOB_HISTORY_LIMIT - 1 (not mirrored)
 *
 *  update ──► read the job (and, for a rollback, the version asked for)
 *         ──► new spec: validated like a submit; kind, name, namespace unchanged
 *         ──► same spec as now? ──► 'unchanged' (nothing stored, no version)
 *         ──► quota: only when the new spec asks more than the job holds now
 *         ──► one transaction guarded by the job's mod_revision (and the namespace record's):
 *             jobs/<id> at version + 1, history/<id>/<version> = the superseded version,
 *             history/<id>/<version + 1 - LIMIT> deleted
 *         guard failed ──► read again and judge again (bounded); with `expectedVersion`, a
 *                          job that moved on answers 'version-mismatch' instead
 * ```
 *
 * - **taskVersion**: the version from which the current task spec and constraints are in force.
 *   An update that changes neither (a scale, a new priority or restart policy) keeps it, so no
 *   instance is replaced; one that changes either sets it to the new version. A rollback also
 *   records the versions it returned to (`sameTaskVersions`): their instances run its spec
 *   already, and a rolling update leaves them alone (Nomad's in-place update).
 * - **Idempotent**: a resent transaction (etcd3 retries after a lost reply) finds the job already
 *   at the version it meant to write, with the spec it meant to write, and answers `updated`.
 * - **Secrets** are not versioned: an update that gives secret env values replaces the stored
 *   values (in the same transaction; the values cannot be compared, so such an update always
 *   makes a version); one that gives none keeps them and their names; a rollback keeps the
 *   current ones. Running tasks see new values only when next started.
 */
import { randomBytes } from 'node:crypto';
import { decodeJob, decodeJobVersion, decodeNamespace, encodeJob, encodeJobVersion, encodeNamespace, encodeSecretEnv, InvalidRecordError } from './codec.js';
import type { CellSnapshot } from './cell-snapshot.js';
import type { CellKeys } from './keys.js';
import type { Compare, KeyValue, KvStore, Op, OpResult } from './kv.js';
import { jobSpecProblems, secretEnvNames, secretEnvProblems } from './job-spec.js';
import { implicitDefault } from './namespace-records.js';
import { addUsage, isUnlimited, jobDemand, jobUsage, namespaceUsage, quotaExcess, type QuotaExcess, type Usage } from './quota.js';
import { canonical, specSha256 } from './request-records.js';
import {
  DEFAULT_NAMESPACE,
  JOB_HISTORY_LIMIT,
  jobTaskVersion,
  jobVersion,
  type Job,
  type JobId,
  type JobSpec,
  type JobVersion,
  type SecretEnv,
} from './types.js';

/** What a new version changes. */
export type JobChange =
  /** A whole new spec (`omega update -f`), with new secret env values or none (keep the stored ones). */
  | { readonly kind: 'spec'; readonly spec: JobSpec; readonly secretEnv?: SecretEnv }
  /** Only the instance count (`omega scale`). */
  | { readonly kind: 'scale'; readonly instances: number }
  /** The spec of an earlier version, stored as a new version (`omega rollback`); default: the previous one. */
  | { readonly kind: 'rollback'; readonly toVersion?: number; readonly why?: string };

export interface UpdateJobRequest {
  readonly jobId: JobId;
  readonly change: JobChange;
  /** Who asks (a token name; `scheduler` for an automatic rollback): kept in the history. */
  readonly by: string;
  /** Refuse ('version-mismatch') unless the job is at this version now; 0 or absent: any. */
  readonly expectedVersion?: number;
  /** For the quota check, as for a submit (called only when the namespace has a quota and the job grows). */
  readonly snapshotAtLeast?: (revision: number) => Promise<CellSnapshot>;
  /** Default {@link UPDATE_ATTEMPTS}. */
  readonly maxAttempts?: number;
}

/** How many times an update is judged again after its guard failed (another writer got in first). */
export const UPDATE_ATTEMPTS = 16;

/** What an update came to. Refusals are values: nothing was stored for them. */
export type UpdateJobResult =
  | { readonly kind: 'updated'; readonly job: Job; readonly change: string; readonly conflicts: number }
  | { readonly kind: 'unchanged'; readonly job: Job }
  | { readonly kind: 'not-found' }
  /** The job's desired state is `killed`: it takes no new versions. */
  | { readonly kind: 'killed'; readonly job: Job }
  | { readonly kind: 'version-mismatch'; readonly job: Job; readonly expected: number }
  /** The rollback's version is not (or no longer) kept. */
  | { readonly kind: 'unknown-version'; readonly job: Job; readonly version: number; readonly kept: readonly number[] }
  | { readonly kind: 'over-quota'; readonly excess: QuotaExcess }
  | { readonly kind: 'contended'; readonly conflicts: number };

/** The parts of a spec whose change replaces running instances (a rolling update). */
function placementPart(spec: JobSpec): unknown {
  const { secretEnvNames: _names, ...task } = spec.task;
  return { task, constraints: spec.constraints };
}

/** Whether two specs would run the same instances (task spec and constraints equal). */
export function samePlacementSpec(a: JobSpec, b: JobSpec): boolean {
  return specSha256(placementPart(a) as JobSpec) === specSha256(placementPart(b) as JobSpec);
}

/** The spec as the codec stores it (defaults and absent fields normalised), for comparing. */
function normalised(spec: JobSpec): JobSpec {
  return decodeJob(encodeJob({ id: 'x' as JobId, spec, desired: 'running', submittedAtMs: 0, requestId: '' }), 0).spec;
}

const TOP_FIELDS: readonly (keyof JobSpec)[] = ['priority', 'instances', 'commitMode', 'constraints', 'restartPolicy', 'retentionMs', 'update'];
const TASK_FIELDS: readonly string[] = ['command', 'env', 'resources', 'runDurationMs', 'hollowFail', 'pidsLimit', 'logLimitBytes', 'network', 'user', 'secretEnvNames', 'healthCheck', 'diskLimitBytes'];

/** What changed between two specs, in one line: `instances 2 -> 4`, `task.command, task.env changed`. */
export function describeSpecChange(before: JobSpec, after: JobSpec): string {
  const parts: string[] = [];
  const changed: string[] = [];
  const differs = (a: unknown, b: unknown): boolean => JSON.stringify(canonical(a)) !== JSON.stringify(canonical(b));
  for (const field of TOP_FIELDS) {
    if (!differs(before[field], after[field])) continue;
    if (field === 'instances' || field === 'priority') parts.push(`${field} ${String(before[field])} -> ${String(after[field])}`);
    else changed.push(field);
  }
  const bt = before.task as unknown as Record<string, unknown>;
  const at = after.task as unknown as Record<string, unknown>;
  const taskFields = new Set([...TASK_FIELDS, ...Object.keys(bt), ...Object.keys(at)]);
  for (const field of taskFields) if (differs(bt[field], at[field])) changed.push(`task.${field}`);
  if (changed.length > 0) parts.push(`${changed.join(', ')} changed`);
  return parts.length === 0 ? 'nothing changed' : parts.join('; ');
}

function firstKv(result: OpResult | undefined): KeyValue | undefined {
  return result?.type === 'range' ? result.kvs[0] : undefined;
}

/** The current version of a job as a history entry. */
export function currentVersion(job: Job): JobVersion {
  return {
    version: jobVersion(job),
    spec: job.spec,
    taskVersion: jobTaskVersion(job),
    atMs: job.versionAtMs ?? job.submittedAtMs,
    by: job.versionBy ?? '',
    change: job.versionChange ?? 'submitted',
  };
}

/** The job's versions, newest first: the current one, then those kept in `history/<id>/`. Empty when the job is unknown. */
export async function readJobHistory(kv: KvStore, keys: CellKeys, id: JobId): Promise<JobVersion[]> {
  const reply = await kv.txn({ compare: [], success: [{ type: 'range', key: keys.job(id) }, { type: 'range', key: keys.historyOfJob(id), prefix: true }], failure: [] });
  const jobKv = firstKv(reply.results[0]);
  if (jobKv === undefined) return [];
  const job = decodeJob(jobKv.value, jobKv.modRevision);
  const history = reply.results[1];
  const earlier: JobVersion[] = [];
  if (history?.type === 'range') {
    for (const entry of history.kvs) {
      try {
        earlier.push(decodeJobVersion(entry.value));
      } catch {
        // An undecodable entry is skipped: the history is informational, the job record is the truth.
      }
    }
  }
  const current = currentVersion(job);
  return [current, ...earlier.filter((v) => v.version < current.version).sort((a, b) => b.version - a.version)];
}

/** A demand that asks no more than `held` in any resource (the update needs no quota check). */
function withinHeld(demand: Usage, held: Usage): boolean {
  return demand.cpuMillis <= held.cpuMillis && demand.memoryBytes <= held.memoryBytes && demand.tasks <= held.tasks;
}

function throwProblems(spec: JobSpec): void {
  const problems = jobSpecProblems(spec, 'job.');
  if (problems.length > 0) throw new InvalidRecordError(problems[0]?.field ?? 'job', problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
}

/**
 * Stores a new version of a job (see this file's header). Throws {@link InvalidRecordError}
 * naming the field for an invalid spec, a changed `kind`, `name` or `namespace`, or a bad
 * instance count; every other outcome is a value.
 */
export async function updateJob(kv: KvStore, keys: CellKeys, request: UpdateJobRequest, nowMs: () => number): Promise<UpdateJobResult> {
  const { change } = request;
  if (change.kind === 'scale') {
    if (!Number.isSafeInteger(change.instances) || change.instances < 1) throw new InvalidRecordError('instances', `must be an integer >= 1, got ${String(change.instances)}`);
  }
  if (change.kind === 'rollback' && change.toVersion !== undefined && (!Number.isSafeInteger(change.toVersion) || change.toVersion < 0)) {
    throw new InvalidRecordError('version', `must be a version number >= 1, got ${String(change.toVersion)}`);
  }
  if (change.kind === 'spec' && change.secretEnv !== undefined) {
    const problems = secretEnvProblems(change.secretEnv, change.spec, 'job.');
    if (problems.length > 0) throw new InvalidRecordError(problems[0]?.field ?? 'job.task.secretEnv', problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
  }
  const maxAttempts = request.maxAttempts ?? UPDATE_ATTEMPTS;
  const atMs = nowMs();
  let conflicts = 0;
  let attempted: { version: number; sha: string } | undefined;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const jobKey = keys.job(request.jobId);
    const read = await kv.txn({ compare: [], success: [{ type: 'range', key: jobKey }], failure: [] });
    const jobKv = firstKv(read.results[0]);
    if (jobKv === undefined) return { kind: 'not-found' };
    const job = decodeJob(jobKv.value, jobKv.modRevision);
    const version = jobVersion(job);
    // Our own transaction applied after all (its reply was lost and this is the resend's answer).
    if (attempted !== undefined && version === attempted.version && specSha256(job.spec) === attempted.sha) {
      return { kind: 'updated', job, change: job.versionChange ?? '', conflicts };
    }
    if (request.expectedVersion !== undefined && request.expectedVersion > 0 && request.expectedVersion !== version) {
      return { kind: 'version-mismatch', job, expected: request.expectedVersion };
    }
    if (job.desired === 'killed') return { kind: 'killed', job };

    // The spec asked for, and how to say what it changes.
    let next: JobSpec;
    let rollbackNote = '';
    /** For a rollback: the version returned to (its instances run the spec stored now). */
    let returnedTo: JobVersion | undefined;
    if (change.kind === 'scale') next = { ...job.spec, instances: change.instances };
    else if (change.kind === 'spec') {
      const given = change.spec;
      for (const field of ['kind', 'name', 'namespace'] as const) {
        if (given[field] !== job.spec[field]) {
          throw new InvalidRecordError(`job.${field}`, `cannot change (${JSON.stringify(job.spec[field])} -> ${JSON.stringify(given[field])}): submit a new job instead`);
        }
      }
      // Secret values are not versioned: without new ones, the stored names stay.
      const names = change.secretEnv === undefined ? job.spec.task.secretEnvNames : secretEnvNames(change.secretEnv);
      const { secretEnvNames: _given, ...task } = given.task;
      next = { ...given, task: { ...task, ...(names === undefined || names.length === 0 ? {} : { secretEnvNames: [...names] }) } };
    } else {
      const target = change.toVersion !== undefined && change.toVersion > 0 ? change.toVersion : version - 1;
      const history = await readJobHistory(kv, keys, request.jobId);
      const found = history.find((v) => v.version === target);
      if (found === undefined || target === version) {
        if (target === version) return { kind: 'unchanged', job };
        return { kind: 'unknown-version', job, version: target, kept: history.map((v) => v.version) };
      }
      const { secretEnvNames: _old, ...task } = found.spec.task;
      const names = job.spec.task.secretEnvNames;
      next = { ...found.spec, task: { ...task, ...(names === undefined || names.length === 0 ? {} : { secretEnvNames: [...names] }) } };
      rollbackNote = `${change.why ?? 'rollback'} to version ${target}: `;
      returnedTo = found;
    }
    throwProblems(next);
    next = normalised(next);
    const replacesSecrets = change.kind === 'spec' && change.secretEnv !== undefined;
    if (specSha256(next) === specSha256(normalised(job.spec)) && !replacesSecrets) return { kind: 'unchanged', job };

    // Quota: only a job that asks more than it holds now is judged (a rolling update without
    // surge never runs more instances than the job asks).
    const compare: Compare[] = [{ key: jobKey, target: 'mod', op: '==', value: job.revision }];
    const success: Op[] = [];
    const namespaceName = job.spec.namespace;
    if (request.snapshotAtLeast !== undefined) {
      const nsRead = await kv.range({ key: keys.namespace(namespaceName) });
      const nsKv = nsRead.kvs[0];
      const namespace = nsKv === undefined ? (namespaceName === DEFAULT_NAMESPACE ? implicitDefault() : undefined) : decodeNamespace(nsKv.value, nsKv.modRevision);
      if (namespace?.quota !== undefined && !isUnlimited(namespace.quota)) {
        const snapshot = await request.snapshotAtLeast(Math.max(namespace.revision, job.revision));
        const held = jobUsage(snapshot, job);
        const demand = jobDemand(next);
        if (!withinHeld(demand, held)) {
          const others = subtractUsage(namespaceUsage(snapshot, namespaceName), held);
          const excess = quotaExcess(namespaceName, namespace.quota, others, demand);
          if (excess !== undefined) return { kind: 'over-quota', excess };
          const { revision, ...record } = namespace;
          compare.push({ key: keys.namespace(namespaceName), target: 'mod', op: '==', value: revision });
          if (nsKv !== undefined) success.push({ type: 'put', key: keys.namespace(namespaceName), value: encodeNamespace({ ...record, admissions: record.admissions + 1 }) });
        }
      }
    }

    const newVersion = version + 1;
    const sameTask = samePlacementSpec(next, job.spec);
    const taskVersion = sameTask ? jobTaskVersion(job) : newVersion;
    // A rollback's spec is what the instances of the versions it returned to run: they stay.
    const sameTaskVersions = sameTask
      ? job.sameTaskVersions
      : returnedTo !== undefined && samePlacementSpec(next, returnedTo.spec)
        ? { from: Math.max(1, returnedTo.taskVersion), to: returnedTo.version }
        : undefined;
    // Secret values cannot be compared (they are never read back): new ones always make a version.
    const specChange = describeSpecChange(job.spec, next);
    const what = rollbackNote + (replacesSecrets ? (specChange === 'nothing changed' ? 'secret env replaced' : `${specChange}; secret env replaced`) : specChange);
    // Every other field of the record (desired state, request id, a cron run's identity, ...) stays as it is.
    const { revision: _revision, sameTaskVersions: _before, ...kept } = job;
    const record: Omit<Job, 'revision'> = {
      ...kept,
      spec: next,
      version: newVersion,
      taskVersion,
      versionAtMs: atMs,
      versionBy: request.by,
      versionChange: what,
      ...(sameTaskVersions === undefined ? {} : { sameTaskVersions }),
    };
    success.push(
      { type: 'put', key: jobKey, value: encodeJob(record) },
      { type: 'put', key: keys.history(job.id, version), value: encodeJobVersion(job.id, currentVersion(job)) },
    );
    // The current version is one of the LIMIT kept: the oldest earlier one goes.
    const dropped = newVersion - JOB_HISTORY_LIMIT;
    if (dropped >= 1) success.push({ type: 'delete', key: keys.history(job.id, dropped) });
    if (replacesSecrets) success.push({ type: 'put', key: keys.secret(job.id), value: encodeSecretEnv(job.id, change.secretEnv ?? {}) });
    attempted = { version: newVersion, sha: specSha256(next) };
    const reply = await kv.txn({ compare, success, failure: [] });
    if (reply.succeeded) return { kind: 'updated', job: { ...record, revision: reply.revision }, change: what, conflicts };
    conflicts++;
    // A short random pause, so two updaters that keep meeting spread out.
    await new Promise((resolve) => setTimeout(resolve, 1 + (randomBytes(1)[0] ?? 0) % Math.min(50, 4 * 2 ** Math.min(conflicts, 4))));
  }
  return { kind: 'contended', conflicts };
}

function subtractUsage(a: Usage, b: Usage): Usage {
  const out = addUsage(a, { cpuMillis: -b.cpuMillis, memoryBytes: -b.memoryBytes, tasks: -b.tasks });
  return { cpuMillis: Math.max(0, out.cpuMillis), memoryBytes: Math.max(0, out.memoryBytes), tasks: Math.max(0, out.tasks) };
}
