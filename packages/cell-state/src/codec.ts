/**
 * Protobuf codecs for the records stored in etcd (`protos/omega/v1/records.proto`). The one place
 * that knows the wire form: everything else sees the readonly types of `types.ts`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';
import { recordsDescriptor } from './generated/records-descriptor.js';
import { leanEncodeMachine, leanEncodeTask } from './record-encode.js';
import {
  CONSTRAINT_OPERATORS,
  CRON_CONCURRENCY,
  type CronConcurrency,
  DEFAULT_NAMESPACE,
  DEPLOYMENT_STATES,
  HEALTH_STATES,
  TASK_STATES,
  claimId,
  type Alive,
  type Claim,
  type CommitMode,
  type Constraint,
  type Deployment,
  type DesiredState,
  type HealthCheck,
  type Job,
  type JobId,
  type JobKind,
  type JobSpec,
  type JobState,
  type JobStatus,
  type JobVersion,
  type Machine,
  type MachineId,
  type Namespace,
  type Owner,
  type Resources,
  type RestartPolicyKind,
  type SchedulerStats,
  type SecretEnv,
  type Task,
  type TaskId,
  type TaskNetwork,
  type TaskSpec,
} from './types.js';

/** Directory holding `omega/v1/*.proto`; found from this file in both `src/` and `dist/`. */
export const PROTOS_DIR: string = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidate = path.resolve(here, '../../../protos');
  if (existsSync(path.join(candidate, 'omega/v1/records.proto'))) return candidate;
  throw new Error(`protos not found at ${candidate}: the package must sit in <repo>/packages/`);
})();

// From the JSON descriptor generated from records.proto (scripts/gen-wire.mjs): no .proto
// parsing at import.
function loadRoot(): protobuf.Root {
  return protobuf.Root.fromJSON(recordsDescriptor());
}

const root = loadRoot();
const T = {
  machine: root.lookupType('omega.v1.MachineRecord'),
  task: root.lookupType('omega.v1.TaskRecord'),
  job: root.lookupType('omega.v1.JobRecord'),
  status: root.lookupType('omega.v1.JobStatusRecord'),
  owner: root.lookupType('omega.v1.OwnerRecord'),
  alive: root.lookupType('omega.v1.AliveRecord'),
  stats: root.lookupType('omega.v1.SchedulerStatsRecord'),
  request: root.lookupType('omega.v1.RequestRecord'),
  namespace: root.lookupType('omega.v1.NamespaceRecord'),
  version: root.lookupType('omega.v1.JobVersionRecord'),
  token: root.lookupType('omega.v1.TokenRecord'),
  secret: root.lookupType('omega.v1.SecretRecord'),
};

/** Largest encoded record accepted: well under etcd's default 1.5 MiB request limit. */
export const MAX_RECORD_BYTES = 1024 * 1024;

/** A record failed validation or was too large; nothing was written. */
export class InvalidRecordError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'InvalidRecordError';
  }
}

// The wire objects are protobufjs messages: loosely typed by nature, read only here.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Wire = any;

function num(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  const n = (value as { toNumber(): number }).toNumber();
  if (!Number.isSafeInteger(n)) throw new Error(`integer out of range: ${String(value)}`);
  return n;
}

function encode(type: protobuf.Type, what: string, object: Record<string, unknown>): Uint8Array {
  return checkSize(what, type.encode(type.fromObject(object)).finish());
}

const resourcesToWire = (r: Resources): Wire => ({ cpuMillis: r.cpuMillis, memoryBytes: r.memoryBytes });
const resourcesFromWire = (w: Wire): Resources => ({ cpuMillis: num(w?.cpuMillis), memoryBytes: num(w?.memoryBytes) });

// ---- machines ----------------------------------------------------------------------------

function checkSize(what: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new InvalidRecordError(what, `record is ${bytes.length} bytes, over the limit of ${MAX_RECORD_BYTES}`);
  }
  return bytes;
}

