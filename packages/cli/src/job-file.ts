/**
 * Job files: a friendly YAML (or JSON) form of a JobSpec, for people.
 *
 * ```yaml
 * name: hello                 # a DNS label
 * namespace: team-a           # default: default
 * kind: batch                 # batch | service
 * instances: 3                # default 1
 * command: [sh, -c, 'echo hello from $OMEGA_TASK_ID']
 * cpu: 500m                   # or 0.5
 * memory: 64Mi
 * network: none               # only loopback (default host); placed only where agents can
 * user: builder               # run as this user of the machine (default: a uid per task);
 *                             # placed only where the agent's --allow-users names it
 * constraints:
 *   - {attribute: zone, in: [a, b]}
 * secretEnv:                  # write-only: never shown by any read
 *   DB_PASSWORD: {fromEnv: DB_PASSWORD}   # or {fromFile: ./db-password}, or a literal value
 * healthCheck:                # how the agent checks each instance (see the README)
 *   {http: {port: 8080, path: /healthz}, interval: 10s, timeout: 1s, gracePeriod: 30s, failureThreshold: 3}
 * update:                     # services: how `omega update` replaces instances
 *   {maxUnavailable: 1, minHealthyTime: 10s, healthyDeadline: 5m, autoRollback: false}
 * schedule: "0 3 * * *"       # batch: a cron job, run at these times (see the README)
 * timeZone: Europe/Paris      # default UTC
 * concurrency: forbid         # allow (default) | forbid | replace
 * startingDeadline: 10m       # a missed time still runs this late (default 10m)
 * ```
 *
 * The full format is in the package README. Parsing checks everything the server would (cell-state's
 * `jobSpecProblems`, the same rules) and names problems by the file's own fields
 * (`memory: must be > 0`), so most mistakes are caught before anything is sent.
 *
 * Secret env values named by `fromEnv` / `fromFile` are not read here (parsing stays pure): the
 * parse returns where each value comes from, and `secret-env.ts` reads them just before a submit.
 */
import { DEFAULT_NAMESPACE, jobSpecProblems, parseBytes, parseCpuMillis, secretEnvNames, secretEnvProblems, type Constraint, type CronConcurrency, type JobSpec, type RestartPolicyKind, type TaskNetwork } from '@omega/cell-state/vocabulary';
import { yaml } from './lazy-require.js';
import { parseHealthCheckBlock } from './health-check-file.js';

/** A job file that cannot be used; `problems` are `<field>: <problem>`, every one found. */
export class JobFileError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.join('; ')}`);
    this.name = 'JobFileError';
  }
}

const TOP_LEVEL = ['name', 'namespace', 'kind', 'instances', 'priority', 'commitMode', 'command', 'env', 'cpu', 'memory', 'duration', 'hollowFail', 'pidsLimit', 'logLimit', 'diskLimit', 'network', 'user', 'constraints', 'restart', 'retention', 'secretEnv', 'update', 'healthCheck', 'schedule', 'timeZone', 'concurrency', 'startingDeadline'] as const;
const CONSTRAINT_KEYS = ['attribute', 'equals', 'in', 'notIn', 'spread', 'maxPerMachine'] as const;
const RESTART_KEYS = ['policy', 'maxRestarts', 'initialBackoff', 'maxBackoff'] as const;
const UPDATE_KEYS = ['maxUnavailable', 'maxSurge', 'minHealthyTime', 'healthyDeadline', 'autoRollback'] as const;

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `500ms`, `2m`, `1.5h`, `30d`, or 0 → milliseconds. Throws with a readable problem. */
export function parseDuration(value: unknown): number {
  if (value === 0 || value === '0') return 0;
  const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value) : null;
  const unit = m === null ? undefined : DURATION_UNITS[m[2] ?? ''];
  if (m === null || unit === undefined) throw new Error(`${JSON.stringify(value)} is not a duration like 30s, 500ms, 2m, 1h or 30d`);
  const ms = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(ms)) throw new Error(`${JSON.stringify(value)} is too long`);
  return ms;
}

/** Edit distance, for "did you mean" on misspelt fields. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

function unknownKeys(object: Record<string, unknown>, known: readonly string[], prefix: string, bad: (field: string, problem: string) => void): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const near = known.find((k) => distance(k, key) <= 2);
    bad(`${prefix}${key}`, `is not a known field${near === undefined ? ` (known: ${known.join(', ')})` : ` (did you mean ${near}?)`}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): string[] | undefined {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return [String(value)];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) return value.map(String);
  return undefined;
}

