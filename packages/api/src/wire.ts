/**
 * The API's messages as `@grpc/proto-loader` hands them over and takes them back with
 * {@link PROTO_LOADER_OPTIONS}: field names as in the .proto (snake_case), enums as their names,
 * 64-bit integers as JavaScript numbers, absent scalars as their defaults and absent messages as
 * `null`. These types describe that shape for the server's own code; clients in other languages
 * need nothing from here (the .proto files are the contract).
 *
 * Also the one place that maps enum names to the vocabulary of @omega/cell-state and back.
 */
import type {
  CommitMode,
  CronConcurrency,
  Role,
  ConstraintOperator,
  JobKind,
  JobState,
  RestartPolicyKind,
  TaskState,
} from '@omega/cell-state';

export interface WireResources {
  cpu_millis: number;
  memory_bytes: number;
}

export interface WireConstraint {
  attribute: string;
  operator: string | number;
  values: string[];
  limit: number;
}

export interface WireRestartPolicy {
  kind: string | number;
  max_restarts: number;
  initial_backoff_ms: number;
  max_backoff_ms: number;
}

export interface WireTaskSpec {
  command: string[];
  env: Record<string, string>;
  resources: WireResources | null;
  run_duration_ms: number;
  hollow_fail: boolean;
  pids_limit: number;
  /** 0 or absent: the agent's log cap. */
  log_limit_bytes?: number;
  /** 0 or absent: the agent's work-dir disk limit. */
  disk_limit_bytes?: number;
  /** "" or absent, or "host": the machine's network; "none": only loopback. */
  network?: string;
  /** "" or absent: the agent's choice; else a named user of the machine (only where its agent allows it). */
  user?: string;
  /** Write-only: values given at submit; always empty in replies. */
  secret_env?: Record<string, string>;
  /** In replies: the names of the job's secret env entries (sorted). Ignored on submit. */
  secret_env_names?: string[];
  /** The task's health check; null or absent: none. */
  health_check?: WireHealthCheck | null;
}

/** Exactly one of command (non-empty), http, tcp; timings 0: the defaults. */
export interface WireHealthCheck {
  command: string[];
  http: { port: number; path: string } | null;
  tcp: { port: number } | null;
  interval_ms: number;
  timeout_ms: number;
  grace_period_ms: number;
  failure_threshold: number;
  hollow_failing: boolean;
}

export interface WireJobSpec {
  name: string;
  kind: string | number;
  priority: number;
  instances: number;
  commit_mode: string | number;
  task: WireTaskSpec | null;
  constraints: WireConstraint[];
  restart_policy: WireRestartPolicy | null;
  /** 0 or absent: the cell's default retention. */
  retention_ms?: number;
  /** Empty or absent: the `default` namespace. */
  namespace?: string;
  /** A service's rolling update policy; null or absent: the defaults. */
  update?: WireUpdateStrategy | null;
  /** A cron job's schedule; null or absent: not a cron job. */
  schedule?: WireCronSchedule | null;
}

export interface WireCronSchedule {
  cron: string;
  time_zone: string;
  concurrency: string | number;
  starting_deadline_ms: number | string;
}

export interface WireCronView {
  next_run_at_ms: number;
  last_scheduled_at_ms: number;
  runs: number;
  skipped: number;
  last_skip_reason: string;
}

export interface WireUpdateStrategy {
  max_unavailable: number;
  max_surge: number;
  min_healthy_time_ms: number;
  healthy_deadline_ms: number;
  auto_rollback: boolean;
}

export interface WireDeploymentView {
  version: number;
  state: string;
  healthy: number;
  updated: number;
  total: number;
  reason: string;
  started_at_ms: number;
}

export interface UpdateJobRequest {
  job_id: string;
  job: WireJobSpec | null;
  scale: boolean;
  instances: number;
  rollback: boolean;
  rollback_to: number;
  expected_version: number;
}

export interface WireJobVersionView {
  version: number;
  at_ms: number;
  by: string;
  change: string;
  spec: WireJobSpec;
  current: boolean;
}

export interface WireTaskView {
  index: number;
  state: string;
  machine: string;
  has_exit_code: boolean;
  exit_code: number;
  signal: string;
  reason: string;
  attempt: number;
  restarts: number;
  placed_at_ms: number;
  started_at_ms: number;
  finished_at_ms: number;
  cpu_seconds: number;
  peak_memory_bytes: number;
  /** The job version the attempt runs (0: never placed). */
  version: number;
  /** `passing` / `failing`; empty: no check or no result yet. */
  health: string;
  health_since_ms: number;
}