export function encodeMachine(m: Omit<Machine, 'seq'>): Uint8Array {
  // The same bytes without protobufjs for every record Omega writes (record-encode.ts).
  const lean = leanEncodeMachine(m);
  return lean === undefined ? protobufEncodeMachine(m) : checkSize(`machines/${m.id}`, lean);
}

/** {@link encodeMachine} through protobufjs alone: the reference the lean encoder is tested against. */
export function protobufEncodeMachine(m: Omit<Machine, 'seq'>): Uint8Array {
  return encode(T.machine, `machines/${m.id}`, {
    id: m.id,
    capacity: resourcesToWire(m.capacity),
    attributes: m.attributes,
    schedulable: m.schedulable,
    unschedulableReason: m.unschedulableReason,
    enforcementDisabled: m.enforcementDisabled,
    hollow: m.hollow,
    ...(m.cordon === undefined ? {} : { cordon: { reason: m.cordon.reason, sinceMs: m.cordon.sinceMs, drainDeadlineMs: m.cordon.drainDeadlineMs } }),
    claims: m.claims.map((c) => ({
      id: c.id,
      taskId: c.taskId,
      attempt: c.attempt,
      resources: resourcesToWire(c.resources),
      priority: c.priority,
      scheduler: c.scheduler,
    })),
  });
}

export function decodeMachine(bytes: Uint8Array, seq: number): Machine {
  const w: Wire = T.machine.decode(bytes);
  const id = w.id as MachineId;
  return {
    id,
    capacity: resourcesFromWire(w.capacity),
    attributes: { ...(w.attributes as Record<string, string>) },
    schedulable: w.schedulable === true,
    unschedulableReason: w.unschedulableReason ?? '',
    enforcementDisabled: w.enforcementDisabled === true,
    hollow: w.hollow === true,
    ...(w.cordon == null ? {} : { cordon: { reason: w.cordon.reason ?? '', sinceMs: num(w.cordon.sinceMs), drainDeadlineMs: num(w.cordon.drainDeadlineMs) } }),
    claims: (w.claims as Wire[]).map(
      (c): Claim => ({
        id: claimId(c.id),
        taskId: c.taskId as TaskId,
        machineId: id,
        attempt: c.attempt ?? 0,
        resources: resourcesFromWire(c.resources),
        priority: c.priority ?? 0,
        scheduler: c.scheduler ?? '',
      }),
    ),
    seq,
  };
}

// ---- tasks -------------------------------------------------------------------------------

export function encodeTask(t: Omit<Task, 'revision' | 'id'>): Uint8Array {
  const lean = leanEncodeTask(t);
  return lean === undefined ? protobufEncodeTask(t) : checkSize(`tasks/${t.jobId}/${t.index}`, lean);
}

/** {@link encodeTask} through protobufjs alone: the reference the lean encoder is tested against. */
export function protobufEncodeTask(t: Omit<Task, 'revision' | 'id'>): Uint8Array {
  return encode(T.task, `tasks/${t.jobId}/${t.index}`, {
    jobId: t.jobId,
    index: t.index,
    attempt: t.attempt,
    claimId: t.claimId,
    machineId: t.machineId,
    scheduler: t.scheduler,
    state: TASK_STATES.indexOf(t.state) + 1,
    reason: t.reason,
    exitCode: t.exitCode ?? 0,
    hasExitCode: t.exitCode !== undefined,
    signal: t.signal,
    pid: t.pid,
    placedAtMs: t.placedAtMs,
    startedAtMs: t.startedAtMs,
    finishedAtMs: t.finishedAtMs,
    cpuSeconds: t.cpuSeconds,
    peakMemoryBytes: t.peakMemoryBytes,
    resources: resourcesToWire(t.resources),
    priority: t.priority,
    restarts: t.restarts,
    notBeforeMs: t.notBeforeMs,
    health: t.health === undefined ? 0 : HEALTH_STATES.indexOf(t.health) + 1,
    healthSinceMs: t.healthSinceMs ?? 0,
    version: t.version ?? 0,
    message: t.message,
  });
}

