/**
 * The command-line flags of every scheduler process (`omega-scheduler-batch`,
 * `omega-scheduler-service`), parsed with node's `util.parseArgs` and validated at once: a bad
 * flag is a {@link FlagError} naming it (the process exits 2), never a failure later.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import {
  CONFLICT_MODES,
  DEFAULT_REQUEST_RETENTION_MS,
  FlagError,
  LOG_LEVELS,
  METRICS_LISTEN_USAGE,
  SECURITY_FLAG_OPTIONS,
  TRANSACTION_MODES,
  parseEtcdConnection,
  parseMetricsListen,
  securityUsage,
  type ConflictMode,
  type LogLevel,
  type ProcessSecurity,
  type TransactionMode,
} from '@omega/cell-state';
import { resolveSettings, SettingsError, type SchedulerSettings } from './settings.js';



/** What a scheduler process runs with. */
export interface SchedulerProcessConfig {
  /** etcd client URLs. */
  readonly etcd: readonly string[];
  /** TLS to etcd with this identity (CN `omega-scheduler`), or plaintext with `--insecure`. */
  readonly security: ProcessSecurity;
  readonly cell: string;
  readonly name: string;
  readonly leaseTtlSeconds: number;
  /** The server's `--max-txn-ops` (the commit splits or refuses transactions above it). */
  readonly maxTxnOps: number;
  readonly logLevel: LogLevel;
  /** Where to serve Prometheus metrics; undefined: nowhere. */
  readonly metricsListen: string | undefined;
  readonly seed: number;
  /** Validated loop settings (see {@link resolveSettings}). */
  readonly settings: SchedulerSettings;
}

/** The usage text, for `--help`. */
export function schedulerUsage(program: string): string {
  return `usage: ${program} [flags]

  --etcd URL[,URL...]            etcd client URLs (default https://127.0.0.1:2379; with
                                 --insecure http://127.0.0.1:2379)
${securityUsage(33)}  --cell NAME                    cell name (default "default")
  --name NAME                    instance name, unique in the cell (default <kind>-<host>-<pid>)
  --conflict-mode MODE           resource-fit | sequence-numbers (default resource-fit)
  --transaction-mode MODE        incremental | all-or-nothing, for jobs that do not choose
                                 (default: the policy's)
  --t-job-ms MS                  artificial think time per attempt (default 0)
  --t-task-ms MS                 artificial think time per task to place (default 0)
  --lease-ttl-s S                lease TTL binding ownerships and stats (default 10)
  --machine-loss-grace-ms MS     absence of a machine's heartbeat before its tasks are lost (default 5000)
  --ownership-grace-ms MS        before taking a job hashed to another instance (default 1000)
  --max-queued-jobs N            owned jobs waiting for placement at most (default 256)
  --max-jobs-per-commit N        incremental jobs placed and committed together in one attempt
                                 (default 32 for the batch scheduler without a think time, else 1)
  --max-claims-per-commit N      tasks to place in one such attempt at most; the first job
                                 always goes whole (default 1000)
  --stats-interval-ms MS         how often stats are published (default 1000)
  --job-retention DURATION       finished jobs are deleted this long after they ended, unless
                                 the job sets its own retention; 0 = never (default 24h)
  --request-retention DURATION   request records (idempotent submits) are deleted after this;
                                 0 = never (default 24h)
  --max-restarts-per-job-per-minute N
                                 crash-loop cap: a job restarts at most max(N, instances)
                                 tasks in any minute; more wait (default 10)
  --max-txn-ops N                the etcd server's --max-txn-ops (default 128, etcd's default)
  --log-level LEVEL              ${LOG_LEVELS.join(' | ')} (default info)
  ${METRICS_LISTEN_USAGE}
  --seed N                       seed of the placement randomness (default: from time and pid)
  --help                         this text
`;
}

