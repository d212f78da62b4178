/**
 * The scheduling loop's settings: typed, defaulted and validated once, when a Scheduler is made,
 * with an error that names the bad setting. Process flags (flags.ts) map onto these one to one.
 */
import { CONFLICT_MODES, TRANSACTION_MODES, type ConflictMode, type JobKind, type TransactionMode } from '@omega/cell-state';
import { MIN_RESTART_BACKOFF_MS } from './job-progress.js';

/** An artificial think time: `jobMs + taskMs x tasks to place`. */
export interface ThinkTime {
  readonly jobMs: number;
  readonly taskMs: number;
}

/** A setting was out of range or of the wrong type; `setting` names it. */
export class SettingsError extends Error {
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`${setting}: ${problem}`);
    this.name = 'SettingsError';
  }
}

export interface SchedulerSettings {
  /** How commits detect conflicts. Default `resource-fit`. */
  readonly conflictMode: ConflictMode;
  /**
   * Transaction mode for jobs whose commit mode is `default`; `undefined` means the policy's
   * `defaultTransactionMode`. A job's own `incremental` / `all-or-nothing` always wins.
   */
  readonly transactionMode: TransactionMode | undefined;
  /** Artificial think time per attempt: `thinkTimeJobMs + thinkTimeTaskMs x tasks to place`. Default 0. */
  readonly thinkTimeJobMs: number;
  readonly thinkTimeTaskMs: number;
  /** Think time for jobs of one kind, overriding the two above (a monolithic scheduler in the simulator). */
  readonly thinkTimeByKind: Readonly<Partial<Record<JobKind, ThinkTime>>>;
  /**
   * Which job kinds this instance takes; `undefined` means the policy's kind. A monolithic
   * scheduler (one instance for every job) takes both, with a policy that handles both.
   */
  readonly jobKinds: readonly JobKind[] | undefined;
  /** How long a machine's `alive/<id>` key must be absent before its tasks are marked lost. Default 5 s. */
  readonly machineLossGraceMs: number;
  /**
   * How long a job stays unowned before this instance takes it although rendezvous hashing
   * assigns it to another live instance (which may be busy or dead). Default 1 s.
   */
  readonly ownershipGraceMs: number;
  /** Most owned jobs waiting for placement at once; more are left for other instances. Default 256. */
  readonly maxQueuedJobs: number;
  /** A job is abandoned after this many attempts in total (BENCH.md: 1,000)... */
  readonly maxAttempts: number;
  /** ...or this many attempts in a row that committed nothing (BENCH.md: 100). */
  readonly maxAttemptsWithoutProgress: number;
  /** Delay before retrying a job whose attempt committed nothing: doubles per such attempt, jittered. */
  readonly retryBackoffInitialMs: number;
  readonly retryBackoffMaxMs: number;
  /** An abandoned job is tried again after this long; 0 = never (as in Omega's simulator). */
  readonly abandonedRetryMs: number;
  /**
   * Restart backoff for jobs whose restart policy leaves it at 0. Defaults 1 s and 60 s; the
   * initial one may not be below 1 s (`MIN_RESTART_BACKOFF_MS`, the floor every restart obeys).
   */
  readonly restartBackoffInitialMs: number;
  readonly restartBackoffMaxMs: number;
  /**
   * Crash-loop cap: a job makes at most `max(this, instances)` restarts in any minute; more wait
   * (the status says `restart rate limit: N restarts in the last minute`). Default 10.
   */
  readonly maxRestartsPerJobPerMinute: number;
  /**
   * Finished jobs (succeeded, failed, killed) are deleted this long after their final status, by
   * the janitor (janitor.ts), unless the job sets its own `retentionMs`. 0 = never delete (the
   * default here, for the simulator and tests; the scheduler processes default to 24 h).
   */
  readonly jobRetentionMs: number;
  /** Request records older than this are deleted (by one instance, at least every minute); 0 = never (processes: 24 h). */
  readonly requestRetentionMs: number;
  /** Most jobs the janitor deletes in one maintenance step. Default 100. */
  readonly maxDeletionsPerStep: number;
  /** Stats are published to `schedulers/<name>` this often (clock time); 0 = only when asked. Default 1 s. */
  readonly statsIntervalMs: number;
  /** Pause after a store error before `run()` tries again. Default 1 s. */
  readonly errorBackoffMs: number;
  /**
   * Most jobs one attempt places and commits together (one PrivateCell, one commit of one
   * incremental transaction per job, one wait for the mirror): under a queue of small jobs the
   * per-commit round trips, not placement, bound the rate. Only incremental jobs share an
   * attempt; an all-or-nothing job is always attempted alone. Default 1 (a job per attempt, as
   * in Omega's simulator); the scheduler processes default to 32.
   */
  readonly maxJobsPerCommit: number;
  /** ...and at most this many tasks to place among them (the first job always goes, whatever its size). Default 1,000. */
  readonly maxClaimsPerCommit: number;
}