export function decodeTask(bytes: Uint8Array, revision: number): Task {
  const w: Wire = T.task.decode(bytes);
  const jobId = w.jobId as JobId;
  const index = w.index ?? 0;
  const state = TASK_STATES[(w.state ?? 1) - 1] ?? 'pending';
  return {
    id: `${jobId}/${index}` as TaskId,
    jobId,
    index,
    attempt: w.attempt ?? 0,
    claimId: claimId(w.claimId ?? ''),
    machineId: (w.machineId ?? '') as MachineId,
    scheduler: w.scheduler ?? '',
    state,
    reason: w.reason ?? '',
    message: w.message ?? '',
    ...(w.hasExitCode ? { exitCode: w.exitCode ?? 0 } : {}),
    signal: w.signal ?? '',
    pid: w.pid ?? 0,
    placedAtMs: num(w.placedAtMs),
    startedAtMs: num(w.startedAtMs),
    finishedAtMs: num(w.finishedAtMs),
    cpuSeconds: w.cpuSeconds ?? 0,
    peakMemoryBytes: num(w.peakMemoryBytes),
    resources: resourcesFromWire(w.resources),
    priority: w.priority ?? 0,
    restarts: w.restarts ?? 0,
    notBeforeMs: num(w.notBeforeMs),
    // Absent when unspecified, so records written before health checks read back equal.
    ...healthFromWire(w.health, w.healthSinceMs),
    // Absent when 0, so records placed before versions existed read back equal.
    ...((w.version ?? 0) > 0 ? { version: w.version as number } : {}),
    revision,
  };
}

function healthFromWire(health: unknown, sinceMs: unknown): Pick<Task, 'health' | 'healthSinceMs'> {
  const state = typeof health === 'number' ? HEALTH_STATES[health - 1] : undefined;
  return state === undefined ? {} : { health: state, healthSinceMs: num(sinceMs) };
}

// ---- jobs --------------------------------------------------------------------------------

/** A health check as stored: timings 0 for the defaults, one of command / http / tcp set. */
function healthCheckToWire(c: HealthCheck): Wire {
  return {
    command: [...(c.command ?? [])],
    ...(c.http === undefined ? {} : { http: { port: c.http.port, path: c.http.path } }),
    ...(c.tcp === undefined ? {} : { tcp: { port: c.tcp.port } }),
    intervalMs: c.intervalMs ?? 0,
    timeoutMs: c.timeoutMs ?? 0,
    gracePeriodMs: c.gracePeriodMs ?? 0,
    failureThreshold: c.failureThreshold ?? 0,
    hollowFailing: c.hollowFailing === true,
  };
}

/** Zero timings and an empty command read back absent, so a check round-trips equal. */
function healthCheckFromWire(w: Wire): HealthCheck {
  const command = (w.command as string[] | undefined) ?? [];
  return {
    ...(command.length > 0 ? { command: [...command] } : {}),
    ...(w.http == null ? {} : { http: { port: w.http.port ?? 0, path: w.http.path ?? '' } }),
    ...(w.tcp == null ? {} : { tcp: { port: w.tcp.port ?? 0 } }),
    ...(num(w.intervalMs) > 0 ? { intervalMs: num(w.intervalMs) } : {}),
    ...(num(w.timeoutMs) > 0 ? { timeoutMs: num(w.timeoutMs) } : {}),
    ...(num(w.gracePeriodMs) > 0 ? { gracePeriodMs: num(w.gracePeriodMs) } : {}),
    ...((w.failureThreshold ?? 0) > 0 ? { failureThreshold: w.failureThreshold as number } : {}),
    ...(w.hollowFailing === true ? { hollowFailing: true } : {}),
  };
}

const JOB_KINDS: readonly JobKind[] = ['batch', 'service'];
const COMMIT_MODES: readonly CommitMode[] = ['default', 'incremental', 'all-or-nothing'];
const RESTART_KINDS: readonly RestartPolicyKind[] = ['default', 'never', 'on-failure', 'always'];
const DESIRED: readonly DesiredState[] = ['running', 'killed'];
const JOB_STATES: readonly JobState[] = ['pending', 'running', 'succeeded', 'failed', 'killed', 'unschedulable', 'scheduled'];

