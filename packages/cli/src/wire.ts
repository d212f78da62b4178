/**
 * The conversion of the API's messages to and from the CLI's own shapes: a JobSpec of
 * @omega/cell-state going out, and the camelCase objects of `--json` coming back (the stable,
 * documented output; the wire shape stays an internal detail of the CLI). The messages' types are
 * generated from protos/ (`@omega/api/wire`), as the server's are.
 */
import {
  jobSpecToWire,
  ROLE_WIRE,
  type GetJobHistoryResponse,
  type HealthCheck as WireHealthCheck,
  type JobSpecInput,
  type JobVersionView,
  type JobView,
  type MachineView,
  type NamespaceView,
  type Quota,
  type Resources,
  type SchedulerStatsView,
  type TaskView,
  type TokenInfo,
  type UpdateJobResponse,
} from '@omega/api/wire';
import { resolveHealthCheck, type JobSpec } from '@omega/cell-state/vocabulary';

export { jobSpecToWire };
export { ROLE_WIRE };
export type { GetJobHistoryResponse, JobView, MachineView, NamespaceView, Quota, SchedulerStatsView, TaskView, TokenInfo, UpdateJobResponse };

// ---- going out ----------------------------------------------------------------------------------

/**
 * The JobSpec of a SubmitJob: `spec` in wire form with its namespace and `secretEnv`'s values in
 * `task.secret_env` (the only place a secret value is ever put on the wire; the server stores it
 * apart and never returns it).
 */
export function submitSpecToWire(spec: JobSpec, secretEnv: Readonly<Record<string, string>> = {}): JobSpecInput {
  const wire = jobSpecToWire(spec);
  return { ...wire, namespace: spec.namespace, task: wire.task === null ? null : { ...wire.task, secret_env: { ...secretEnv } } };
}

/** The roles as the CLI names them (`submit` for `ROLE_SUBMIT`). */
export type RoleName = keyof typeof ROLE_WIRE;

// ---- coming back: responses as decoded (absent messages are null) ----------------------------

/** `history --json`: one version. */
export interface VersionOutput {
  version: number;
  atMs: number;
  by: string;
  change: string;
  current: boolean;
}

export function versionOutput(v: JobVersionView): VersionOutput {
  return { version: v.version, atMs: Number(v.at_ms), by: v.by, change: v.change, current: v.current };
}

/** A service's last rolling update, in `job --json`. */
export interface DeploymentOutput {
  version: number;
  state: string;
  healthy: number;
  updated: number;
  total: number;
  reason: string;
  startedAtMs: number;
}

export type TaskState = 'pending' | 'placed' | 'running' | 'succeeded' | 'failed' | 'killed' | 'lost';
export type JobState = 'pending' | 'running' | 'succeeded' | 'failed' | 'killed' | 'unschedulable' | 'scheduled' | 'unknown';

/** `JOB_VIEW_STATE_RUNNING` → `running`; `TASK_VIEW_STATE_LOST` → `lost`; `JOB_KIND_BATCH` → `batch`. */
export function enumWord(value: string | number, prefix: string): string {
  // An unknown value (from a newer server) arrives as its number.
  const name = String(value);
  return name.startsWith(prefix) ? name.slice(prefix.length).toLowerCase().replace(/_/g, '-') : name.toLowerCase();
}

/** `job --json`: one task. */
export interface TaskOutput {
  index: number;
  state: TaskState;
  machine: string;
  exitCode: number | null;
  signal: string;
  reason: string;
  /** Why the attempt ended, in words (its agent's, at most 512 characters); '': nothing to add to the reason. */
  message: string;
  attempt: number;
  restarts: number;
  placedAtMs: number;
  startedAtMs: number;
  finishedAtMs: number;
  cpuSeconds: number;
  peakMemoryBytes: number;
  /** The job version the attempt runs (0: never placed). */
  version: number;
  /** The attempt's health check result (`passing` / `failing`); null: no check or no result yet. */
  health: 'passing' | 'failing' | null;
  /** When the current health began (0 without health). */
  healthSinceMs: number;
}

