/**
 * The cell's vocabulary (see the package README). Records that cross packages are readonly;
 * resources are integers; ids are branded strings so a task id is never passed as a machine id.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type MachineId = Brand<string, 'MachineId'>;
export type JobId = Brand<string, 'JobId'>;
/** `"<job id>/<index>"`. */
export type TaskId = Brand<string, 'TaskId'>;
export type ClaimId = Brand<string, 'ClaimId'>;

export const machineId = (id: string): MachineId => id as MachineId;
export const jobId = (id: string): JobId => id as JobId;
export const claimId = (id: string): ClaimId => id as ClaimId;
export function taskId(job: JobId | string, index: number): TaskId {
  return `${job}/${index}` as TaskId;
}
/** Splits a task id into its job id and index; `undefined` when it is not of the form `job/index`. */
export function parseTaskId(id: string): { jobId: JobId; index: number } | undefined {
  const slash = id.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const index = Number(id.slice(slash + 1));
  if (!Number.isSafeInteger(index) || index < 0) return undefined;
  return { jobId: id.slice(0, slash) as JobId, index };
}

/** Resources in integers: CPU in millicores, memory in bytes. */
export interface Resources {
  readonly cpuMillis: number;
  readonly memoryBytes: number;
}

export const NO_RESOURCES: Resources = Object.freeze({ cpuMillis: 0, memoryBytes: 0 });

/**
 * How a commit decides that a claim conflicts (Omega's names):
 * - `sequence-numbers`: the claim's machine changed after the snapshot the claim was made on;
 * - `resource-fit`: the machine, as it is now, cannot fit the claim.
 */
export type ConflictMode = 'sequence-numbers' | 'resource-fit';
export const CONFLICT_MODES: readonly ConflictMode[] = ['sequence-numbers', 'resource-fit'];

/**
 * How the claims of one transaction commit:
 * - `incremental`: every claim that does not conflict commits;
 * - `all-or-nothing`: all commit or none does (gang scheduling).
 */
export type TransactionMode = 'incremental' | 'all-or-nothing';
export const TRANSACTION_MODES: readonly TransactionMode[] = ['incremental', 'all-or-nothing'];

/** A task's resources on one machine. Live while its task is at the claim's attempt and not terminal. */
export interface Claim {
  readonly id: ClaimId;
  readonly taskId: TaskId;
  readonly machineId: MachineId;
  /** The task attempt this claim places (1 for the first placement). */
  readonly attempt: number;
  readonly resources: Resources;
  readonly priority: number;
  /** Scheduler instance that committed the claim. */
  readonly scheduler: string;
}

export interface Machine {
  readonly id: MachineId;
  readonly capacity: Resources;
  readonly attributes: Readonly<Record<string, string>>;
  readonly schedulable: boolean;
  readonly unschedulableReason: string;
  /** The agent runs tasks without cgroup limits (it said so at registration). */
  readonly enforcementDisabled: boolean;
  readonly hollow: boolean;
  /** An operator's cordon (`omega cordon` / `omega drain`); absent: not cordoned. Kept across registrations. */
  readonly cordon?: MachineCordon;
  /** Claims recorded on the machine; some may be dead (their task ended) until the next commit prunes them. */
  readonly claims: readonly Claim[];
  /** The machine key's etcd mod_revision: its sequence number. */
  readonly seq: number;
}

/**
 * A cordoned machine takes no new placements; its running tasks stay. A draining one (a drain
 * deadline) also has its tasks moved off: services' instances replaced within their update
 * budget, batch tasks let run until the deadline and then stopped (`machine-drained`) and placed
 * again elsewhere.
 */
export interface MachineCordon {
  readonly reason: string;
  readonly sinceMs: number;
  /** When a drain stops the batch tasks still running (ms since the epoch); 0: cordoned only. */
  readonly drainDeadlineMs: number;
}

/**
 * Whether new claims may be committed on the machine: its agent keeps it schedulable and no
 * operator cordoned it. The one rule the scheduler loop, the PrivateCell and the commit apply.
 */