function jobSpecToWire(s: JobSpec): Wire {
  return {
    name: s.name,
    // The default namespace is stored as absent, so records written before namespaces existed
    // and records of the default namespace are one and the same.
    namespace: s.namespace === DEFAULT_NAMESPACE ? '' : s.namespace,
    kind: JOB_KINDS.indexOf(s.kind) + 1,
    priority: s.priority,
    instances: s.instances,
    commitMode: COMMIT_MODES.indexOf(s.commitMode),
    task: {
      command: [...s.task.command],
      env: { ...s.task.env },
      resources: resourcesToWire(s.task.resources),
      runDurationMs: s.task.runDurationMs,
      hollowFail: s.task.hollowFail,
      pidsLimit: s.task.pidsLimit,
      logLimitBytes: s.task.logLimitBytes ?? 0,
      diskLimitBytes: s.task.diskLimitBytes ?? 0,
      network: s.task.network ?? '',
      user: s.task.user ?? '',
      secretEnvNames: [...(s.task.secretEnvNames ?? [])],
      ...(s.task.healthCheck === undefined ? {} : { healthCheck: healthCheckToWire(s.task.healthCheck) }),
    },
    constraints: s.constraints.map((c) => ({
      attribute: c.attribute,
      operator: CONSTRAINT_OPERATORS.indexOf(c.operator) + 1,
      values: [...c.values],
      limit: c.limit,
    })),
    restartPolicy: {
      kind: RESTART_KINDS.indexOf(s.restartPolicy.kind),
      maxRestarts: s.restartPolicy.maxRestarts,
      initialBackoffMs: s.restartPolicy.initialBackoffMs,
      maxBackoffMs: s.restartPolicy.maxBackoffMs,
    },
    retentionMs: s.retentionMs ?? 0,
    ...(s.update === undefined
      ? {}
      : {
          update: {
            maxUnavailable: s.update.maxUnavailable,
            maxSurge: s.update.maxSurge,
            minHealthyTimeMs: s.update.minHealthyTimeMs,
            healthyDeadlineMs: s.update.healthyDeadlineMs,
            autoRollback: s.update.autoRollback,
          },
        }),
    ...(s.schedule === undefined
      ? {}
      : {
          schedule: {
            cron: s.schedule.cron,
            timeZone: s.schedule.timeZone,
            concurrency: CRON_CONCURRENCY.indexOf(s.schedule.concurrency) + 1,
            startingDeadlineMs: s.schedule.startingDeadlineMs,
          },
        }),
  };
}

/**
 * Decodes a stored job spec. Values a newer or foreign writer may have put there that this
 * version does not know (an unknown constraint operator, say) decode as `undefined` fields and
 * are reported by the scheduler's validation, never thrown here.
 */