const OPTIONS = {
  etcd: { type: 'string' },
  ...SECURITY_FLAG_OPTIONS,
  cell: { type: 'string' },
  name: { type: 'string' },
  'conflict-mode': { type: 'string' },
  'transaction-mode': { type: 'string' },
  't-job-ms': { type: 'string' },
  't-task-ms': { type: 'string' },
  'lease-ttl-s': { type: 'string' },
  'machine-loss-grace-ms': { type: 'string' },
  'ownership-grace-ms': { type: 'string' },
  'max-queued-jobs': { type: 'string' },
  'max-jobs-per-commit': { type: 'string' },
  'max-claims-per-commit': { type: 'string' },
  'stats-interval-ms': { type: 'string' },
  'job-retention': { type: 'string' },
  'request-retention': { type: 'string' },
  'max-restarts-per-job-per-minute': { type: 'string' },
  'max-txn-ops': { type: 'string' },
  'log-level': { type: 'string' },
  'metrics-listen': { type: 'string' },
  seed: { type: 'string' },
  help: { type: 'boolean' },
} as const;

/** Which flag sets which setting, to name the flag when a setting is refused. */
const SETTING_FLAGS: Partial<Record<keyof SchedulerSettings, string>> = {
  conflictMode: '--conflict-mode',
  transactionMode: '--transaction-mode',
  thinkTimeJobMs: '--t-job-ms',
  thinkTimeTaskMs: '--t-task-ms',
  machineLossGraceMs: '--machine-loss-grace-ms',
  ownershipGraceMs: '--ownership-grace-ms',
  maxQueuedJobs: '--max-queued-jobs',
  maxJobsPerCommit: '--max-jobs-per-commit',
  maxClaimsPerCommit: '--max-claims-per-commit',
  statsIntervalMs: '--stats-interval-ms',
  jobRetentionMs: '--job-retention',
  requestRetentionMs: '--request-retention',
  maxRestartsPerJobPerMinute: '--max-restarts-per-job-per-minute',
};

/** The batch scheduler process's `--max-jobs-per-commit` (the library's default is 1: see settings.ts). */
export const DEFAULT_PROCESS_BATCH_JOBS_PER_COMMIT = 32;

/**
 * `--max-jobs-per-commit` when not given: 32 for the batch scheduler, 1 for the others, and 1
 * whenever an artificial think time is set: that is the Omega model (a think time per job, then
 * its own transaction), which the live-vs-simulated comparisons rely on.
 */
function defaultJobsPerCommit(kind: string, tJobMs: string | undefined, tTaskMs: string | undefined): number | undefined {
  const thinks = [tJobMs, tTaskMs].some((raw) => raw !== undefined && Number(raw) > 0);
  return kind === 'batch' && !thinks ? DEFAULT_PROCESS_BATCH_JOBS_PER_COMMIT : undefined;
}