/** A cell-state field path (as `jobSpecProblems` names it) → the job file's field. */
export function fileField(path: string): string {
  const rules: [RegExp, string][] = [
    [/^task\.resources\.cpuMillis/, 'cpu'],
    [/^task\.resources\.memoryBytes/, 'memory'],
    [/^task\.runDurationMs/, 'duration'],
    [/^task\.healthCheck\.intervalMs/, 'healthCheck.interval'],
    [/^task\.healthCheck\.timeoutMs/, 'healthCheck.timeout'],
    [/^task\.healthCheck\.gracePeriodMs/, 'healthCheck.gracePeriod'],
    [/^task\.healthCheck/, 'healthCheck'],
    [/^task\.(command|env|hollowFail|pidsLimit|network|user)/, '$1'],
    [/^task\.logLimitBytes/, 'logLimit'],
    [/^task\.diskLimitBytes/, 'diskLimit'],
    [/^restartPolicy\.kind/, 'restart.policy'],
    [/^restartPolicy\.maxRestarts/, 'restart.maxRestarts'],
    [/^restartPolicy\.initialBackoffMs/, 'restart.initialBackoff'],
    [/^restartPolicy\.maxBackoffMs/, 'restart.maxBackoff'],
    [/^(constraints\[\d+\])\.values/, '$1'],
    [/^(constraints\[\d+\])\.limit/, '$1.maxPerMachine'],
    [/^retentionMs/, 'retention'],
    [/^update\.minHealthyTimeMs/, 'update.minHealthyTime'],
    [/^schedule\.cron$/, 'schedule'],
    [/^schedule\.startingDeadlineMs$/, 'startingDeadline'],
    [/^schedule\.(timeZone|concurrency)$/, '$1'],
    [/^update\.healthyDeadlineMs/, 'update.healthyDeadline'],
    [/^task\.secretEnv(Names)?/, 'secretEnv'],
  ];
  for (const [pattern, replacement] of rules) if (pattern.test(path)) return path.replace(pattern, replacement);
  return path;
}

function parseConstraint(raw: unknown, field: string, bad: (field: string, problem: string) => void): Constraint | undefined {
  if (!isRecord(raw)) {
    bad(field, 'must be a mapping like {attribute: zone, in: [a, b]}');
    return undefined;
  }
  unknownKeys(raw, CONSTRAINT_KEYS, `${field}.`, bad);
  const kinds = (['equals', 'in', 'notIn', 'spread', 'maxPerMachine'] as const).filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    bad(field, 'needs exactly one of equals, in, notIn, spread, maxPerMachine');
    return undefined;
  }
  const kind = kinds[0] as (typeof kinds)[number];
  const attribute = raw.attribute === undefined ? '' : String(raw.attribute);
  switch (kind) {
    case 'spread':
      if (typeof raw.spread !== 'string') bad(`${field}.spread`, 'must be the attribute to spread over, e.g. {spread: rack}');
      return { attribute: typeof raw.spread === 'string' ? raw.spread : attribute, operator: 'spread', values: [], limit: 0 };
    case 'maxPerMachine': {
      const limit = raw.maxPerMachine;
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) bad(`${field}.maxPerMachine`, 'must be an integer >= 1');
      return { attribute, operator: 'max-per-machine', values: [], limit: typeof limit === 'number' ? limit : 0 };
    }
    default: {
      const values = stringList(raw[kind]);
      if (values === undefined) bad(`${field}.${kind}`, 'must be a value or a list of values');
      if (raw.attribute === undefined) bad(`${field}.attribute`, 'is required');
      const operator = kind === 'notIn' ? 'not-in' : kind;
      return { attribute, operator, values: values ?? [], limit: 0 };
    }
  }
}

/** Where one secret env value comes from: written in the file, an environment variable of the submitter, or a file. */
export type SecretEnvSource = { readonly kind: 'value'; readonly value: string } | { readonly kind: 'env'; readonly name: string } | { readonly kind: 'file'; readonly path: string };

const SECRET_SOURCE_KEYS = ['fromEnv', 'fromFile'] as const;

function parseSecretSource(raw: unknown, field: string, bad: (field: string, problem: string) => void): SecretEnvSource | undefined {
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') return { kind: 'value', value: String(raw) };
  if (!isRecord(raw)) {
    bad(field, 'must be a value, {fromEnv: NAME} or {fromFile: path}');
    return undefined;
  }
  unknownKeys(raw, SECRET_SOURCE_KEYS, `${field}.`, bad);
  const kinds = SECRET_SOURCE_KEYS.filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    bad(field, 'needs exactly one of fromEnv, fromFile');
    return undefined;
  }
  const key = kinds[0] as (typeof kinds)[number];
  const value = raw[key];
  if (typeof value !== 'string' || value === '') {
    bad(`${field}.${key}`, key === 'fromEnv' ? 'must be the name of an environment variable' : 'must be a file path');
    return undefined;
  }
  return key === 'fromEnv' ? { kind: 'env', name: value } : { kind: 'file', path: value };
}

