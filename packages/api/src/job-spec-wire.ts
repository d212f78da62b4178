/**
 * A JobSpec as it arrives over gRPC → the stored JobSpec of @omega/cell-state, with every problem
 * named by its field path in the proto's names (`job.task.resources.memory_bytes: must be > 0`),
 * and back (stored spec → wire, for job views).
 *
 * Checks, in order: the enum values (which the proto allows to be anything, including
 * UNSPECIFIED), the API's own limits (size of the encoded spec, length of constraint values), then
 * cell-state's `jobSpecProblems` (the same rules schedulers apply to stored jobs), its camelCase
 * paths rewritten to proto names. Nothing is written by this file: a caller stores a spec only
 * when the problem list is empty.
 */
import { DEFAULT_NAMESPACE, JOB_LIMITS, jobSpecProblems, secretEnvProblems, type Constraint, type CronConcurrency, type HealthCheck, type JobSpec, type SecretEnv, type SpecProblem, type TaskNetwork } from '@omega/cell-state';
import { protoFieldPath } from './errors.js';
import { encodedJobSpecBytes } from './proto.js';
export { jobSpecToWire } from './job-spec-to-wire.js';
import {
  COMMIT_MODE_NAMES,
  CONSTRAINT_OPERATOR_NAMES,
  CRON_CONCURRENCY_NAMES,
  JOB_KIND_NAMES,
  RESTART_POLICY_KIND_NAMES,
  type WireHealthCheck,
  type WireJobSpec,
} from './wire.js';

/** Limits the API enforces on top of cell-state's {@link JOB_LIMITS}. */
export const API_LIMITS = Object.freeze({
  /** gRPC refuses any request larger than this (RESOURCE_EXHAUSTED) before a handler sees it. */
  maxReceiveMessageBytes: 4 * 1024 * 1024,
  /** The encoded job spec; keeps the stored record far below cell-state's 1 MiB record limit. */
  maxJobSpecBytes: 512 * 1024,
  /** Each constraint value (machine attribute values are at most 256 characters too). */
  maxConstraintValueLength: 256,
  ...JOB_LIMITS,
});

/**
 * A valid spec and, apart from it, its secret env values (`task.secret_env`): the spec holds
 * none of them; the caller hands both to `Cell.createJob`, which stores the values apart and
 * sets the spec's `secretEnvNames`.
 */
export type SpecResult =
  | { readonly spec: JobSpec; readonly secretEnv: SecretEnv; readonly problems?: undefined }
  | { readonly spec?: undefined; readonly secretEnv?: undefined; readonly problems: readonly SpecProblem[] };

/** Reads an enum that arrived as a name (or as an unknown number) through a name table. */
function enumValue<V>(table: Readonly<Record<string, V>>, value: string | number | undefined): V | undefined {
  return typeof value === 'string' ? table[value] : undefined;
}

function choices(table: Readonly<Record<string, unknown>>): string {
  const names = Object.keys(table);
  return names.length <= 2 ? names.join(' or ') : `one of ${names.join(', ')}`;
}

/**
 * Validates a wire JobSpec and converts it. `field` is the path of the spec in the request
 * (`job` for SubmitJob). Returns every problem found, not just the first.
 */