export interface WireTaskCounts {
  pending: number;
  placed: number;
  running: number;
  succeeded: number;
  failed: number;
  killed: number;
  lost: number;
}

export interface WireJobView {
  id: string;
  spec: WireJobSpec;
  state: string;
  reason: string;
  ruled_out: { filter: string; machines: number }[];
  kill_requested: boolean;
  submitted_at_ms: number;
  scheduler: string;
  tasks: WireTaskView[];
  task_counts: WireTaskCounts;
  version: number;
  /** null: no rolling update ran. */
  deployment: WireDeploymentView | null;
  /** A cron job: its runs so far and the next time; null for other jobs. */
  cron: WireCronView | null;
  /** A run of a cron job: its template and scheduled time; null for other jobs. */
  cron_run: { template_id: string; scheduled_at_ms: number } | null;
}

/** PlanJob's reply (see job-plan.ts). */
export interface WirePlanJobReply {
  create: { index: number; machine: string }[];
  replace: { index: number; machine: string }[];
  stop: { index: number; machine: string; reason: string }[];
  unplaced: number[];
  ruled_out: { filter: string; machines: number }[];
  reason: string;
  preempt: { task_id: string; job_id: string; machine: string; priority: number }[];
  replace_step: number;
  change: string;
  refused: string;
  version: number;
}

export interface WireMachineView {
  id: string;
  capacity: WireResources;
  allocated: WireResources;
  tasks: number;
  alive: boolean;
  schedulable: boolean;
  unschedulable_reason: string;
  attributes: Record<string, string>;
  hollow: boolean;
  enforcement_disabled: boolean;
  cordoned: boolean;
  cordon_reason: string;
  cordoned_at_ms: number;
  drain_deadline_ms: number;
}

export interface WireSchedulerStatsView {
  name: string;
  kind: string;
  conflict_mode: string;
  transaction_mode: string;
  transactions: number;
  transactions_failed: number;
  claims_committed: number;
  claims_conflicted: number;
  conflict_fraction: number;
  busyness: number;
  jobs_placed: number;
  jobs_abandoned: number;
  wait_first_attempt_mean_ms: number;
  wait_fully_placed_mean_ms: number;
  spurious_retries: number;
  updated_at_ms: number;
}

// ---- requests, as decoded (defaults filled in) ----------------------------------------------

/** `omega.v1.Role` names of cell-state's roles. */
export const ROLE_WIRE: Readonly<Record<Role, string>> = { read: 'ROLE_READ', submit: 'ROLE_SUBMIT', admin: 'ROLE_ADMIN' };

/** `omega.v1.TokenInfo`. */
export interface WireTokenInfo {
  name: string;
  namespaces: string[];
  role: string;
  expires_at_ms: number;
  created_at_ms: number;
}

/** `omega.v1.Quota` as proto-loader gives it (64-bit integers as numbers; 0: no limit). */
export interface WireQuota {
  cpu_millis: number;
  memory_bytes: number;
  tasks: number;
}

/** `omega.v1.NamespaceView`. */
export interface WireNamespaceView {
  name: string;
  has_quota: boolean;
  quota: WireQuota | null;
  used: WireQuota | null;
  created_at_ms: number;
}

export interface SubmitJobRequest {
  job: WireJobSpec | null;
  request_id: string;
}
export interface JobIdRequest {
  job_id: string;
}
export interface ListJobsRequest {
  states: (string | number)[];
  limit: number;
  include_tasks: boolean;
  /** Empty: every namespace the caller may read. */
  namespace: string;
  /** Non-empty: only the runs of this cron job. */
  cron_of?: string;
}
export interface GetTaskLogsRequest {
  job_id: string;
  index: number;
  stream: string | number;
  attempt: number;
  follow?: boolean;
}

// ---- enum names ----------------------------------------------------------------------------