function jobSpecFromWire(w: Wire): JobSpec {
  const task: Wire = w?.task ?? {};
  const policy: Wire = w?.restartPolicy ?? {};
  const namespace: unknown = w?.namespace;
  return {
    name: w?.name ?? '',
    namespace: typeof namespace === 'string' && namespace !== '' ? namespace : DEFAULT_NAMESPACE,
    kind: JOB_KINDS[(w?.kind ?? 0) - 1] as JobKind,
    priority: w?.priority ?? 0,
    instances: w?.instances ?? 0,
    commitMode: COMMIT_MODES[w?.commitMode ?? 0] as CommitMode,
    task: {
      command: [...((task.command as string[] | undefined) ?? [])],
      env: { ...((task.env as Record<string, string> | undefined) ?? {}) },
      resources: resourcesFromWire(task.resources),
      runDurationMs: num(task.runDurationMs),
      hollowFail: task.hollowFail === true,
      pidsLimit: task.pidsLimit ?? 0,
      // Absent when 0, so specs written before the field existed read back equal.
      ...(num(task.logLimitBytes) > 0 ? { logLimitBytes: num(task.logLimitBytes) } : {}),
      // Absent when 0, so specs written before the field existed read back equal.
      ...(num(task.diskLimitBytes) > 0 ? { diskLimitBytes: num(task.diskLimitBytes) } : {}),
      // Absent when empty, so specs written before the field existed read back equal; a value
      // this version does not know is kept for validation to report.
      ...(typeof task.network === 'string' && task.network !== '' ? { network: task.network as TaskNetwork } : {}),
      // Absent when empty, so specs written before the field existed read back equal.
      ...(typeof task.user === 'string' && task.user !== '' ? { user: task.user } : {}),
      // Absent when empty, so specs written before secrets existed read back equal.
      ...(Array.isArray(task.secretEnvNames) && task.secretEnvNames.length > 0 ? { secretEnvNames: [...(task.secretEnvNames as string[])] } : {}),
      // Absent when the record has none, so specs written before health checks read back equal.
      ...(task.healthCheck == null ? {} : { healthCheck: healthCheckFromWire(task.healthCheck) }),
    } satisfies TaskSpec,
    constraints: ((w?.constraints as Wire[] | undefined) ?? []).map(
      (c): Constraint => ({
        attribute: c.attribute ?? '',
        operator: CONSTRAINT_OPERATORS[(c.operator ?? 0) - 1] as Constraint['operator'],
        values: [...((c.values as string[] | undefined) ?? [])],
        limit: c.limit ?? 0,
      }),
    ),
    restartPolicy: {
      kind: RESTART_KINDS[policy.kind ?? 0] as RestartPolicyKind,
      maxRestarts: policy.maxRestarts ?? 0,
      initialBackoffMs: policy.initialBackoffMs ?? 0,
      maxBackoffMs: policy.maxBackoffMs ?? 0,
    },
    // Absent when 0 (the cell's default), so specs written before the field existed read back equal.
    ...(num(w?.retentionMs) > 0 ? { retentionMs: num(w?.retentionMs) } : {}),
    // Absent when the job gave no update block, so specs written before the field existed read back equal.
    ...(w?.update == null
      ? {}
      : {
          update: {
            maxUnavailable: w.update.maxUnavailable ?? 0,
            maxSurge: w.update.maxSurge ?? 0,
            minHealthyTimeMs: num(w.update.minHealthyTimeMs),
            healthyDeadlineMs: num(w.update.healthyDeadlineMs),
            autoRollback: w.update.autoRollback === true,
          },
        }),
    ...(w?.schedule == null
      ? {}
      : {
          schedule: {
            cron: w.schedule.cron ?? '',
            timeZone: w.schedule.timeZone ?? '',
            // Unspecified (0) is allow; an unknown value decodes as undefined and fails validation.
            concurrency: (w.schedule.concurrency ?? 0) === 0 ? 'allow' : (CRON_CONCURRENCY[(w.schedule.concurrency as number) - 1] as CronConcurrency),
            startingDeadlineMs: num(w.schedule.startingDeadlineMs),
          },
        }),
  };
}

export function encodeJob(j: Omit<Job, 'revision'>): Uint8Array {
  return encode(T.job, `jobs/${j.id}`, {
    id: j.id,
    spec: jobSpecToWire(j.spec),
    desired: DESIRED.indexOf(j.desired) + 1,
    submittedAtMs: j.submittedAtMs,
    requestId: j.requestId,
    version: j.version ?? 0,
    taskVersion: j.taskVersion ?? 0,
    versionAtMs: j.versionAtMs ?? 0,
    versionBy: j.versionBy ?? '',
    versionChange: j.versionChange ?? '',
    sameTaskFrom: j.sameTaskVersions?.from ?? 0,
    sameTaskTo: j.sameTaskVersions?.to ?? 0,
    ...(j.cronRun === undefined ? {} : { cronRun: { templateId: j.cronRun.templateId, scheduledAtMs: j.cronRun.scheduledAtMs } }),
  });
}