const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function number(flag: string, raw: string | undefined, options: { integer?: boolean; min?: number } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  const integer = options.integer ?? true;
  const min = options.min ?? 0;
  if (raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isSafeInteger(value)) || value < min) {
    throw new FlagError(flag, `must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A scheduler process's default `--job-retention`: a day. */
export const DEFAULT_PROCESS_JOB_RETENTION_MS = 24 * 3600 * 1000;

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `10s`, `500ms`, `30m`, `24h`, `7d` or `0` → ms. */
function duration(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim() === '0') return 0;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(raw);
  const ms = m === null ? NaN : Math.round(Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? NaN));
  if (!Number.isSafeInteger(ms)) throw new FlagError(flag, `must be a duration like 10s, 30m, 24h or 7d (0: never), got ${JSON.stringify(raw)}`);
  return ms;
}

function oneOf<T extends string>(flag: string, raw: string | undefined, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw new FlagError(flag, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

/** The default instance name: `<kind>-<host>-<pid>`, reduced to the characters an id allows. */
export function defaultInstanceName(kind: string): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'host';
  return `${kind}-${host}-${process.pid}`.slice(0, 128);
}

/**
 * Parses and validates the flags. Returns `'help'` for `--help`. Throws {@link FlagError}
 * naming the first bad flag (unknown flags and positional arguments included).
 */
export function parseSchedulerArgs(argv: readonly string[], kind: string): SchedulerProcessConfig | 'help' {
  let values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'([^']+)'/.exec(message)?.[1] ?? 'arguments';
    throw new FlagError(flag, message.split('. ')[0] ?? message);
  }
  if (values.help === true) return 'help';

  const { endpoints: etcd, security } = parseEtcdConnection(values);
  const cell = values.cell ?? 'default';
  if (!CELL.test(cell)) throw new FlagError('--cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);
  const name = values.name ?? defaultInstanceName(kind);
  if (!NAME.test(name)) throw new FlagError('--name', `must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, got ${JSON.stringify(name)}`);

  const settingsInput: Partial<{ -readonly [K in keyof SchedulerSettings]: SchedulerSettings[K] }> = {
    conflictMode: oneOf<ConflictMode>('--conflict-mode', values['conflict-mode'], CONFLICT_MODES),
    transactionMode: oneOf<TransactionMode>('--transaction-mode', values['transaction-mode'], TRANSACTION_MODES),
    thinkTimeJobMs: number('--t-job-ms', values['t-job-ms'], { integer: false }),
    thinkTimeTaskMs: number('--t-task-ms', values['t-task-ms'], { integer: false }),
    machineLossGraceMs: number('--machine-loss-grace-ms', values['machine-loss-grace-ms']),
    ownershipGraceMs: number('--ownership-grace-ms', values['ownership-grace-ms']),
    maxQueuedJobs: number('--max-queued-jobs', values['max-queued-jobs'], { min: 1 }),
    maxJobsPerCommit: number('--max-jobs-per-commit', values['max-jobs-per-commit'], { min: 1 }) ?? defaultJobsPerCommit(kind, values['t-job-ms'], values['t-task-ms']),
    maxClaimsPerCommit: number('--max-claims-per-commit', values['max-claims-per-commit'], { min: 1 }),
    statsIntervalMs: number('--stats-interval-ms', values['stats-interval-ms']),
    jobRetentionMs: duration('--job-retention', values['job-retention']) ?? DEFAULT_PROCESS_JOB_RETENTION_MS,
    requestRetentionMs: duration('--request-retention', values['request-retention']) ?? DEFAULT_REQUEST_RETENTION_MS,
    maxRestartsPerJobPerMinute: number('--max-restarts-per-job-per-minute', values['max-restarts-per-job-per-minute'], { min: 1 }),
  };
  let settings: SchedulerSettings;
  try {
    settings = resolveSettings(settingsInput);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    throw new FlagError(SETTING_FLAGS[error.setting as keyof SchedulerSettings] ?? error.setting, error.message);
  }
  return {
    etcd,
    security,
    cell,
    name,
    leaseTtlSeconds: number('--lease-ttl-s', values['lease-ttl-s'], { min: 1 }) ?? 10,
    maxTxnOps: number('--max-txn-ops', values['max-txn-ops'], { min: 4 }) ?? 128,
    logLevel: oneOf('--log-level', values['log-level'], LOG_LEVELS) ?? 'info',
    metricsListen: metricsListen(values['metrics-listen']),
    // An entry point may read the time: the seed only makes default runs differ.
    seed: number('--seed', values.seed, { min: 0 }) ?? (Date.now() ^ (process.pid << 16)) >>> 0,
    settings,
  };
}

function metricsListen(value: string | undefined): string | undefined {
  const parsed = parseMetricsListen(value);
  if ('problem' in parsed) throw new FlagError('--metrics-listen', parsed.problem);
  return parsed.listen;
}

/**
 * Splits `argv` into the given policy flags (`--flag value` or `--flag=value`) and the rest, for
 * entry points that add flags of their own before handing the rest to the shared process.
 * Throws {@link FlagError} when a policy flag has no value.
 */
export function takeFlags(argv: readonly string[], flags: readonly string[]): { values: Map<string, string>; rest: string[] } {
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    if (!flags.includes(flag)) {
      rest.push(arg);
      continue;
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '' || (eq === -1 && value.startsWith('--'))) throw new FlagError(flag, 'needs a value');
    values.set(flag, value);
  }
  return { values, rest };
}