/** Enum name → vocabulary value, for the values a request may carry (UNSPECIFIED handled by callers). */
export const JOB_KIND_NAMES: Readonly<Record<string, JobKind>> = { JOB_KIND_BATCH: 'batch', JOB_KIND_SERVICE: 'service' };
export const COMMIT_MODE_NAMES: Readonly<Record<string, CommitMode>> = {
  COMMIT_MODE_UNSPECIFIED: 'default',
  COMMIT_MODE_INCREMENTAL: 'incremental',
  COMMIT_MODE_ALL_OR_NOTHING: 'all-or-nothing',
};
export const CONSTRAINT_OPERATOR_NAMES: Readonly<Record<string, ConstraintOperator>> = {
  CONSTRAINT_OPERATOR_EQUALS: 'equals',
  CONSTRAINT_OPERATOR_IN: 'in',
  CONSTRAINT_OPERATOR_NOT_IN: 'not-in',
  CONSTRAINT_OPERATOR_SPREAD: 'spread',
  CONSTRAINT_OPERATOR_MAX_PER_MACHINE: 'max-per-machine',
};
export const RESTART_POLICY_KIND_NAMES: Readonly<Record<string, RestartPolicyKind>> = {
  RESTART_POLICY_KIND_UNSPECIFIED: 'default',
  RESTART_POLICY_KIND_NEVER: 'never',
  RESTART_POLICY_KIND_ON_FAILURE: 'on-failure',
  RESTART_POLICY_KIND_ALWAYS: 'always',
};

/** The inverse of a name table: vocabulary value → enum name. */
function inverse<V extends string>(table: Readonly<Record<string, V>>): Readonly<Record<V, string>> {
  return Object.fromEntries(Object.entries(table).map(([name, value]) => [value, name])) as Record<V, string>;
}

export const JOB_KIND_WIRE = inverse(JOB_KIND_NAMES);
export const COMMIT_MODE_WIRE = inverse(COMMIT_MODE_NAMES);
export const CONSTRAINT_OPERATOR_WIRE = inverse(CONSTRAINT_OPERATOR_NAMES);
export const RESTART_POLICY_KIND_WIRE = inverse(RESTART_POLICY_KIND_NAMES);
export const CRON_CONCURRENCY_NAMES: Readonly<Record<string, CronConcurrency>> = {
  CRON_CONCURRENCY_UNSPECIFIED: 'allow',
  CRON_CONCURRENCY_ALLOW: 'allow',
  CRON_CONCURRENCY_FORBID: 'forbid',
  CRON_CONCURRENCY_REPLACE: 'replace',
};
export const CRON_CONCURRENCY_WIRE: Readonly<Record<CronConcurrency, string>> = { allow: 'CRON_CONCURRENCY_ALLOW', forbid: 'CRON_CONCURRENCY_FORBID', replace: 'CRON_CONCURRENCY_REPLACE' };

export const JOB_VIEW_STATE_WIRE: Readonly<Record<JobState, string>> = {
  pending: 'JOB_VIEW_STATE_PENDING',
  running: 'JOB_VIEW_STATE_RUNNING',
  succeeded: 'JOB_VIEW_STATE_SUCCEEDED',
  failed: 'JOB_VIEW_STATE_FAILED',
  killed: 'JOB_VIEW_STATE_KILLED',
  unschedulable: 'JOB_VIEW_STATE_UNSCHEDULABLE',
  scheduled: 'JOB_VIEW_STATE_SCHEDULED',
};
export const JOB_VIEW_STATE_NAMES: Readonly<Record<string, JobState>> = Object.fromEntries(
  Object.entries(JOB_VIEW_STATE_WIRE).map(([state, name]) => [name, state as JobState]),
);

export const TASK_VIEW_STATE_WIRE: Readonly<Record<TaskState, string>> = {
  pending: 'TASK_VIEW_STATE_PENDING',
  placed: 'TASK_VIEW_STATE_PLACED',
  running: 'TASK_VIEW_STATE_RUNNING',
  succeeded: 'TASK_VIEW_STATE_SUCCEEDED',
  failed: 'TASK_VIEW_STATE_FAILED',
  killed: 'TASK_VIEW_STATE_KILLED',
  lost: 'TASK_VIEW_STATE_LOST',
};

/** The proto enum's numbering, for requests whose enum arrived as a number (proto-loader keeps unknown values numeric). */
export const JOB_VIEW_STATE_NUMBERS: readonly string[] = [
  'JOB_VIEW_STATE_UNSPECIFIED',
  ...(['pending', 'running', 'succeeded', 'failed', 'killed', 'unschedulable', 'scheduled'] as const).map((s) => JOB_VIEW_STATE_WIRE[s]),
];