export function decodeJob(bytes: Uint8Array, revision: number): Job {
  const w: Wire = T.job.decode(bytes);
  return {
    id: w.id as JobId,
    spec: jobSpecFromWire(w.spec),
    desired: DESIRED[(w.desired ?? 1) - 1] ?? 'running',
    submittedAtMs: num(w.submittedAtMs),
    requestId: w.requestId ?? '',
    // Absent when unset, so records written before versions existed read back equal.
    ...((w.version ?? 0) > 0 ? { version: w.version as number } : {}),
    ...((w.taskVersion ?? 0) > 0 ? { taskVersion: w.taskVersion as number } : {}),
    ...(num(w.versionAtMs) > 0 ? { versionAtMs: num(w.versionAtMs) } : {}),
    ...(typeof w.versionBy === 'string' && w.versionBy !== '' ? { versionBy: w.versionBy as string } : {}),
    ...(typeof w.versionChange === 'string' && w.versionChange !== '' ? { versionChange: w.versionChange as string } : {}),
    ...((w.sameTaskFrom ?? 0) > 0 ? { sameTaskVersions: { from: w.sameTaskFrom as number, to: (w.sameTaskTo ?? 0) as number } } : {}),
    ...(w.cronRun == null ? {} : { cronRun: { templateId: (w.cronRun.templateId ?? '') as JobId, scheduledAtMs: num(w.cronRun.scheduledAtMs) } }),
    revision,
  };
}

/** `history/<job>/<version>`: one version of a job (JobVersionRecord). */
export function encodeJobVersion(jobId: JobId, v: JobVersion): Uint8Array {
  return encode(T.version, `history/${jobId}/${v.version}`, {
    version: v.version,
    spec: jobSpecToWire(v.spec),
    taskVersion: v.taskVersion,
    atMs: v.atMs,
    by: v.by,
    change: v.change,
  });
}

export function decodeJobVersion(bytes: Uint8Array): JobVersion {
  const w: Wire = T.version.decode(bytes);
  return { version: w.version ?? 0, spec: jobSpecFromWire(w.spec), taskVersion: w.taskVersion ?? 0, atMs: num(w.atMs), by: w.by ?? '', change: w.change ?? '' };
}

// ---- job status, owners, liveness, scheduler stats ---------------------------------------

export function encodeJobStatus(s: Omit<JobStatus, 'revision'>): Uint8Array {
  return encode(T.status, `status/${s.jobId}`, {
    state: JOB_STATES.indexOf(s.state) + 1,
    reason: s.reason,
    ruledOut: s.ruledOut.map((r) => ({ filter: r.filter, machines: r.machines })),
    attempts: s.attempts,
    scheduler: s.scheduler,
    updatedAtMs: s.updatedAtMs,
    firstAttemptAtMs: s.firstAttemptAtMs,
    fullyPlacedAtMs: s.fullyPlacedAtMs,
    ...(s.deployment === undefined
      ? {}
      : {
          deployment: {
            version: s.deployment.version,
            state: DEPLOYMENT_STATES.indexOf(s.deployment.state) + 1,
            healthy: s.deployment.healthy,
            updated: s.deployment.updated,
            total: s.deployment.total,
            reason: s.deployment.reason,
            startedAtMs: s.deployment.startedAtMs,
            progressAtMs: s.deployment.progressAtMs,
            lastGoodVersion: s.deployment.lastGoodVersion,
          },
        }),
    ...(s.cron === undefined ? {} : { cron: { ...s.cron } }),
  });
}