/** `job --json`: the spec's health check with every timing resolved (defaults applied). */
export interface HealthCheckOutput {
  kind: 'command' | 'http' | 'tcp';
  command: string[];
  port: number;
  path: string;
  intervalMs: number;
  timeoutMs: number;
  gracePeriodMs: number;
  failureThreshold: number;
}

/** `job --json` and each entry of `jobs --json`. */
export interface JobOutput {
  id: string;
  name: string;
  namespace: string;
  kind: string;
  state: JobState;
  reason: string;
  instances: number;
  priority: number;
  killRequested: boolean;
  submittedAtMs: number;
  scheduler: string;
  /** The job's current version (1 at submit). */
  version: number;
  /** The last rolling update; null: none ran. */
  deployment: DeploymentOutput | null;
  /** A cron job: its schedule, runs so far and next time; null for other jobs. */
  cron: { schedule: string; timeZone: string; concurrency: string; startingDeadlineMs: number; nextRunAtMs: number; runs: number; skipped: number; lastSkipReason: string } | null;
  /** A run of a cron job: its template and scheduled time; null for other jobs. */
  cronRun: { templateId: string; scheduledAtMs: number } | null;
  ruledOut: { filter: string; machines: number }[];
  taskCounts: Record<TaskState, number>;
  tasks: TaskOutput[];
  spec: {
    command: string[];
    env: Record<string, string>;
    /** Names only: a secret's value is never returned by the API. */
    secretEnvNames: string[];
    cpuMillis: number;
    memoryBytes: number;
    runDurationMs: number;
    commitMode: string;
    constraints: { attribute: string; operator: string; values: string[]; limit: number }[];
    restartPolicy: { kind: string; maxRestarts: number; initialBackoffMs: number; maxBackoffMs: number };
    /** null: no health check. */
    healthCheck: HealthCheckOutput | null;
  };
}

/** `token list --json`, `whoami --json`, and `token create --json`'s `token`. */
export interface TokenOutput {
  name: string;
  role: RoleName | 'unknown';
  /** `["*"]`: every namespace. */
  namespaces: string[];
  /** 0: never expires. */
  expiresAtMs: number;
  createdAtMs: number;
}

/** A quota or a use; in a quota, 0 means no limit on that resource. */
export interface QuotaOutput {
  cpuMillis: number;
  memoryBytes: number;
  tasks: number;
}

/** `namespace list --json`, `quota get --json`, `quota set --json`. */
export interface NamespaceOutput {
  name: string;
  /** null: no quota. */
  quota: QuotaOutput | null;
  used: QuotaOutput;
  createdAtMs: number;
}

export interface MachineOutput {
  id: string;
  capacity: { cpuMillis: number; memoryBytes: number };
  allocated: { cpuMillis: number; memoryBytes: number };
  tasks: number;
  alive: boolean;
  schedulable: boolean;
  unschedulableReason: string;
  attributes: Record<string, string>;
  hollow: boolean;
  enforcementDisabled: boolean;
  /** An operator's cordon or drain; null: none. */
  cordon: { reason: string; sinceMs: number; drainDeadlineMs: number } | null;
}

export interface SchedulerOutput {
  name: string;
  kind: string;
  conflictMode: string;
  transactionMode: string;
  /** Every transaction, successful and failed. */
  transactions: number;
  /** Failed transactions: at least one claim conflicted. */
  conflicts: number;
  conflictFraction: number;
  busyness: number;
  claimsCommitted: number;
  claimsConflicted: number;
  jobsPlaced: number;
  jobsAbandoned: number;
  waitFirstAttemptMeanMs: number;
  waitFullyPlacedMeanMs: number;
  spuriousRetries: number;
  updatedAtMs: number;
}