export const DEFAULT_SETTINGS: SchedulerSettings = Object.freeze({
  conflictMode: 'resource-fit',
  transactionMode: undefined,
  thinkTimeJobMs: 0,
  thinkTimeTaskMs: 0,
  thinkTimeByKind: Object.freeze({}),
  jobKinds: undefined,
  machineLossGraceMs: 5_000,
  ownershipGraceMs: 1_000,
  maxQueuedJobs: 256,
  maxAttempts: 1_000,
  maxAttemptsWithoutProgress: 100,
  retryBackoffInitialMs: 10,
  retryBackoffMaxMs: 1_000,
  abandonedRetryMs: 0,
  restartBackoffInitialMs: 1_000,
  restartBackoffMaxMs: 60_000,
  maxRestartsPerJobPerMinute: 10,
  jobRetentionMs: 0,
  requestRetentionMs: 0,
  maxDeletionsPerStep: 100,
  statsIntervalMs: 1_000,
  errorBackoffMs: 1_000,
  maxJobsPerCommit: 1,
  maxClaimsPerCommit: 1_000,
});

type NumericSetting = {
  [K in keyof SchedulerSettings]: SchedulerSettings[K] extends number ? K : never;
}[keyof SchedulerSettings];

/** Settings that must be integers >= 1 (the others are integers >= 0). */
const AT_LEAST_ONE: ReadonlySet<NumericSetting> = new Set(['maxQueuedJobs', 'maxAttempts', 'maxAttemptsWithoutProgress', 'maxDeletionsPerStep', 'maxRestartsPerJobPerMinute', 'maxJobsPerCommit', 'maxClaimsPerCommit']);

/**
 * Fills defaults and validates. Throws {@link SettingsError} naming the first bad setting.
 * Time settings are non-negative integers of milliseconds (think times may be fractional: the
 * simulator models 5 ms per task exactly, and a Clock can sleep for fractions).
 */
export function resolveSettings(input: Partial<SchedulerSettings> = {}): SchedulerSettings {
  const s: SchedulerSettings = { ...DEFAULT_SETTINGS, ...stripUndefined(input) };
  if (!CONFLICT_MODES.includes(s.conflictMode)) {
    throw new SettingsError('conflictMode', `must be one of ${CONFLICT_MODES.join(', ')}, got ${JSON.stringify(s.conflictMode)}`);
  }
  if (s.transactionMode !== undefined && !TRANSACTION_MODES.includes(s.transactionMode)) {
    throw new SettingsError('transactionMode', `must be one of ${TRANSACTION_MODES.join(', ')}, got ${JSON.stringify(s.transactionMode)}`);
  }
  for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof SchedulerSettings)[]) {
    const value = s[key];
    if (typeof DEFAULT_SETTINGS[key] !== 'number') continue;
    const fractional = key === 'thinkTimeJobMs' || key === 'thinkTimeTaskMs';
    const min = AT_LEAST_ONE.has(key as NumericSetting) ? 1 : 0;
    const ok = typeof value === 'number' && Number.isFinite(value) && (fractional || Number.isSafeInteger(value)) && value >= min;
    if (!ok) throw new SettingsError(key, `must be ${fractional ? 'a number' : 'an integer'} >= ${min}, got ${JSON.stringify(value)}`);
  }
  if (s.jobKinds !== undefined && (!Array.isArray(s.jobKinds) || s.jobKinds.length === 0 || s.jobKinds.some((k) => k !== 'batch' && k !== 'service'))) {
    throw new SettingsError('jobKinds', `must be a non-empty list of batch and service, got ${JSON.stringify(s.jobKinds)}`);
  }
  for (const [kind, think] of Object.entries(s.thinkTimeByKind ?? {})) {
    const ok = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0;
    if ((kind !== 'batch' && kind !== 'service') || think === undefined || !ok(think.jobMs) || !ok(think.taskMs)) {
      throw new SettingsError(`thinkTimeByKind.${kind}`, `must be {jobMs, taskMs} numbers >= 0 for batch or service, got ${JSON.stringify(think)}`);
    }
  }
  if (s.retryBackoffMaxMs < s.retryBackoffInitialMs) {
    throw new SettingsError('retryBackoffMaxMs', `must be >= retryBackoffInitialMs (${s.retryBackoffInitialMs}), got ${s.retryBackoffMaxMs}`);
  }
  if (s.restartBackoffInitialMs < MIN_RESTART_BACKOFF_MS) {
    throw new SettingsError('restartBackoffInitialMs', `must be >= ${MIN_RESTART_BACKOFF_MS} (restarts are never less than 1 s apart), got ${s.restartBackoffInitialMs}`);
  }
  if (s.restartBackoffMaxMs < s.restartBackoffInitialMs) {
    throw new SettingsError('restartBackoffMaxMs', `must be >= restartBackoffInitialMs (${s.restartBackoffInitialMs}), got ${s.restartBackoffMaxMs}`);
  }
  return Object.freeze(s);
}

/** `{a: undefined}` must not override a default (callers spread optional flags). */
function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