/** A parsed job file: the spec (with `task.secretEnvNames` set) and where each secret value comes from. */
export interface ParsedJobFile {
  readonly spec: JobSpec;
  /** Whether the file says `namespace:` (else the spec's namespace is the default). */
  readonly namespaceGiven: boolean;
  /** By name; empty when the file has no `secretEnv`. */
  readonly secretEnv: Readonly<Record<string, SecretEnvSource>>;
}

const RESTART_POLICIES: Readonly<Record<string, RestartPolicyKind>> = { default: 'default', never: 'never', 'on-failure': 'on-failure', always: 'always' };

/**
 * Parses a job file's text (YAML or JSON) into a JobSpec. `source` names the file in errors.
 * Throws {@link JobFileError} listing every problem. (The secret values' sources: {@link parseJobDocument}.)
 */
export function parseJobFile(text: string, source = 'job file'): JobSpec {
  return parseJobDocument(text, source).spec;
}

/**
 * Parses a job file's text (YAML or JSON) into a JobSpec and its secret env sources. `source`
 * names the file in errors. Throws {@link JobFileError} listing every problem. Pure: reads no
 * environment variable and no file.
 */
export function parseJobDocument(text: string, source = 'job file'): ParsedJobFile {
  const doc = yaml().parseDocument(text, { uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = syntax.linePos?.[0];
    const message = (syntax.message.split('\n')[0] ?? syntax.message).replace(/ at line \d+, column \d+:?$/, '');
    throw new JobFileError(source, [`${pos === undefined ? '' : `line ${pos.line}, column ${pos.col}: `}${message}`]);
  }
  const raw: unknown = doc.toJS();
  if (!isRecord(raw)) throw new JobFileError(source, ['must be a mapping of fields (name, kind, command, cpu, memory, ...)']);

  const problems: string[] = [];
  const bad = (field: string, problem: string): void => {
    problems.push(`${field}: ${problem}`);
  };
  unknownKeys(raw, TOP_LEVEL, '', bad);

  const kind = raw.kind;
  if (kind === undefined) bad('kind', 'is required: batch or service');
  else if (kind !== 'batch' && kind !== 'service') bad('kind', `must be batch or service, not ${JSON.stringify(kind)}`);

  const commitModes = ['default', 'incremental', 'all-or-nothing'] as const;
  const commitMode = raw.commitMode ?? 'default';
  if (!commitModes.includes(commitMode as (typeof commitModes)[number])) bad('commitMode', `must be ${commitModes.join(', ')}`);

  let command: string[] = [];
  if (raw.command !== undefined) {
    if (typeof raw.command === 'string') command = ['sh', '-c', raw.command];
    else if (Array.isArray(raw.command) && raw.command.every((a) => ['string', 'number', 'boolean'].includes(typeof a))) command = raw.command.map(String);
    else bad('command', 'must be a list of strings ([sh, -c, "echo hi"]) or one shell command line');
  } else bad('command', 'is required: a list of strings ([sh, -c, "echo hi"]) or one shell command line');

  const env: Record<string, string> = {};
  if (raw.env !== undefined) {
    if (!isRecord(raw.env)) bad('env', 'must be a mapping of NAME: value');
    else for (const [k, v] of Object.entries(raw.env)) env[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }

  const quantity = (field: 'cpu' | 'memory', parse: (v: string | number) => number): number => {
    const value = raw[field];
    if (value === undefined) {
      bad(field, `is required (e.g. ${field === 'cpu' ? '500m or 0.5' : '64Mi'})`);
      return 0;
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      bad(field, 'must be a quantity');
      return 0;
    }
    try {
      return parse(value);
    } catch (error) {
      bad(field, (error as Error).message.replace(/^(cpu|memory): /, ''));
      return 0;
    }
  };
  const cpuMillis = quantity('cpu', parseCpuMillis);
  const memoryBytes = quantity('memory', parseBytes);
  // `logLimit: 1Mi`: cap of each of the task's log files on its agent (absent: the agent's).
  let logLimitBytes = 0;
  if (raw.logLimit !== undefined) {
    if (typeof raw.logLimit !== 'string' && typeof raw.logLimit !== 'number') bad('logLimit', 'must be a quantity like 1Mi');
    else {
      try {
        logLimitBytes = parseBytes(raw.logLimit);
      } catch (error) {
        bad('logLimit', (error as Error).message.replace(/^[a-z]+: /, ''));
      }
    }
  }
  // `diskLimit: 1Gi`: most bytes the task's work dir may use on its agent (absent: the agent's).
  let diskLimitBytes = 0;
  if (raw.diskLimit !== undefined) {
    if (typeof raw.diskLimit !== 'string' && typeof raw.diskLimit !== 'number') bad('diskLimit', 'must be a quantity like 1Gi');
    else {
      try {
        diskLimitBytes = parseBytes(raw.diskLimit);
      } catch (error) {
        bad('diskLimit', (error as Error).message.replace(/^[a-z]+: /, ''));
      }
    }
  }

  const duration = (field: string, value: unknown): number => {
    if (value === undefined) return 0;
    try {
      return parseDuration(value);
    } catch (error) {
      bad(field, (error as Error).message);
      return 0;
    }
  };

  const constraints: Constraint[] = [];
  /** The file's index of each parsed constraint (constraints that could not be read are left out). */
  const constraintIndex: number[] = [];
  if (raw.constraints !== undefined) {
    if (!Array.isArray(raw.constraints)) bad('constraints', 'must be a list');
    else
      raw.constraints.forEach((c, i) => {
        const parsed = parseConstraint(c, `constraints[${i}]`, bad);
        if (parsed === undefined) return;
        constraints.push(parsed);
        constraintIndex.push(i);
      });
  }

  let restart = { kind: 'default' as RestartPolicyKind, maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 };
  if (raw.restart !== undefined) {
    if (!isRecord(raw.restart)) bad('restart', 'must be a mapping like {policy: on-failure, maxRestarts: 3}');
    else {
      unknownKeys(raw.restart, RESTART_KEYS, 'restart.', bad);
      const policy = RESTART_POLICIES[String(raw.restart.policy ?? 'default')];
      if (policy === undefined) bad('restart.policy', 'must be never, on-failure or always');
      restart = {
        kind: policy ?? 'default',
        maxRestarts: typeof raw.restart.maxRestarts === 'number' ? raw.restart.maxRestarts : raw.restart.maxRestarts === undefined ? 0 : NaN,
        initialBackoffMs: duration('restart.initialBackoff', raw.restart.initialBackoff),
        maxBackoffMs: duration('restart.maxBackoff', raw.restart.maxBackoff),
      };
    }
  }

  const integer = (field: string, fallback: number): number => {
    const value = raw[field];
    if (value === undefined) return fallback;
    return typeof value === 'number' ? value : NaN;
  };
  let spec: JobSpec = {
    name: typeof raw.name === 'string' ? raw.name : raw.name === undefined ? '' : String(raw.name),
    namespace: raw.namespace === undefined ? DEFAULT_NAMESPACE : typeof raw.namespace === 'string' ? raw.namespace : String(raw.namespace),
    kind: kind === 'service' ? 'service' : 'batch',
    priority: integer('priority', 0),
    instances: integer('instances', 1),
    commitMode: commitModes.includes(commitMode as (typeof commitModes)[number]) ? (commitMode as JobSpec['commitMode']) : 'default',
    task: {
      command,
      env,
      resources: { cpuMillis, memoryBytes },
      runDurationMs: duration('duration', raw.duration),
      hollowFail: raw.hollowFail === true,
      pidsLimit: integer('pidsLimit', 0),
      ...(logLimitBytes > 0 ? { logLimitBytes } : {}),
      ...(diskLimitBytes > 0 ? { diskLimitBytes } : {}),
      // `network: none`: only loopback (jobSpecProblems names anything but host or none).
      ...(raw.network !== undefined ? { network: String(raw.network) as TaskNetwork } : {}),
      // `user: NAME`: a named user of the machine (jobSpecProblems names a bad name or root).
      ...(raw.user !== undefined ? { user: String(raw.user) } : {}),
    },
    constraints,
    restartPolicy: restart,
  };
  // `retention: 1h`: how long the job's records stay after it finished (absent: the cell's default).
  const retentionMs = duration('retention', raw.retention);
  if (retentionMs > 0) spec = { ...spec, retentionMs };
  // `update: {maxUnavailable: 2, minHealthyTime: 30s, ...}`: a service's rolling update (absent: the defaults).
  if (raw.update !== undefined) {
    if (!isRecord(raw.update)) bad('update', 'must be a mapping like {maxUnavailable: 1, minHealthyTime: 10s, healthyDeadline: 5m, autoRollback: true}');
    else {
      unknownKeys(raw.update, UPDATE_KEYS, 'update.', bad);
      const count = (field: 'maxUnavailable' | 'maxSurge'): number => {
        const value = (raw.update as Record<string, unknown>)[field];
        return value === undefined ? 0 : typeof value === 'number' ? value : NaN;
      };
      if (raw.update.autoRollback !== undefined && typeof raw.update.autoRollback !== 'boolean') bad('update.autoRollback', 'must be true or false');
      spec = {
        ...spec,
        update: {
          maxUnavailable: count('maxUnavailable'),
          maxSurge: count('maxSurge'),
          minHealthyTimeMs: duration('update.minHealthyTime', raw.update.minHealthyTime),
          healthyDeadlineMs: duration('update.healthyDeadline', raw.update.healthyDeadline),
          autoRollback: raw.update.autoRollback === true,
        },
      };
    }
  }
  // `schedule: "*/5 * * * *"` (+ timeZone, concurrency, startingDeadline): a cron job.
  if (raw.schedule !== undefined) {
    if (typeof raw.schedule !== 'string') bad('schedule', 'must be a cron expression in quotes, like "*/5 * * * *"');
    if (raw.timeZone !== undefined && typeof raw.timeZone !== 'string') bad('timeZone', 'must be an IANA time zone name such as Europe/Paris');
    if (raw.concurrency !== undefined && typeof raw.concurrency !== 'string') bad('concurrency', 'must be allow, forbid or replace');
    spec = {
      ...spec,
      schedule: {
        cron: typeof raw.schedule === 'string' ? raw.schedule : '',
        timeZone: typeof raw.timeZone === 'string' ? raw.timeZone : '',
        concurrency: (typeof raw.concurrency === 'string' ? raw.concurrency : 'allow') as CronConcurrency,
        startingDeadlineMs: duration('startingDeadline', raw.startingDeadline),
      },
    };
  } else {
    for (const key of ['timeZone', 'concurrency', 'startingDeadline'] as const) if (raw[key] !== undefined) bad(key, 'applies only to a cron job: give schedule: too');
  }
  // `healthCheck: {http: {port, path}, interval: 10s, ...}`: how the agent checks the task (see health-check-file.ts).
  if (raw.healthCheck !== undefined) {
    const healthCheck = parseHealthCheckBlock(raw.healthCheck, bad, parseDuration);
    if (healthCheck !== undefined) spec = { ...spec, task: { ...spec.task, healthCheck } };
  }
  if (raw.hollowFail !== undefined && typeof raw.hollowFail !== 'boolean') bad('hollowFail', 'must be true or false');
  if (raw.user !== undefined && typeof raw.user !== 'string') bad('user', 'must be a user name (a string)');

  const secretEnv: Record<string, SecretEnvSource> = {};
  if (raw.secretEnv !== undefined) {
    if (!isRecord(raw.secretEnv)) bad('secretEnv', 'must be a mapping of NAME: value, {fromEnv: NAME} or {fromFile: path}');
    else
      for (const [name, value] of Object.entries(raw.secretEnv)) {
        const parsed = parseSecretSource(value, `secretEnv.${name}`, bad);
        if (parsed !== undefined) secretEnv[name] = parsed;
      }
    // The names' rules (the values are checked once read: see secret-env.ts).
    const placeholders = Object.fromEntries(Object.keys(isRecord(raw.secretEnv) ? raw.secretEnv : {}).map((name) => [name, '']));
    for (const p of secretEnvProblems(placeholders, spec)) bad(fileField(p.field), p.problem);
  }

  // The server's own rules, named by this file's fields; skip fields already reported above.
  const reported = new Set(problems.map((p) => p.slice(0, p.indexOf(': '))));
  for (const p of jobSpecProblems(spec)) {
    const field = fileField(p.field).replace(/^constraints\[(\d+)\]/, (_, k: string) => `constraints[${constraintIndex[Number(k)] ?? k}]`);
    if (reported.has(field) || reported.has(field.replace(/\[\d+\]$/, ''))) continue;
    reported.add(field);
    problems.push(`${field}: ${p.problem}`);
  }
  if (problems.length > 0) throw new JobFileError(source, problems);
  const names = secretEnvNames(secretEnv);
  return { spec: names.length === 0 ? spec : { ...spec, task: { ...spec.task, secretEnvNames: names } }, namespaceGiven: raw.namespace !== undefined, secretEnv };
}