const resources = (r: Resources | null | undefined): { cpuMillis: number; memoryBytes: number } => ({ cpuMillis: r?.cpu_millis ?? 0, memoryBytes: r?.memory_bytes ?? 0 });

export function taskOutput(t: TaskView): TaskOutput {
  return {
    index: t.index,
    state: enumWord(t.state, 'TASK_VIEW_STATE_') as TaskState,
    machine: t.machine,
    exitCode: t.has_exit_code ? t.exit_code : null,
    signal: t.signal,
    reason: t.reason,
    // Absent from a server that predates messages.
    message: t.message ?? '',
    attempt: t.attempt,
    restarts: t.restarts,
    placedAtMs: t.placed_at_ms,
    startedAtMs: t.started_at_ms,
    finishedAtMs: t.finished_at_ms,
    cpuSeconds: t.cpu_seconds,
    peakMemoryBytes: t.peak_memory_bytes,
    version: t.version ?? 0,
    // Empty (or absent, from a server that predates health checks): no check or no result yet.
    health: t.health === 'passing' || t.health === 'failing' ? t.health : null,
    healthSinceMs: Number(t.health_since_ms ?? 0),
  };
}

export function jobOutput(j: JobView): JobOutput {
  const spec = j.spec;
  const policy = spec?.restart_policy;
  const counts = { pending: 0, placed: 0, running: 0, succeeded: 0, failed: 0, killed: 0, lost: 0, ...(j.task_counts ?? {}) };
  return {
    id: j.id,
    name: spec?.name ?? '',
    namespace: spec?.namespace === undefined || spec.namespace === '' ? 'default' : spec.namespace,
    kind: enumWord(spec?.kind ?? '', 'JOB_KIND_'),
    state: enumWord(j.state, 'JOB_VIEW_STATE_') as JobState,
    reason: j.reason,
    instances: spec?.instances ?? 0,
    priority: spec?.priority ?? 0,
    killRequested: j.kill_requested,
    submittedAtMs: j.submitted_at_ms,
    scheduler: j.scheduler,
    version: j.version !== undefined && j.version > 0 ? j.version : 1,
    deployment:
      j.deployment === undefined || j.deployment === null
        ? null
        : { version: j.deployment.version, state: j.deployment.state, healthy: j.deployment.healthy, updated: j.deployment.updated, total: j.deployment.total, reason: j.deployment.reason, startedAtMs: Number(j.deployment.started_at_ms) },
    cron:
      spec?.schedule === undefined || spec.schedule === null
        ? null
        : {
            schedule: spec.schedule.cron,
            timeZone: spec.schedule.time_zone === '' ? 'UTC' : spec.schedule.time_zone,
            concurrency: enumWord(spec.schedule.concurrency, 'CRON_CONCURRENCY_').replace('unspecified', 'allow'),
            startingDeadlineMs: Number(spec.schedule.starting_deadline_ms),
            nextRunAtMs: Number(j.cron?.next_run_at_ms ?? 0),
            runs: j.cron?.runs ?? 0,
            skipped: j.cron?.skipped ?? 0,
            lastSkipReason: j.cron?.last_skip_reason ?? '',
          },
    cronRun: j.cron_run === undefined || j.cron_run === null ? null : { templateId: j.cron_run.template_id, scheduledAtMs: Number(j.cron_run.scheduled_at_ms) },
    ruledOut: j.ruled_out.map((r) => ({ filter: r.filter, machines: r.machines })),
    taskCounts: counts,
    tasks: j.tasks.map(taskOutput),
    spec: {
      command: spec?.task?.command ?? [],
      env: spec?.task?.env ?? {},
      secretEnvNames: [...(spec?.task?.secret_env_names ?? [])],
      ...resources(spec?.task?.resources),
      runDurationMs: spec?.task?.run_duration_ms ?? 0,
      commitMode: enumWord(spec?.commit_mode ?? '', 'COMMIT_MODE_'),
      constraints: (spec?.constraints ?? []).map((c) => ({ attribute: c.attribute, operator: enumWord(c.operator, 'CONSTRAINT_OPERATOR_'), values: c.values, limit: c.limit })),
      restartPolicy: {
        kind: enumWord(policy?.kind ?? '', 'RESTART_POLICY_KIND_'),
        maxRestarts: policy?.max_restarts ?? 0,
        initialBackoffMs: policy?.initial_backoff_ms ?? 0,
        maxBackoffMs: policy?.max_backoff_ms ?? 0,
      },
      healthCheck: healthCheckOutput(spec?.task?.health_check),
    },
  };
}