export function jobSpecFromWire(wire: WireJobSpec | null | undefined, field = 'job'): SpecResult {
  if (wire === null || wire === undefined) return { problems: [{ field, problem: 'is required' }] };
  const problems: SpecProblem[] = [];
  const bad = (path: string, problem: string): void => {
    problems.push({ field: `${field}.${path}`, problem });
  };

  // Enums first: a wrong value is reported once with the proto's names, and replaced by a valid
  // placeholder so cell-state's checks below do not report it again in their own words.
  const kind = enumValue(JOB_KIND_NAMES, wire.kind);
  if (kind === undefined) bad('kind', `must be ${choices(JOB_KIND_NAMES)}`);
  const commitMode = enumValue(COMMIT_MODE_NAMES, wire.commit_mode);
  if (commitMode === undefined) bad('commit_mode', `must be ${choices(COMMIT_MODE_NAMES)}`);
  const policy = wire.restart_policy;
  const restartKind = policy === null ? 'default' : enumValue(RESTART_POLICY_KIND_NAMES, policy.kind);
  if (restartKind === undefined) bad('restart_policy.kind', `must be ${choices(RESTART_POLICY_KIND_NAMES)}`);

  const constraints: Constraint[] = [];
  (wire.constraints ?? []).forEach((c, i) => {
    const operator = enumValue(CONSTRAINT_OPERATOR_NAMES, c.operator);
    if (operator === undefined) bad(`constraints[${i}].operator`, `must be ${choices(CONSTRAINT_OPERATOR_NAMES)}`);
    (c.values ?? []).forEach((v, j) => {
      if (v.length > API_LIMITS.maxConstraintValueLength) bad(`constraints[${i}].values[${j}]`, `must be at most ${API_LIMITS.maxConstraintValueLength} characters`);
    });
    // An invalid operator keeps the constraint out of cell-state's checks (they start from it).
    if (operator !== undefined) constraints.push({ attribute: c.attribute, operator, values: [...(c.values ?? [])], limit: c.limit });
  });

  const size = encodedJobSpecBytes(wire);
  if (size > API_LIMITS.maxJobSpecBytes) problems.push({ field, problem: `is ${size} bytes encoded, over the limit of ${API_LIMITS.maxJobSpecBytes}` });

  const task = wire.task;
  if (task === null) bad('task', 'is required');
  const spec: JobSpec = {
    name: wire.name,
    // Empty on the wire (as every client that predates namespaces sends) is the default namespace.
    namespace: wire.namespace === undefined || wire.namespace === '' ? DEFAULT_NAMESPACE : wire.namespace,
    kind: kind ?? 'batch',
    priority: wire.priority,
    instances: wire.instances,
    commitMode: commitMode ?? 'default',
    task: {
      command: [...(task?.command ?? [])],
      env: { ...(task?.env ?? {}) },
      resources: { cpuMillis: task?.resources?.cpu_millis ?? 0, memoryBytes: task?.resources?.memory_bytes ?? 0 },
      runDurationMs: task?.run_duration_ms ?? 0,
      hollowFail: task?.hollow_fail === true,
      pidsLimit: task?.pids_limit ?? 0,
      ...(Number(task?.log_limit_bytes ?? 0) !== 0 ? { logLimitBytes: Number(task?.log_limit_bytes) } : {}),
      ...(Number(task?.disk_limit_bytes ?? 0) !== 0 ? { diskLimitBytes: Number(task?.disk_limit_bytes) } : {}),
      // Checked by jobSpecProblems (task.network: host or none); empty is the host's network.
      ...(task?.network !== undefined && task.network !== '' ? { network: task.network as TaskNetwork } : {}),
      // Checked by jobSpecProblems (task.user: a user name, not root); empty is the agent's choice.
      ...(task?.user !== undefined && task.user !== '' ? { user: task.user } : {}),
      // Checked by jobSpecProblems (exactly one kind, ports, timings); null or absent: no check.
      ...(task?.health_check === undefined || task.health_check === null ? {} : { healthCheck: healthCheckFromWire(task.health_check) }),
    },
    constraints,
    restartPolicy: {
      kind: restartKind ?? 'default',
      maxRestarts: policy?.max_restarts ?? 0,
      initialBackoffMs: policy?.initial_backoff_ms ?? 0,
      maxBackoffMs: policy?.max_backoff_ms ?? 0,
    },
    ...(wire.retention_ms !== undefined && wire.retention_ms !== 0 ? { retentionMs: wire.retention_ms } : {}),
    // Checked by jobSpecProblems (update.max_surge must be 0, ...); absent: the defaults.
    ...(wire.update === undefined || wire.update === null
      ? {}
      : {
          update: {
            maxUnavailable: wire.update.max_unavailable ?? 0,
            maxSurge: wire.update.max_surge ?? 0,
            minHealthyTimeMs: Number(wire.update.min_healthy_time_ms ?? 0),
            healthyDeadlineMs: Number(wire.update.healthy_deadline_ms ?? 0),
            autoRollback: wire.update.auto_rollback === true,
          },
        }),
    // Checked by jobSpecProblems (the expression, the time zone, batch only); absent: not a cron job.
    ...(wire.schedule === undefined || wire.schedule === null
      ? {}
      : {
          schedule: {
            cron: wire.schedule.cron ?? '',
            timeZone: wire.schedule.time_zone ?? '',
            concurrency: (wire.schedule.concurrency === undefined ? 'allow' : enumValue(CRON_CONCURRENCY_NAMES, wire.schedule.concurrency)) as CronConcurrency,
            startingDeadlineMs: Number(wire.schedule.starting_deadline_ms ?? 0),
          },
        }),
  };
  for (const p of jobSpecProblems(spec)) {
    // Without a task, cell-state's resource checks would only repeat "task: is required".
    if (task === null && p.field.startsWith('task.')) continue;
    problems.push({ field: `${field}.${protoFieldPath(p.field)}`, problem: p.problem });
  }
  // Write-only values, checked apart from the spec (`secret_env_names` is for replies: ignored).
  const secretEnv: SecretEnv = { ...(task?.secret_env ?? {}) };
  for (const p of secretEnvProblems(secretEnv, spec)) problems.push({ field: `${field}.${protoFieldPath(p.field)}`, problem: p.problem });
  return problems.length > 0 ? { problems } : { spec, secretEnv };
}

/** A wire health check → the spec's: an empty command, absent messages and 0 timings are left out (the defaults). */
function healthCheckFromWire(w: WireHealthCheck): HealthCheck {
  return {
    ...((w.command ?? []).length > 0 ? { command: [...w.command] } : {}),
    ...(w.http === null || w.http === undefined ? {} : { http: { port: w.http.port ?? 0, path: w.http.path ?? '' } }),
    ...(w.tcp === null || w.tcp === undefined ? {} : { tcp: { port: w.tcp.port ?? 0 } }),
    ...(Number(w.interval_ms ?? 0) !== 0 ? { intervalMs: Number(w.interval_ms) } : {}),
    ...(Number(w.timeout_ms ?? 0) !== 0 ? { timeoutMs: Number(w.timeout_ms) } : {}),
    ...(Number(w.grace_period_ms ?? 0) !== 0 ? { gracePeriodMs: Number(w.grace_period_ms) } : {}),
    ...((w.failure_threshold ?? 0) !== 0 ? { failureThreshold: w.failure_threshold } : {}),
    ...(w.hollow_failing === true ? { hollowFailing: true } : {}),
  };
}

/** Problems as one line: `a: x; b: y`. */
export function problemsMessage(problems: readonly SpecProblem[]): string {
  return problems.map((p) => `${p.field}: ${p.problem}`).join('; ');
}
