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
  /** Claims recorded on the machine; some may be dead (their task ended) until the next commit prunes them. */
  readonly claims: readonly Claim[];
  /** The machine key's etcd mod_revision: its sequence number. */
  readonly seq: number;
}

export type TaskState = 'pending' | 'placed' | 'running' | 'succeeded' | 'failed' | 'killed' | 'lost';
export const TASK_STATES: readonly TaskState[] = ['pending', 'placed', 'running', 'succeeded', 'failed', 'killed', 'lost'];

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
  /** Why it ended or is waiting: `oom-killed`, `preempted`, `machine-lost`, ... */
  readonly reason: string;
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
}

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
  readonly revision: number;
}

export type JobState = 'pending' | 'running' | 'succeeded' | 'failed' | 'killed' | 'unschedulable';

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
