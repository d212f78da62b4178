/**
 * The agent's command line, parsed with `util.parseArgs` and validated into a typed
 * configuration. Every problem is a {@link FlagError} naming the flag; the entry point prints
 * it and exits with status 2. Pure apart from reading `/etc/passwd` for `--task-user` and the
 * `--ca`, `--cert` and `--key` files.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import {
  FlagError,
  SECURITY_FLAG_OPTIONS,
  checkId,
  parseBytes,
  parseCpuMillis,
  parseEtcdConnection,
  parseLogLevel,
  parseMetricsListen,
  securityUsage,
  type ProcessSecurity,
  type Resources,
} from '@omega/cell-state';
import { DEFAULT_CGROUP_ROOT, defaultCgroupParent } from './cgroup-detect.js';
import { defaultMachineId, detectCapacity } from './registration.js';
import { DEFAULT_KILL_GRACE_MS } from './task-runner.js';
import { DEFAULT_MAX_CONCURRENT_CHECKS } from './health-checks.js';
import { DEFAULT_KEEP_ATTEMPTS, DEFAULT_TASK_RETENTION_MS } from './task-retention.js';
import { DEFAULT_LOG_CAP_BYTES, MIN_LOG_CAP_BYTES } from './supervisor-command.js';
import { DEFAULT_DISK_CHECK_MS, DEFAULT_DISK_LIMIT_BYTES, DEFAULT_DISK_MAX_ENTRIES, MIN_DISK_CHECK_MS } from './disk-limit.js';
import { cgroupParentSegments } from './task-paths.js';
import { DEFAULT_FENCE_AFTER_MS, SCHEDULERS_DEFAULT_MACHINE_LOSS_GRACE_MS } from './fence.js';
import { DEFAULT_TASK_UIDS, parseUidRange, type UidRange } from './task-uids.js';
import { resolveTaskUser, type TaskUser } from './task-user.js';
import { parseAllowUsers } from './named-users.js';
import { ISOLATION_MODES, type IsolationMode } from './isolation-detect.js';

export const USAGE = `usage: omega-agent [flags]

  --etcd URL[,URL...]     etcd endpoints (default https://127.0.0.1:2379; with --insecure
                          http://127.0.0.1:2379)
${securityUsage(26)}  --cell NAME             cell name (default "default")
  --machine-id ID         machine id (default: host name)
  --cpu QTY               capacity, e.g. 2 or 2000m (default: all CPUs)
  --memory QTY            capacity, e.g. 4Gi (default: total memory minus a reserve)
  --attr KEY=VALUE        machine attribute, repeatable (e.g. --attr rack=r1 --attr zone=z1)
  --data-dir DIR          task directories and logs (default /var/lib/omega-agent as root,
                          else ./.omega/agent-<machine id>)
  --cgroup-root DIR       where cgroups are mounted (default /sys/fs/cgroup)
  --cgroup-parent NAME    the agent's cgroup under each hierarchy root (default
                          omega/<machine id>); it sweeps only the cgroups it created there
  --no-enforcement        run tasks without cgroup limits (says so in the machine record)
  --allow-root-tasks      allow tasks to run as root (as root agent: default task user root)
  --task-uids FIRST-LAST  as root, run each task as its own uid (gid = uid) from this range
                          (default 100000-165535, unless --task-user or --allow-root-tasks)
  --task-user USER        run every task as USER (name, uid or uid:gid) instead: tasks of
                          different jobs then share that uid
  --allow-users A,B       as root, users of this machine a job may name (user: A) to run its
                          tasks as (never root); advertised as omega.users.<name>=true
                          attributes, so only such jobs land here (default: none)
  --kill-grace-ms MS      between TERM and KILL when stopping a task (default 10000)
  --max-health-checks N   health checks (of all tasks) run at once, at most (default 8);
                          the others wait for a slot, each then with its own timeout
  --task-retention-s S    keep a finished task's directory and logs S seconds after its end
                          was reported (default 86400; 0: forever)
  --log-cap QTY           cap of each task's stdout.log and stderr.log, e.g. 64Mi (default
                          64Mi); past it the file becomes <stream>.log.1 (replacing the
                          previous one) and a new one starts: the newest cap to 2 x cap of
                          output is kept per stream
  --disk-limit QTY        most bytes a task's work dir may have allocated on disk, e.g. 10Gi
                          (default 10Gi; 0: none); measured every --disk-check-ms, past it the
                          task is killed (failed, disk-exceeded); a job may ask less (diskLimit)
  --disk-inodes N         most entries (files, directories, links) a task's work dir may hold
                          (default 1000000; 0: none); past it the task is killed the same way
  --disk-check-ms MS      between two measurements of a task's work dir, the first one MS after
                          the start (default 5000)
  --keep-attempts N       keep the directories and logs of only the newest N attempts of a
                          task (older ones go when a new attempt starts; default 3)
  --isolation MODE        auto (default): start tasks in the namespaces this host allows (own
                          PID namespace and /proc, private /tmp; network: none jobs get a
                          network namespace with only loopback), found by a probe at start and
                          advertised as omega.isolation.* attributes; none: no namespaces
                          (tasks share the host's /proc, /tmp and network; network: none jobs
                          are refused)
  --drain-on-exit         stop every task when the agent stops (default: leave them running)
  --hollow N              serve N hollow machines (no processes; tasks run for runDurationMs)
  --hollow-prefix PREFIX  hollow machine ids are PREFIX-0000... (default hollow)
  --heartbeat-ttl S       heartbeat lease TTL in seconds (default 10)
  --fence-after-ms MS     kill every local task (at once, no grace) once the heartbeat lease
                          has not been renewed for MS; keep it under --heartbeat-ttl plus the
                          schedulers' --machine-loss-grace-ms (default 12000; 0: never)
  --log-listen HOST:PORT  serve task logs to the API here (default 127.0.0.1:0, a free port;
                          use an address the API servers can reach; none: serve no logs)
  --log-level LEVEL       trace, debug, info, warn, error, fatal, silent (default info)
  --metrics-listen HOST:PORT
                          serve Prometheus metrics at http://HOST:PORT/metrics (default: none)
  --help                  this text
`;


export interface AgentConfig {
  readonly help: boolean;
  readonly etcdEndpoints: readonly string[];
  /**
   * TLS to etcd (and on the log server) with this identity, whose CN is the agent's etcd user
   * (`omega-agent-<machine id>`, or `omega-hollow` for a hollow agent); or `--insecure`.
   */
  readonly security: ProcessSecurity;
  readonly cell: string;
  readonly machineId: string;
  readonly capacity: Resources;
  readonly attributes: Readonly<Record<string, string>>;
  readonly dataDir: string;
  readonly cgroupRoot: string;
  readonly cgroupParent: string;
  /** False with `--no-enforcement`. */
  readonly enforcement: boolean;
  readonly allowRootTasks: boolean;
  /** Every task runs as this user (`--task-user`); undefined: see taskUids. */
  readonly taskUser: TaskUser | undefined;
  /** Each task runs as its own uid from this range (root agents, the default); undefined with neither: the agent's own user. */
  readonly taskUids: UidRange | undefined;
  /** Users a job may name to run as (`--allow-users`, sorted; default none); each is in /etc/passwd with a uid other than 0. */
  readonly allowUsers: readonly string[];
  readonly killGraceMs: number;
  /** Health checks run at once, at most (`--max-health-checks`, default 8; see health-checks.ts). */
  readonly maxConcurrentChecks: number;
  readonly taskRetentionMs: number;
  /** Cap of each task log file (`--log-cap`, default 64 MiB). */
  readonly logCapBytes: number;
  /** Most bytes a task's work dir may have allocated (`--disk-limit`, default 10 GiB; 0: none). */
  readonly diskLimitBytes: number;
  /** Most entries a task's work dir may hold (`--disk-inodes`, default 1,000,000; 0: none). */
  readonly diskMaxEntries: number;
  /** Between two measurements of a task's work dir (`--disk-check-ms`, default 5000). */
  readonly diskCheckIntervalMs: number;
  /** Attempt directories kept per task (`--keep-attempts`). */
  readonly keepAttempts: number;
  /** `--isolation`: namespaces where the host allows them (`auto`, default) or none. */
  readonly isolation: IsolationMode;
  readonly drainOnExit: boolean;
  /** 0: a real agent. */
  readonly hollow: number;
  readonly hollowPrefix: string;
  readonly heartbeatTtlSeconds: number;
  /**
   * Fencing (`--fence-after-ms`): once the heartbeat lease has gone this long without a
   * successful renewal, every local task is killed and later reported `lost` (reason
   * `fenced`). 0: never. See the README's timing rule.
   */
  readonly fenceAfterMs: number;
  /** Where to serve task logs; undefined with `--log-listen none`. */
  readonly logListen: { readonly host: string; readonly port: number } | undefined;
  readonly logLevel: string;
  /** Where to serve Prometheus metrics; undefined: nowhere. */
  readonly metricsListen: string | undefined;
  /** Things the entry point should log once it has a logger. */
  readonly notes: readonly string[];
}