export function acceptsPlacements(machine: Machine): boolean {
  return machine.schedulable && machine.cordon === undefined;
}

export type TaskState = 'pending' | 'placed' | 'running' | 'succeeded' | 'failed' | 'killed' | 'lost';
export const TASK_STATES: readonly TaskState[] = ['pending', 'placed', 'running', 'succeeded', 'failed', 'killed', 'lost'];

/**
 * Why a scheduler stopped a task that it then places again at once as a new attempt, not the
 * task's doing and not a restart (no backoff, not counted against `maxRestarts`):
 * `updated` (a rolling update replaced it), `machine-drained` (moved off a draining machine; a
 * batch job whose restart policy says `never` explicitly fails instead), `scaled-down` (its index
 * left the job; placed again only if the job is scaled back up).
 */
export const TASK_REPLACED_REASONS: readonly string[] = ['updated', 'machine-drained', 'scaled-down'];
/** Reason of a task stopped to move it off a draining machine (`omega drain`). */
export const DRAINED_REASON = 'machine-drained';
/** Reason of a task stopped because its index is no longer within the job's instances. */
export const SCALED_DOWN_REASON = 'scaled-down';
/** Reason of a task stopped by a rolling update, to be placed again at the job's current version. */
export const UPDATED_REASON = 'updated';

/** Whether a terminal task was stopped by its scheduler to be replaced (see {@link TASK_REPLACED_REASONS}). */
export function isReplacedTask(task: Pick<Task, 'state' | 'reason'>): boolean {
  return task.state === 'killed' && TASK_REPLACED_REASONS.includes(task.reason);
}

/** Longest {@link Task.message}: an agent cuts a longer explanation to this many characters before it reports. */
export const MAX_TASK_MESSAGE_LENGTH = 512;

/** Terminal states are final for an attempt: the claim of that attempt never counts again. */
export function isTerminal(state: TaskState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'killed' || state === 'lost';
}

/** One task's placement and observed state: `tasks/<job>/<index>`. Absent until first placed. */
export interface Task {
  readonly id: TaskId;
  readonly jobId: JobId;
  readonly index: number;
  readonly attempt: number;
  readonly claimId: ClaimId;
  readonly machineId: MachineId;
  readonly scheduler: string;
  readonly state: TaskState;
  /** Why it ended or is waiting: `oom-killed`, `disk-exceeded`, `preempted`, `machine-lost`, `health-check-failed`, ... */
  readonly reason: string;
  /**
   * Why it ended, in words, when its agent can say more than `reason` (`could not start the
   * task: exec /bin/nosuch: No such file or directory` for `start-failed`): at most {@link MAX_TASK_MESSAGE_LENGTH}
   * characters, never an env or secret value; `''` when there is nothing to add. Final with
   * `reason`: a terminal record keeps both, and a new attempt starts with `''`.
   */
  readonly message: string;
  /** Set when the process exited with a code. */
  readonly exitCode?: number;
  readonly signal: string;
  readonly pid: number;
  readonly placedAtMs: number;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly cpuSeconds: number;
  readonly peakMemoryBytes: number;
  readonly resources: Resources;
  readonly priority: number;
  /** Attempts of this task that ended and were replaced. */
  readonly restarts: number;
  /** Restart backoff: not to be placed again before this time (ms since the epoch). */
  readonly notBeforeMs: number;
  /**
   * The attempt's health check result as its agent last reported it (written only when it
   * changes); absent: the job has no check, or no check has run yet for this attempt.
   */
  readonly health?: HealthState;
  /** When the current `health` began (ms since the epoch); present with `health`. */
  readonly healthSinceMs?: number;
  /**
   * The job version this attempt runs (the job's {@link Job.version} when it was placed); absent
   * in records placed before versions existed (read as version 1, see {@link taskVersion}).
   */
  readonly version?: number;
  /** The task key's mod_revision. */
  readonly revision: number;
}