export function decodeJobStatus(jobId: JobId, bytes: Uint8Array, revision: number): JobStatus {
  const w: Wire = T.status.decode(bytes);
  return {
    jobId,
    state: JOB_STATES[(w.state ?? 1) - 1] ?? 'pending',
    reason: w.reason ?? '',
    ruledOut: ((w.ruledOut as Wire[] | undefined) ?? []).map((r) => ({ filter: r.filter ?? '', machines: r.machines ?? 0 })),
    attempts: w.attempts ?? 0,
    scheduler: w.scheduler ?? '',
    updatedAtMs: num(w.updatedAtMs),
    firstAttemptAtMs: num(w.firstAttemptAtMs),
    fullyPlacedAtMs: num(w.fullyPlacedAtMs),
    ...(w.deployment == null ? {} : { deployment: deploymentFromWire(w.deployment) }),
    ...(w.cron == null
      ? {}
      : { cron: { lastScheduledAtMs: num(w.cron.lastScheduledAtMs), runs: w.cron.runs ?? 0, skipped: w.cron.skipped ?? 0, lastSkipReason: w.cron.lastSkipReason ?? '', nextAtMs: num(w.cron.nextAtMs) } }),
    revision,
  };
}

function deploymentFromWire(d: Wire): Deployment {
  return {
    version: d.version ?? 0,
    state: DEPLOYMENT_STATES[(d.state ?? 1) - 1] ?? 'running',
    healthy: d.healthy ?? 0,
    updated: d.updated ?? 0,
    total: d.total ?? 0,
    reason: d.reason ?? '',
    startedAtMs: num(d.startedAtMs),
    progressAtMs: num(d.progressAtMs),
    lastGoodVersion: d.lastGoodVersion ?? 0,
  };
}

export function encodeOwner(o: Pick<Owner, 'scheduler' | 'kind' | 'sinceMs'>): Uint8Array {
  return encode(T.owner, 'owner', { scheduler: o.scheduler, kind: o.kind, sinceMs: o.sinceMs });
}

export function decodeOwner(jobId: JobId, bytes: Uint8Array, lease: string, revision: number): Owner {
  const w: Wire = T.owner.decode(bytes);
  return { jobId, scheduler: w.scheduler ?? '', kind: w.kind ?? '', sinceMs: num(w.sinceMs), lease, revision };
}

export function encodeAlive(a: Pick<Alive, 'agent' | 'startedAtMs' | 'logAddress'>): Uint8Array {
  return encode(T.alive, 'alive', { agent: a.agent, startedAtMs: a.startedAtMs, logAddress: a.logAddress });
}

export function decodeAlive(machineId: MachineId, bytes: Uint8Array, lease: string): Alive {
  const w: Wire = T.alive.decode(bytes);
  return { machineId, agent: w.agent ?? '', startedAtMs: num(w.startedAtMs), logAddress: w.logAddress ?? '', lease };
}

export function encodeSchedulerStats(s: SchedulerStats): Uint8Array {
  return encode(T.stats, `schedulers/${s.name}`, { ...s });
}

export function decodeSchedulerStats(bytes: Uint8Array): SchedulerStats {
  const w: Wire = T.stats.toObject(T.stats.decode(bytes), { longs: Number, defaults: true });
  return w as SchedulerStats;
}

// ---- request records ---------------------------------------------------------------------

/** `requests/<request id>`: the job an idempotent submit created, and how to recognise a repeat. */
export interface RequestRecord {
  readonly jobId: JobId;
  /** Hex SHA-256 of the job spec in canonical form; `''` in a record of an older version. */
  readonly specSha256: string;
  /** Random per submit call: the call's own resend finds its nonce; `''` in an older record. */
  readonly nonce: string;
  /** When the request was first served; 0 in a record of an older version. */
  readonly createdAtMs: number;
}

/** What an older version stored: the bare job id as text. A RequestRecord starts with a tag byte, never a letter or digit. */
const BARE_JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function encodeRequestRecord(r: RequestRecord): Uint8Array {
  return encode(T.request, 'request', { jobId: r.jobId, specSha256: r.specSha256, nonce: r.nonce, createdAtMs: r.createdAtMs });
}

/** Decodes a request record, also the bare job id older versions stored (no hash, nonce or time). */
export function decodeRequestRecord(bytes: Uint8Array): RequestRecord {
  const text = new TextDecoder().decode(bytes);
  if (BARE_JOB_ID.test(text)) return { jobId: text as JobId, specSha256: '', nonce: '', createdAtMs: 0 };
  const w: Wire = T.request.decode(bytes);
  return { jobId: (w.jobId ?? '') as JobId, specSha256: w.specSha256 ?? '', nonce: w.nonce ?? '', createdAtMs: num(w.createdAtMs) };
}