/** What the configuration depends on besides the flags (injectable for tests). */
export interface ConfigEnvironment {
  readonly isRoot: boolean;
  readonly cwd: string;
  readonly passwdPath?: string;
}

const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ATTRIBUTE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

function integer(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new FlagError(flag, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** Parses and validates the agent's flags. Throws {@link FlagError}. */
export function parseAgentArgs(argv: readonly string[], env: ConfigEnvironment = { isRoot: process.getuid?.() === 0, cwd: process.cwd() }): AgentConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        etcd: { type: 'string' },
        ...SECURITY_FLAG_OPTIONS,
        cell: { type: 'string' },
        'machine-id': { type: 'string' },
        cpu: { type: 'string' },
        memory: { type: 'string' },
        attr: { type: 'string', multiple: true },
        'data-dir': { type: 'string' },
        'cgroup-root': { type: 'string' },
        'cgroup-parent': { type: 'string' },
        'no-enforcement': { type: 'boolean' },
        'allow-root-tasks': { type: 'boolean' },
        'task-user': { type: 'string' },
        'task-uids': { type: 'string' },
        'allow-users': { type: 'string' },
        'kill-grace-ms': { type: 'string' },
        'max-health-checks': { type: 'string' },
        'task-retention-s': { type: 'string' },
        'keep-attempts': { type: 'string' },
        'log-cap': { type: 'string' },
        'disk-limit': { type: 'string' },
        'disk-inodes': { type: 'string' },
        'disk-check-ms': { type: 'string' },
        isolation: { type: 'string' },
        'log-listen': { type: 'string' },
        'drain-on-exit': { type: 'boolean' },
        hollow: { type: 'string' },
        'hollow-prefix': { type: 'string' },
        'heartbeat-ttl': { type: 'string' },
        'fence-after-ms': { type: 'string' },
        'log-level': { type: 'string' },
        'metrics-listen': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    // parseArgs names the flag in its message ("Unknown option '--x'", "Option '--cpu <value>' argument missing").
    const message = (error as Error).message;
    const flag = /'(--?[A-Za-z-]+)/.exec(message)?.[1] ?? 'arguments';
    throw new FlagError(flag, message);
  }
  const notes: string[] = [];

  const help = values.help === true;
  // --help needs no certificates (main prints the usage before looking at anything else).
  const { endpoints: etcdEndpoints, security } = help ? { endpoints: [], security: { mode: 'insecure' } as const } : parseEtcdConnection(values);

  const cell = values.cell ?? 'default';
  if (!CELL.test(cell)) throw new FlagError('--cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);

  const machineId = values['machine-id'] ?? defaultMachineId();
  try {
    checkId('machine-id', machineId);
  } catch (error) {
    throw new FlagError('--machine-id', (error as Error).message);
  }

  const detected = values.cpu === undefined || values.memory === undefined ? detectCapacity() : undefined;
  let cpuMillis: number;
  let memoryBytes: number;
  try {
    cpuMillis = values.cpu === undefined ? (detected as Resources).cpuMillis : parseCpuMillis(values.cpu);
  } catch (error) {
    throw new FlagError('--cpu', (error as Error).message.replace(/^cpu: /, ''));
  }
  if (cpuMillis <= 0) throw new FlagError('--cpu', 'must be more than 0');
  try {
    memoryBytes = values.memory === undefined ? (detected as Resources).memoryBytes : parseBytes(values.memory);
  } catch (error) {
    throw new FlagError('--memory', (error as Error).message.replace(/^memory: /, ''));
  }
  if (memoryBytes <= 0) throw new FlagError('--memory', 'must be more than 0');

  const attributes: Record<string, string> = {};
  for (const pair of values.attr ?? []) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (eq < 0 || !ATTRIBUTE.test(key)) throw new FlagError('--attr', `expected KEY=VALUE with KEY of letters, digits, '.', '_', '/', '-', got ${JSON.stringify(pair)}`);
    if (value.length > 256) throw new FlagError('--attr', `the value of ${key} is longer than 256 characters`);
    attributes[key] = value;
  }

  const hollow = integer('--hollow', values.hollow, 0, 1, 100_000);
  if (security.mode === 'tls') {
    // etcd acts as the certificate's CN: another machine's identity would be refused its writes.
    const expected = hollow > 0 ? 'omega-hollow' : `omega-agent-${machineId}`;
    if (security.identity.commonName !== expected) {
      notes.push(`--cert ${security.files.certFile} is for ${security.identity.commonName}, not ${expected}: etcd will refuse the writes its role does not allow`);
    }
  }
  const hollowPrefix = values['hollow-prefix'] ?? 'hollow';
  try {
    checkId('hollow-prefix', `${hollowPrefix}-0000`);
  } catch (error) {
    throw new FlagError('--hollow-prefix', (error as Error).message);
  }

  const cgroupParent = values['cgroup-parent'] ?? defaultCgroupParent(machineId);
  try {
    cgroupParentSegments(cgroupParent);
  } catch (error) {
    throw new FlagError('--cgroup-parent', (error as Error).message);
  }
  const cgroupRoot = values['cgroup-root'] ?? DEFAULT_CGROUP_ROOT;
  if (!cgroupRoot.startsWith('/')) throw new FlagError('--cgroup-root', `must be an absolute path, got ${JSON.stringify(cgroupRoot)}`);

  const allowRootTasks = values['allow-root-tasks'] === true;
  let taskUser: TaskUser | undefined;
  let taskUids: UidRange | undefined;
  if (env.isRoot && values['task-uids'] !== undefined) {
    if (values['task-user'] !== undefined) throw new FlagError('--task-uids', 'give --task-uids or --task-user, not both');
    const range = parseUidRange(values['task-uids']);
    if ('problem' in range) throw new FlagError('--task-uids', range.problem);
    taskUids = range;
  } else if (env.isRoot && values['task-user'] === undefined) {
    // A uid per task by default; --allow-root-tasks alone means "as root".
    if (!allowRootTasks) taskUids = DEFAULT_TASK_UIDS;
  } else if (env.isRoot) {
    const name = values['task-user'];
    if (name !== undefined) {
      try {
        taskUser = resolveTaskUser(name, env.passwdPath);
      } catch (error) {
        throw new FlagError('--task-user', (error as Error).message);
      }
      if (taskUser.uid === 0 && !allowRootTasks) throw new FlagError('--task-user', 'refusing to run tasks as root without --allow-root-tasks');
      if (taskUser.uid === 0) taskUser = undefined;
    }
  } else {
    for (const flag of ['task-user', 'task-uids'] as const) {
      if (values[flag] !== undefined) notes.push(`--${flag} ${values[flag]} ignored: the agent is not root, so tasks run as the agent's own user`);
    }
  }

  let allowUsers: readonly string[] = [];
  if (values['allow-users'] !== undefined && !env.isRoot) {
    notes.push(`--allow-users ${values['allow-users']} ignored: the agent is not root, so tasks run as the agent's own user (jobs naming a user are not placed here)`);
  } else if (values['allow-users'] !== undefined) {
    const names = parseAllowUsers(values['allow-users']);
    if ('problem' in names) throw new FlagError('--allow-users', names.problem);
    for (const name of names) {
      let user: TaskUser;
      try {
        user = resolveTaskUser(name, env.passwdPath);
      } catch (error) {
        throw new FlagError('--allow-users', (error as Error).message);
      }
      if (user.uid === 0 || user.gid === 0) throw new FlagError('--allow-users', `user ${JSON.stringify(name)} has uid or gid 0: tasks never run as root this way`);
    }
    allowUsers = names;
  }

  const killGraceMs = integer('--kill-grace-ms', values['kill-grace-ms'], DEFAULT_KILL_GRACE_MS, 0, 3_600_000);
  const maxConcurrentChecks = integer('--max-health-checks', values['max-health-checks'], DEFAULT_MAX_CONCURRENT_CHECKS, 1, 1_000);
  const taskRetentionMs = integer('--task-retention-s', values['task-retention-s'], DEFAULT_TASK_RETENTION_MS / 1000, 0, 10 * 365 * 86_400) * 1000;
  const keepAttempts = integer('--keep-attempts', values['keep-attempts'], DEFAULT_KEEP_ATTEMPTS, 1, 1_000);
  let logCapBytes = DEFAULT_LOG_CAP_BYTES;
  if (values['log-cap'] !== undefined) {
    try {
      logCapBytes = parseBytes(values['log-cap']);
    } catch (error) {
      throw new FlagError('--log-cap', (error as Error).message.replace(/^[a-z-]+: /, ''));
    }
    if (logCapBytes < MIN_LOG_CAP_BYTES) throw new FlagError('--log-cap', `must be at least ${MIN_LOG_CAP_BYTES} bytes, got ${JSON.stringify(values['log-cap'])}`);
  }
  let diskLimitBytes = DEFAULT_DISK_LIMIT_BYTES;
  if (values['disk-limit'] !== undefined) {
    try {
      diskLimitBytes = parseBytes(values['disk-limit']);
    } catch (error) {
      throw new FlagError('--disk-limit', (error as Error).message.replace(/^[a-z-]+: /, ''));
    }
    if (diskLimitBytes < 0) throw new FlagError('--disk-limit', `must be 0 (none) or more, got ${JSON.stringify(values['disk-limit'])}`);
  }
  const diskMaxEntries = integer('--disk-inodes', values['disk-inodes'], DEFAULT_DISK_MAX_ENTRIES, 0, Number.MAX_SAFE_INTEGER);
  const diskCheckIntervalMs = integer('--disk-check-ms', values['disk-check-ms'], DEFAULT_DISK_CHECK_MS, MIN_DISK_CHECK_MS, 3_600_000);
  if (diskLimitBytes === 0 && diskMaxEntries === 0) notes.push("task work dirs are not bounded (--disk-limit 0 and --disk-inodes 0): a task can fill this machine's disk");
  const isolation = (values.isolation ?? 'auto') as IsolationMode;
  if (!ISOLATION_MODES.includes(isolation)) throw new FlagError('--isolation', `must be one of ${ISOLATION_MODES.join(', ')}, got ${JSON.stringify(values.isolation)}`);
  const heartbeatTtlSeconds = integer('--heartbeat-ttl', values['heartbeat-ttl'], 10, 1, 3_600);
  const fenceAfterMs = integer('--fence-after-ms', values['fence-after-ms'], DEFAULT_FENCE_AFTER_MS, 0, 3_600_000);
  // The README's timing rule, with the schedulers' default grace: past this, a fenced task's
  // SIGKILL (sent at once: no kill grace) can come after the earliest moment its replacement may start.
  const slackMs = heartbeatTtlSeconds * 1000 + SCHEDULERS_DEFAULT_MACHINE_LOSS_GRACE_MS - fenceAfterMs;
  if (fenceAfterMs > 0 && slackMs < 0) {
    notes.push(`--fence-after-ms ${fenceAfterMs} exceeds --heartbeat-ttl ${heartbeatTtlSeconds} s + the schedulers' default machine-loss grace (${SCHEDULERS_DEFAULT_MACHINE_LOSS_GRACE_MS} ms): a fenced task may run beside its replacement for up to ${-slackMs} ms`);
  }
  if (fenceAfterMs === 0) notes.push('fencing is off (--fence-after-ms 0): tasks keep running however long the heartbeat lease cannot be renewed, also after the schedulers replaced them');
  const log = parseLogLevel(values['log-level']);
  if ('problem' in log) throw new FlagError('--log-level', log.problem);
  const logLevel = log.level;
  const metrics = parseMetricsListen(values['metrics-listen']);
  if ('problem' in metrics) throw new FlagError('--metrics-listen', metrics.problem);

  const logListen = parseListen(values['log-listen'] ?? '127.0.0.1:0');

  const dataDir = values['data-dir'] ?? (env.isRoot ? '/var/lib/omega-agent' : join(env.cwd, '.omega', `agent-${machineId}`));
  if (dataDir.length === 0) throw new FlagError('--data-dir', 'must not be empty');

  return {
    help,
    etcdEndpoints,
    security,
    cell,
    machineId,
    capacity: { cpuMillis, memoryBytes },
    attributes,
    dataDir,
    cgroupRoot,
    cgroupParent,
    enforcement: values['no-enforcement'] !== true,
    allowRootTasks,
    taskUser,
    taskUids,
    allowUsers,
    killGraceMs,
    maxConcurrentChecks,
    taskRetentionMs,
    keepAttempts,
    logCapBytes,
    diskLimitBytes,
    diskMaxEntries,
    diskCheckIntervalMs,
    isolation,
    drainOnExit: values['drain-on-exit'] === true,
    hollow,
    hollowPrefix,
    heartbeatTtlSeconds,
    fenceAfterMs,
    logLevel,
    metricsListen: metrics.listen,
    logListen,
    notes,
  };
}

/** `HOST:PORT` (IPv6 as `[::1]:PORT`), or `none`. */
function parseListen(text: string): { host: string; port: number } | undefined {
  if (text === 'none') return undefined;
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65_535) throw new FlagError('--log-listen', `must be HOST:PORT or none, got ${JSON.stringify(text)}`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}