/** The namespace every cell has without a record; a job submitted without one belongs to it. */
export const DEFAULT_NAMESPACE = 'default';

export type JobKind = 'batch' | 'service';
export type CommitMode = 'default' | TransactionMode;
export type ConstraintOperator = 'equals' | 'in' | 'not-in' | 'spread' | 'max-per-machine';
export const CONSTRAINT_OPERATORS: readonly ConstraintOperator[] = ['equals', 'in', 'not-in', 'spread', 'max-per-machine'];

export interface Constraint {
  readonly attribute: string;
  readonly operator: ConstraintOperator;
  readonly values: readonly string[];
  /** For `max-per-machine`. */
  readonly limit: number;
}

export type RestartPolicyKind = 'default' | 'never' | 'on-failure' | 'always';

export interface RestartPolicy {
  readonly kind: RestartPolicyKind;
  readonly maxRestarts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

/** A task's network: the machine's (`host`, the default) or only loopback (`none`). */
export type TaskNetwork = 'host' | 'none';
export const TASK_NETWORKS: readonly TaskNetwork[] = ['host', 'none'];
/** Machine attribute an agent sets to `true` when it can run tasks with `network: none`. */
export const NETWORK_NONE_ATTRIBUTE = 'omega.isolation.network-none';
/** Prefix of the machine attribute (`omega.users.<name>=true`) an agent sets for each user its `--allow-users` lets jobs run as. */
export const USER_ATTRIBUTE_PREFIX = 'omega.users.';

/** A health check's result: the last check passed, or it failed (see health-check.ts). */
export type HealthState = 'passing' | 'failing';
export const HEALTH_STATES: readonly HealthState[] = ['passing', 'failing'];

/**
 * How an agent checks that a task's instance works: exactly one of `command` (argv run inside
 * the task's cgroup, namespaces and uid; exit 0 passes), `http` (GET `path` on 127.0.0.1:`port`;
 * 2xx/3xx passes) or `tcp` (a connect to 127.0.0.1:`port` passes). Timings absent or 0 take the
 * defaults of health-check.ts (`HEALTH_CHECK_DEFAULTS`). After `failureThreshold` consecutive
 * failures the agent stops the task: `failed`, reason `health-check-failed`.
 */
export interface HealthCheck {
  readonly command?: readonly string[];
  readonly http?: { readonly port: number; readonly path: string };
  readonly tcp?: { readonly port: number };
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  /** No check runs until this long after the task started. */
  readonly gracePeriodMs?: number;
  readonly failureThreshold?: number;
  /** Hollow machines: the check fails (the task then ends `health-check-failed`) instead of passing. */
  readonly hollowFailing?: boolean;
}

export interface TaskSpec {
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly resources: Resources;
  /** Hollow machines: how long the task "runs". */
  readonly runDurationMs: number;
  /** Hollow machines: end `failed` instead of `succeeded`. */
  readonly hollowFail: boolean;
  readonly pidsLimit: number;
  /**
   * Cap of each of the task's stdout and stderr log files on its agent (one rotated file more is
   * kept); absent or 0: the agent's `--log-cap`, which is also the most a job gets.
   */
  readonly logLimitBytes?: number;
  /**
   * Most bytes the task's work dir may have allocated on disk (sparse files count what they use);
   * past it the agent kills the task: `failed`, reason `disk-exceeded`. Absent or 0: the agent's
   * `--disk-limit`, which is also the most a job gets.
   */
  readonly diskLimitBytes?: number;
  /**
   * The task's network: absent or `host`, the machine's own; `none`, a network namespace of its
   * own holding only loopback (it reaches nothing, not even the cell). `none` places the job
   * only on machines whose agent can give it (attribute {@link NETWORK_NONE_ATTRIBUTE}).
   */
  readonly network?: TaskNetwork;
  /**
   * Run the task as this named user of its machine (a POSIX user name, never `root`) instead of
   * the agent's choice (a uid of its own per attempt). Places the job only on machines whose
   * agent allows that user (attribute `omega.users.<name>=true`, see {@link USER_ATTRIBUTE_PREFIX}).
   * Tasks of different jobs with the same user share its uid.
   */
  readonly user?: string;
  /**
   * The names (sorted, unique) of the job's secret env entries; absent or empty: none. The
   * values are never part of the spec: they are stored apart, at `keys.secret(jobId)` (a
   * {@link SecretEnv} outside the mirrored cell prefix), written with the job in one transaction
   * and read only by the agent that starts the task (see secrets.ts).
   */
  readonly secretEnvNames?: readonly string[];
  /** How the agent checks the task's health; absent: no check (`Task.health` stays absent). */
  readonly healthCheck?: HealthCheck;
}

/** A job's secret env values by name: what `/omega-secrets/<cell>/<job>` holds. Never logged. */
export type SecretEnv = Readonly<Record<string, string>>;

export interface JobSpec {
  readonly name: string;
  /**
   * The namespace the job belongs to (a DNS label; {@link DEFAULT_NAMESPACE} when the submitter
   * gave none). Quotas and tokens are per namespace; it must exist when the job is submitted.
   */
  readonly namespace: string;
  readonly kind: JobKind;
  readonly priority: number;
  readonly instances: number;
  readonly commitMode: CommitMode;
  readonly task: TaskSpec;
  readonly constraints: readonly Constraint[];
  readonly restartPolicy: RestartPolicy;
  /**
   * How long the job's records (job, tasks, status and owner records) are kept after it
   * finished (succeeded, failed or killed), in ms; absent or 0 means the cell's default
   * (the schedulers' `--job-retention`, 24 h by default).
   */
  readonly retentionMs?: number;
  /**
   * How a service replaces its instances when its task spec changes (a rolling update, see
   * scheduler-core's deployment.ts); absent: {@link DEFAULT_UPDATE_STRATEGY}. Batch jobs ignore it.
   */
  readonly update?: UpdateStrategy;
  /**
   * A cron job: the job is a template, and a run of it (a job of its own, {@link Job.cronRun})
   * is created at each time the schedule names (see cron-schedule.ts). Batch jobs only.
   */
  readonly schedule?: CronSchedule;
}

/** What a cron job does at a scheduled time while an earlier run has not ended. */
export type CronConcurrency = 'allow' | 'forbid' | 'replace';
export const CRON_CONCURRENCY: readonly CronConcurrency[] = ['allow', 'forbid', 'replace'];

/** When a cron job runs (Kubernetes CronJob's fields). */
export interface CronSchedule {
  /** A cron expression: 5 fields (minute precision) or 6 (seconds first), croner's syntax. */
  readonly cron: string;
  /** An IANA time zone the expression is read in; empty: UTC. */
  readonly timeZone: string;
  /** `allow` (default): runs may overlap; `forbid`: a time is skipped while a run is live; `replace`: the live run is killed. */
  readonly concurrency: CronConcurrency;
  /** A time missed (no scheduler was running it) still runs this late; older ones are skipped and counted. 0: the default. */
  readonly startingDeadlineMs: number;
}

/** A service's rolling update policy. */
export interface UpdateStrategy {
  /** How many of `instances` may be stopped (or not yet healthy) because of the update at once; at least 1. */
  readonly maxUnavailable: number;
  /** Extra instances started before old ones stop: only 0 is supported (a task record holds one attempt). */
  readonly maxSurge: number;
  /** How long a new instance must be healthy (running, and passing its check if it has one) to count. */
  readonly minHealthyTimeMs: number;
  /** An instance not healthy this long after it was placed fails the update. */
  readonly healthyDeadlineMs: number;
  /** A failed update returns the job to the last version whose update succeeded (as a new version). */
  readonly autoRollback: boolean;
}

/** Nomad's defaults: one at a time, healthy for 10 s, 5 min to get there, no automatic rollback. */
export const DEFAULT_UPDATE_STRATEGY: UpdateStrategy = Object.freeze({
  maxUnavailable: 1,
  maxSurge: 0,
  minHealthyTimeMs: 10_000,
  healthyDeadlineMs: 300_000,
  autoRollback: false,
});

/** How many versions of a job are kept (the current one included) for history and rollback. */
export const JOB_HISTORY_LIMIT = 10;

/**
 * A namespace's limits (or its use): CPU, memory and live tasks. In a quota, 0 means no limit on
 * that resource.
 */
export interface Quota {
  readonly cpuMillis: number;
  readonly memoryBytes: number;
  readonly tasks: number;
}

/** `namespaces/<name>`: a namespace and its quota. "default" exists without a record. */
export interface Namespace {
  readonly name: string;
  /** Absent: no quota. */
  readonly quota?: Quota;
  readonly createdAtMs: number;
  /** Jobs admitted since the record exists: every admission rewrites the record (see quota.ts). */
  readonly admissions: number;
  /** The record's mod_revision (0: "default" without a record). */
  readonly revision: number;
}

export type DesiredState = 'running' | 'killed';

/** `jobs/<id>`: the job as submitted and its desired state. */
export interface Job {
  readonly id: JobId;
  readonly spec: JobSpec;
  readonly desired: DesiredState;
  readonly submittedAtMs: number;
  readonly requestId: string;
  /** 1 at submit, + 1 per stored update, scale or rollback; absent in older records (1). */
  readonly version?: number;
  /**
   * The first version with the current task spec and constraints: an instance placed at an
   * earlier version runs an older spec (a rolling update replaces it). Absent: 1.
   */
  readonly taskVersion?: number;
  /** When the current version was stored; absent: `submittedAtMs`. */
  readonly versionAtMs?: number;
  /** Who stored the current version (a token name, `scheduler` for an automatic rollback). */
  readonly versionBy?: string;
  /** What the current version changed, in one line (`submitted`, `instances 2 -> 4`, ...). */
  readonly versionChange?: string;
  /**
   * After a rollback: the versions whose instances run the current task spec too (the versions
   * the rollback returned to), so a rolling update leaves them alone. Absent: none.
   */
  readonly sameTaskVersions?: { readonly from: number; readonly to: number };
  /** A run of a cron job: the template it was made from and the scheduled time it is the run of. */
  readonly cronRun?: CronRun;
  readonly revision: number;
}

/** Which cron job and scheduled time a run is: its identity (one run per scheduled time). */
export interface CronRun {
  readonly templateId: JobId;
  readonly scheduledAtMs: number;
}

/** A cron job's progress, kept in its status by its owning scheduler. */
export interface CronState {
  /** The latest scheduled time handled (a run made, or skipped); 0: none yet. */
  readonly lastScheduledAtMs: number;
  readonly runs: number;
  /** Times skipped: missed past the starting deadline, `forbid` with a live run, or refused by the quota. */
  readonly skipped: number;
  readonly lastSkipReason: string;
  /** The next scheduled time (0: the expression names no future time). */
  readonly nextAtMs: number;
}

/** A job's version number (1 for records written before versions existed). */
export function jobVersion(job: Pick<Job, 'version'>): number {
  return job.version !== undefined && job.version > 0 ? job.version : 1;
}

/** The version at which the job's current task spec began (1 when the record does not say). */
export function jobTaskVersion(job: Pick<Job, 'taskVersion'>): number {
  return job.taskVersion !== undefined && job.taskVersion > 0 ? job.taskVersion : 1;
}

/** The version a task attempt runs (1 for records placed before versions existed). */
export function taskVersion(task: Pick<Task, 'version'>): number {
  return task.version !== undefined && task.version > 0 ? task.version : 1;
}

/**
 * Whether a task attempt runs the job's current task spec and constraints: placed at or after
 * the job's task version, or at one of the versions a rollback returned to.
 */
export function runsCurrentTask(job: Pick<Job, 'taskVersion' | 'sameTaskVersions'>, task: Pick<Task, 'version'>): boolean {
  const v = taskVersion(task);
  if (v >= jobTaskVersion(job)) return true;
  const same = job.sameTaskVersions;
  return same !== undefined && v >= same.from && v <= same.to;
}

/** `history/<job>/<version>`: one version of a job, kept for history and rollback. */
export interface JobVersion {
  readonly version: number;
  readonly spec: JobSpec;
  readonly taskVersion: number;
  readonly atMs: number;
  readonly by: string;
  readonly change: string;
}

export type DeploymentState = 'running' | 'succeeded' | 'failed' | 'rolled-back';
export const DEPLOYMENT_STATES: readonly DeploymentState[] = ['running', 'succeeded', 'failed', 'rolled-back'];

/** A service's rolling update to one version, written by its owning scheduler with the job status. */
export interface Deployment {
  readonly version: number;
  readonly state: DeploymentState;
  /** Instances at the version and healthy. */
  readonly healthy: number;
  /** Instances placed at the version. */
  readonly updated: number;
  readonly total: number;
  /** Why it failed (or was rolled back). */
  readonly reason: string;
  readonly startedAtMs: number;
  /** When the healthy count last grew (or the deployment started): the healthy deadline counts from it. */
  readonly progressAtMs: number;
  /** The last version whose deployment succeeded (0: none known). */
  readonly lastGoodVersion: number;
}

/** `scheduled`: a cron job's template (its runs are jobs of their own). */
export type JobState = 'pending' | 'running' | 'succeeded' | 'failed' | 'killed' | 'unschedulable' | 'scheduled';

/** `status/<job id>`: what the owning scheduler says about a job. */
export interface JobStatus {
  readonly jobId: JobId;
  readonly state: JobState;
  readonly reason: string;
  /** How many machines each filter ruled out at the last attempt that could not place everything. */
  readonly ruledOut: readonly { readonly filter: string; readonly machines: number }[];
  readonly attempts: number;
  readonly scheduler: string;
  readonly updatedAtMs: number;
  readonly firstAttemptAtMs: number;
  readonly fullyPlacedAtMs: number;
  /** The last rolling update of a service; absent: none ran. */
  readonly deployment?: Deployment;
  /** A cron job's runs so far and its next time; absent for other jobs. */
  readonly cron?: CronState;
  readonly revision: number;
}

/** `owners/<job id>`: the scheduler instance working on a job, bound to its lease. */
export interface Owner {
  readonly jobId: JobId;
  readonly scheduler: string;
  readonly kind: string;
  readonly sinceMs: number;
  readonly lease: string;
  readonly revision: number;
}

/** `alive/<machine id>`: an agent's heartbeat, bound to its lease. */
export interface Alive {
  readonly machineId: MachineId;
  readonly agent: string;
  readonly startedAtMs: number;
  /** `host:port` where the agent serves task logs; empty when it serves none. */
  readonly logAddress: string;
  readonly lease: string;
}

/** `schedulers/<instance>`: a scheduler's published metrics. */
export interface SchedulerStats {
  readonly name: string;
  readonly kind: string;
  readonly conflictMode: string;
  readonly transactionMode: string;
  readonly transactionsOk: number;
  readonly transactionsFailed: number;
  readonly claimsCommitted: number;
  readonly claimsConflicted: number;
  readonly busyUsefulMs: number;
  readonly busyWastedMs: number;
  readonly busyNoFitMs: number;
  readonly elapsedMs: number;
  readonly jobsPlaced: number;
  readonly jobsAbandoned: number;
  readonly waitFirstAttemptMeanMs: number;
  readonly waitFirstAttemptP90Ms: number;
  readonly waitFullyPlacedMeanMs: number;
  readonly waitFullyPlacedP90Ms: number;
  readonly spuriousRetries: number;
  readonly updatedAtMs: number;
}