// ---- secret env --------------------------------------------------------------------------

/**
 * `/omega-secrets/<cell>/<job id>`: a job's secret env values (SecretRecord). The error for an
 * oversized record names the job, never a value.
 */
export function encodeSecretEnv(jobId: JobId, env: SecretEnv): Uint8Array {
  return encode(T.secret, `secrets/${jobId}`, { env: { ...env } });
}

export function decodeSecretEnv(bytes: Uint8Array): SecretEnv {
  const w: Wire = T.secret.decode(bytes);
  return { ...((w.env as Record<string, string> | undefined) ?? {}) };
}

// ---- token records -----------------------------------------------------------------------

/** What a bearer token may do: read < submit < admin (`omega.v1.Role`). */
export type Role = 'read' | 'submit' | 'admin';

/** The roles in order of power, each at its `omega.v1.Role` number minus one. */
export const ROLES: readonly Role[] = ['read', 'submit', 'admin'];

/** `/omega-auth/<cell>/tokens/<name>`: a bearer token, its secret kept only as a SHA-256. */
export interface TokenRecord {
  /** A DNS label, unique in the cell; also the key's last segment. */
  readonly name: string;
  /** SHA-256 of the secret's 32 random bytes. */
  readonly secretSha256: Uint8Array;
  /** The namespaces it may act in; `["*"]`: every one (always so for admin tokens). */
  readonly namespaces: readonly string[];
  readonly role: Role;
  /** 0: never expires. */
  readonly expiresAtMs: number;
  readonly createdAtMs: number;
}

export function encodeTokenRecord(t: TokenRecord): Uint8Array {
  return encode(T.token, `tokens/${t.name}`, {
    name: t.name,
    secretSha256: t.secretSha256,
    namespaces: [...t.namespaces],
    role: ROLES.indexOf(t.role) + 1,
    expiresAtMs: t.expiresAtMs,
    createdAtMs: t.createdAtMs,
  });
}

/** Decodes a token record; one without a known role is refused, so a token never gains power from a decoding default. */
export function decodeTokenRecord(bytes: Uint8Array): TokenRecord {
  const w: Wire = T.token.decode(bytes);
  const role = ROLES[(w.role ?? 0) - 1];
  if (role === undefined) throw new InvalidRecordError('role', `unknown role ${String(w.role)} in token record ${JSON.stringify(w.name ?? '')}`);
  return {
    name: w.name ?? '',
    secretSha256: new Uint8Array(w.secretSha256 ?? []),
    namespaces: [...((w.namespaces as string[] | undefined) ?? [])],
    role,
    expiresAtMs: num(w.expiresAtMs),
    createdAtMs: num(w.createdAtMs),
  };
}

// ---- namespaces --------------------------------------------------------------------------

export function encodeNamespace(n: Omit<Namespace, 'revision'>): Uint8Array {
  return encode(T.namespace, `namespaces/${n.name}`, {
    name: n.name,
    ...(n.quota === undefined ? {} : { quota: { cpuMillis: n.quota.cpuMillis, memoryBytes: n.quota.memoryBytes, tasks: n.quota.tasks } }),
    createdAtMs: n.createdAtMs,
    admissions: n.admissions,
  });
}

export function decodeNamespace(bytes: Uint8Array, revision: number): Namespace {
  const w: Wire = T.namespace.decode(bytes);
  const q: Wire = w.quota;
  return {
    name: w.name ?? '',
    ...(q === undefined || q === null ? {} : { quota: { cpuMillis: num(q.cpuMillis), memoryBytes: num(q.memoryBytes), tasks: q.tasks ?? 0 } }),
    createdAtMs: num(w.createdAtMs),
    admissions: num(w.admissions),
    revision,
  };
}