function healthCheckOutput(w: WireHealthCheck | null | undefined): HealthCheckOutput | null {
  if (w === null || w === undefined) return null;
  const check = resolveHealthCheck({
    ...(w.command.length > 0 ? { command: w.command } : {}),
    ...(w.http === null ? {} : { http: w.http }),
    ...(w.tcp === null ? {} : { tcp: w.tcp }),
    intervalMs: Number(w.interval_ms),
    timeoutMs: Number(w.timeout_ms),
    gracePeriodMs: Number(w.grace_period_ms),
    failureThreshold: w.failure_threshold,
  });
  return { kind: check.kind, command: [...check.command], port: check.port, path: check.path, intervalMs: check.intervalMs, timeoutMs: check.timeoutMs, gracePeriodMs: check.gracePeriodMs, failureThreshold: check.failureThreshold };
}

export function tokenOutput(t: TokenInfo): TokenOutput {
  const role = enumWord(t.role, 'ROLE_');
  return {
    name: t.name,
    role: role === 'read' || role === 'submit' || role === 'admin' ? role : 'unknown',
    namespaces: [...t.namespaces],
    expiresAtMs: t.expires_at_ms,
    createdAtMs: t.created_at_ms,
  };
}

const quotaOutput = (q: Quota | null | undefined): QuotaOutput => ({ cpuMillis: q?.cpu_millis ?? 0, memoryBytes: q?.memory_bytes ?? 0, tasks: q?.tasks ?? 0 });

export function namespaceOutput(n: NamespaceView): NamespaceOutput {
  return { name: n.name, quota: n.has_quota ? quotaOutput(n.quota) : null, used: quotaOutput(n.used), createdAtMs: n.created_at_ms };
}

export function machineOutput(m: MachineView): MachineOutput {
  return {
    id: m.id,
    capacity: resources(m.capacity),
    allocated: resources(m.allocated),
    tasks: m.tasks,
    alive: m.alive,
    schedulable: m.schedulable,
    unschedulableReason: m.unschedulable_reason,
    attributes: m.attributes,
    hollow: m.hollow,
    enforcementDisabled: m.enforcement_disabled,
    cordon: m.cordoned === true ? { reason: m.cordon_reason ?? '', sinceMs: Number(m.cordoned_at_ms ?? 0), drainDeadlineMs: Number(m.drain_deadline_ms ?? 0) } : null,
  };
}

export function schedulerOutput(s: SchedulerStatsView): SchedulerOutput {
  return {
    name: s.name,
    kind: s.kind,
    conflictMode: s.conflict_mode,
    transactionMode: s.transaction_mode,
    transactions: s.transactions,
    conflicts: s.transactions_failed,
    conflictFraction: s.conflict_fraction,
    busyness: s.busyness,
    claimsCommitted: s.claims_committed,
    claimsConflicted: s.claims_conflicted,
    jobsPlaced: s.jobs_placed,
    jobsAbandoned: s.jobs_abandoned,
    waitFirstAttemptMeanMs: s.wait_first_attempt_mean_ms,
    waitFullyPlacedMeanMs: s.wait_fully_placed_mean_ms,
    spuriousRetries: s.spurious_retries,
    updatedAtMs: s.updated_at_ms,
  };
}
