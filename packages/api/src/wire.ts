/**
 * The one place that maps the API's enum names to the vocabulary of @omega/cell-state and back,
 * typed by the wire types generated from protos/ (wire/generated/api-types.ts: the messages as
 * `@grpc/proto-loader` hands them over with {@link PROTO_LOADER_OPTIONS}). The `Wire*` names
 * below are the server's names for those generated messages. Imports no runtime code, so clients
 * load it cheaply (through `@omega/api/wire`).
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
import type * as api from './wire/generated/api-types.js';

// The message shapes are generated from protos/ (wire/generated/api-types.ts); these are the
// names the server's code has always used for them.
export type WireResources = api.Resources;
export type WireConstraint = api.Constraint;
export type WireRestartPolicy = api.RestartPolicy;
export type WireTaskSpec = api.TaskSpec;
export type WireHealthCheck = api.HealthCheck;
export type WireJobSpec = api.JobSpec;
export type WireCronSchedule = api.CronSchedule;
export type WireCronView = api.CronView;
export type WireUpdateStrategy = api.UpdateStrategy;
export type WireDeploymentView = api.DeploymentView;
export type UpdateJobRequest = api.UpdateJobRequest;
export type WireJobVersionView = api.JobVersionView;
export type WireTaskView = api.TaskView;
export type WireTaskCounts = api.TaskCounts;
export type WireJobView = api.JobView;
export type WirePlanJobReply = api.PlanJobResponse;
export type WireMachineView = api.MachineView;
export type WireSchedulerStatsView = api.SchedulerStatsView;

// ---- enum names of the vocabulary ------------------------------------------------------------

/** `omega.v1.Role` names of cell-state's roles. */
export const ROLE_WIRE: Readonly<Record<Role, api.Role>> = { read: 'ROLE_READ', submit: 'ROLE_SUBMIT', admin: 'ROLE_ADMIN' };

export type WireTokenInfo = api.TokenInfo;
export type WireQuota = api.Quota;
export type WireNamespaceView = api.NamespaceView;
export type SubmitJobRequest = api.SubmitJobRequest;
export type JobIdRequest = api.GetJobRequest;
export type ListJobsRequest = api.ListJobsRequest;
export type GetTaskLogsRequest = api.GetTaskLogsRequest;

// ---- enum names ----------------------------------------------------------------------------

/** Enum name → vocabulary value, for the values a request may carry (UNSPECIFIED handled by callers). */
export const JOB_KIND_NAMES: Readonly<Partial<Record<api.JobKind, JobKind>>> = { JOB_KIND_BATCH: 'batch', JOB_KIND_SERVICE: 'service' };
export const COMMIT_MODE_NAMES: Readonly<Partial<Record<api.CommitMode, CommitMode>>> = {
  COMMIT_MODE_UNSPECIFIED: 'default',
  COMMIT_MODE_INCREMENTAL: 'incremental',
  COMMIT_MODE_ALL_OR_NOTHING: 'all-or-nothing',
};
export const CONSTRAINT_OPERATOR_NAMES: Readonly<Partial<Record<api.ConstraintOperator, ConstraintOperator>>> = {
  CONSTRAINT_OPERATOR_EQUALS: 'equals',
  CONSTRAINT_OPERATOR_IN: 'in',
  CONSTRAINT_OPERATOR_NOT_IN: 'not-in',
  CONSTRAINT_OPERATOR_SPREAD: 'spread',
  CONSTRAINT_OPERATOR_MAX_PER_MACHINE: 'max-per-machine',
};
export const RESTART_POLICY_KIND_NAMES: Readonly<Partial<Record<api.RestartPolicyKind, RestartPolicyKind>>> = {
  RESTART_POLICY_KIND_UNSPECIFIED: 'default',
  RESTART_POLICY_KIND_NEVER: 'never',
  RESTART_POLICY_KIND_ON_FAILURE: 'on-failure',
  RESTART_POLICY_KIND_ALWAYS: 'always',
};

/** The inverse of a name table: vocabulary value → enum name. */
function inverse<N extends string, V extends string>(table: Readonly<Partial<Record<N, V>>>): Readonly<Record<V, N>> {
  return Object.fromEntries(Object.entries(table).map(([name, value]) => [value, name])) as Record<V, N>;
}

export const JOB_KIND_WIRE = inverse(JOB_KIND_NAMES);
export const COMMIT_MODE_WIRE = inverse(COMMIT_MODE_NAMES);
export const CONSTRAINT_OPERATOR_WIRE = inverse(CONSTRAINT_OPERATOR_NAMES);
export const RESTART_POLICY_KIND_WIRE = inverse(RESTART_POLICY_KIND_NAMES);
export const CRON_CONCURRENCY_NAMES: Readonly<Partial<Record<api.CronConcurrency, CronConcurrency>>> = {
  CRON_CONCURRENCY_UNSPECIFIED: 'allow',
  CRON_CONCURRENCY_ALLOW: 'allow',
  CRON_CONCURRENCY_FORBID: 'forbid',
  CRON_CONCURRENCY_REPLACE: 'replace',
};
export const CRON_CONCURRENCY_WIRE: Readonly<Record<CronConcurrency, api.CronConcurrency>> = { allow: 'CRON_CONCURRENCY_ALLOW', forbid: 'CRON_CONCURRENCY_FORBID', replace: 'CRON_CONCURRENCY_REPLACE' };

export const JOB_VIEW_STATE_WIRE: Readonly<Record<JobState, api.JobViewState>> = {
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

export const TASK_VIEW_STATE_WIRE: Readonly<Record<TaskState, api.TaskViewState>> = {
  pending: 'TASK_VIEW_STATE_PENDING',
  placed: 'TASK_VIEW_STATE_PLACED',
  running: 'TASK_VIEW_STATE_RUNNING',
  succeeded: 'TASK_VIEW_STATE_SUCCEEDED',
  failed: 'TASK_VIEW_STATE_FAILED',
  killed: 'TASK_VIEW_STATE_KILLED',
  lost: 'TASK_VIEW_STATE_LOST',
};

/** The proto enum's numbering, for requests whose enum arrived as a number (proto-loader keeps unknown values numeric). */
export const JOB_VIEW_STATE_NUMBERS: readonly api.JobViewState[] = [
  'JOB_VIEW_STATE_UNSPECIFIED',
  ...(['pending', 'running', 'succeeded', 'failed', 'killed', 'unschedulable', 'scheduled'] as const).map((s) => JOB_VIEW_STATE_WIRE[s]),
];
