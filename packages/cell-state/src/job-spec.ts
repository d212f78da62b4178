/**
 * Job spec validation: every problem named by its field path. Used by the API before storing a
 * job, and by schedulers on stored jobs (a bad record ends as a failed job, never a crash).
 */
import { CONSTRAINT_OPERATORS, NETWORK_NONE_ATTRIBUTE, TASK_NETWORKS, USER_ATTRIBUTE_PREFIX, type JobSpec } from './types.js';
import { healthCheckProblems } from './health-check.js';
import { cronScheduleProblems } from './cron-schedule.js';
import { updateStrategyProblems } from './update-strategy.js';

export interface SpecProblem {
  /** Field path, e.g. `task.resources.memoryBytes`. */
  readonly field: string;
  readonly problem: string;
}

/** Limits a stored job must respect. */
export const JOB_LIMITS = Object.freeze({
  maxInstances: 100_000,
  maxCommandArgs: 1_024,
  maxCommandBytes: 64 * 1024,
  maxEnvEntries: 512,
  maxEnvBytes: 64 * 1024,
  /** Smallest per-job log cap (the agent's supervisor refuses less). */
  minLogLimitBytes: 4096,
  /** Smallest per-job work-dir limit: an empty directory already holds a block or more. */
  minDiskLimitBytes: 1024 * 1024,
  /** Secret env entries (names and values, stored apart from the job: see secrets.ts). */
  maxSecretEnvEntries: 64,
  maxSecretEnvBytes: 64 * 1024,
  maxConstraints: 64,
  maxConstraintValues: 256,
  maxRunDurationMs: 30 * 24 * 3600 * 1000,
  /** A finished job's records are kept at most this long (`retentionMs`): a year. */
  maxRetentionMs: 365 * 24 * 3600 * 1000,
});

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ATTRIBUTE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

/** All problems of a job spec (empty when valid). `prefix` is prepended to field paths. */
export function jobSpecProblems(spec: JobSpec, prefix = ''): SpecProblem[] {
  const out: SpecProblem[] = [];
  const bad = (field: string, problem: string): void => {
    out.push({ field: `${prefix}${field}`, problem });
  };
  if (typeof spec.name !== 'string' || !DNS_LABEL.test(spec.name)) {
    bad('name', 'must be a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit');
  }
  if (typeof spec.namespace !== 'string' || !DNS_LABEL.test(spec.namespace)) {
    bad('namespace', 'must be a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit');
  }
  if (spec.kind !== 'batch' && spec.kind !== 'service') bad('kind', 'must be batch or service');
  if (!isInt(spec.priority) || spec.priority < 0 || spec.priority > 10_000) bad('priority', 'must be an integer from 0 to 10000');
  if (!isInt(spec.instances) || spec.instances < 1) bad('instances', 'must be an integer >= 1');
  else if (spec.instances > JOB_LIMITS.maxInstances) bad('instances', `must be at most ${JOB_LIMITS.maxInstances}`);
  if (spec.commitMode !== 'default' && spec.commitMode !== 'incremental' && spec.commitMode !== 'all-or-nothing') {
    bad('commitMode', 'must be default, incremental or all-or-nothing');
  }

  const task = spec.task;
  if (task === undefined || task === null) {
    bad('task', 'is required');
    return out;
  }
  const r = task.resources;
  for (const [name, value] of [
    ['cpuMillis', r?.cpuMillis],
    ['memoryBytes', r?.memoryBytes],
  ] as const) {
    if (!isInt(value)) bad(`task.resources.${name}`, 'must be an integer');
    else if (value <= 0) bad(`task.resources.${name}`, 'must be > 0');
  }
  if (!Array.isArray(task.command)) bad('task.command', 'must be a list of strings');
  else {
    // An empty argv would only fail later, at the agent, after a placement; hollow tasks ignore
    // the command but get the same rule, so a job means the same on every machine.
    if (task.command.length === 0) bad('task.command', 'must not be empty');
    if (task.command.length > JOB_LIMITS.maxCommandArgs) bad('task.command', `must have at most ${JOB_LIMITS.maxCommandArgs} arguments`);
    if (task.command.some((a) => typeof a !== 'string' || a.includes('\0'))) bad('task.command', 'arguments must be strings without NUL bytes');
    if (task.command.reduce((n, a) => n + String(a).length, 0) > JOB_LIMITS.maxCommandBytes) bad('task.command', `must be at most ${JOB_LIMITS.maxCommandBytes} bytes`);
    if (task.command.length > 0 && task.command[0] === '') bad('task.command[0]', 'must not be empty');
  }
  const env = Object.entries(task.env ?? {});
  if (env.length > JOB_LIMITS.maxEnvEntries) bad('task.env', `must have at most ${JOB_LIMITS.maxEnvEntries} entries`);
  for (const [k, v] of env) {
    if (!ENV_NAME.test(k)) bad(`task.env.${k}`, 'name must be letters, digits and "_", not starting with a digit');
    if (typeof v !== 'string' || v.includes('\0')) bad(`task.env.${k}`, 'value must be a string without NUL bytes');
  }
  if (env.reduce((n, [k, v]) => n + k.length + String(v).length, 0) > JOB_LIMITS.maxEnvBytes) bad('task.env', `must be at most ${JOB_LIMITS.maxEnvBytes} bytes`);
  for (const p of secretEnvNameProblems(task.secretEnvNames, task.env)) bad(p.field, p.problem);
  if (!isInt(task.runDurationMs) || task.runDurationMs < 0 || task.runDurationMs > JOB_LIMITS.maxRunDurationMs) {
    bad('task.runDurationMs', `must be an integer from 0 to ${JOB_LIMITS.maxRunDurationMs}`);
  }
  if (!isInt(task.pidsLimit) || task.pidsLimit < 0) bad('task.pidsLimit', 'must be an integer >= 0');
  if (task.logLimitBytes !== undefined && (!isInt(task.logLimitBytes) || task.logLimitBytes < 0 || (task.logLimitBytes > 0 && task.logLimitBytes < JOB_LIMITS.minLogLimitBytes))) {
    bad('task.logLimitBytes', `must be 0 (the agent's cap) or an integer of at least ${JOB_LIMITS.minLogLimitBytes} bytes`);
  }
  if (task.diskLimitBytes !== undefined && (!isInt(task.diskLimitBytes) || task.diskLimitBytes < 0 || (task.diskLimitBytes > 0 && task.diskLimitBytes < JOB_LIMITS.minDiskLimitBytes))) {
    bad('task.diskLimitBytes', `must be 0 (the agent's limit) or an integer of at least ${JOB_LIMITS.minDiskLimitBytes} bytes`);
  }

  if (task.network !== undefined && !TASK_NETWORKS.includes(task.network)) bad('task.network', `must be one of ${TASK_NETWORKS.join(', ')}`);
  for (const p of healthCheckProblems(task)) bad(p.field, p.problem);
  if (task.user !== undefined) {
    const problem = taskUserProblem(task.user);
    if (problem !== undefined) bad('task.user', problem);
  }

  if (!Array.isArray(spec.constraints)) bad('constraints', 'must be a list');
  else {
    if (spec.constraints.length > JOB_LIMITS.maxConstraints) bad('constraints', `must have at most ${JOB_LIMITS.maxConstraints} entries`);
    spec.constraints.forEach((c, i) => {
      const f = `constraints[${i}]`;
      if (!CONSTRAINT_OPERATORS.includes(c.operator)) {
        bad(`${f}.operator`, `must be one of ${CONSTRAINT_OPERATORS.join(', ')}`);
        return;
      }
      if (c.operator !== 'max-per-machine' && (typeof c.attribute !== 'string' || !ATTRIBUTE.test(c.attribute))) {
        bad(`${f}.attribute`, 'must be 1-128 letters, digits, ".", "_", "/" or "-"');
      }
      const needValues = c.operator === 'equals' || c.operator === 'in' || c.operator === 'not-in';
      if (needValues && (!Array.isArray(c.values) || c.values.length === 0)) bad(`${f}.values`, `must not be empty for ${c.operator}`);
      if (c.operator === 'equals' && Array.isArray(c.values) && c.values.length > 1) bad(`${f}.values`, 'equals takes exactly one value');
      if (Array.isArray(c.values) && c.values.length > JOB_LIMITS.maxConstraintValues) bad(`${f}.values`, `must have at most ${JOB_LIMITS.maxConstraintValues} entries`);
      if (c.operator === 'max-per-machine' && (!isInt(c.limit) || c.limit < 1)) bad(`${f}.limit`, 'must be an integer >= 1 for max-per-machine');
    });
  }

  const p = spec.restartPolicy;
  if (p !== undefined) {
    if (!['default', 'never', 'on-failure', 'always'].includes(p.kind)) bad('restartPolicy.kind', 'must be never, on-failure or always');
    for (const [name, value] of [
      ['maxRestarts', p.maxRestarts],
      ['initialBackoffMs', p.initialBackoffMs],
      ['maxBackoffMs', p.maxBackoffMs],
    ] as const) {
      if (!isInt(value) || value < 0) bad(`restartPolicy.${name}`, 'must be an integer >= 0');
    }
  }
  if (spec.retentionMs !== undefined && (!isInt(spec.retentionMs) || spec.retentionMs < 0 || spec.retentionMs > JOB_LIMITS.maxRetentionMs)) {
    bad('retentionMs', `must be an integer number of ms from 0 (the cell's default) to ${JOB_LIMITS.maxRetentionMs} (a year)`);
  }
  out.push(...updateStrategyProblems(spec.update, prefix));
  out.push(...cronScheduleProblems(spec, prefix));
  return out;
}

/** Secret names the agent sets itself (`OMEGA_JOB_ID`, ...): a secret may not take them. */
const RESERVED_SECRET_PREFIX = 'OMEGA_';

/** Problems of one secret env name (shared by the stored names and the submitted values). */
function secretNameProblem(name: string, env: Readonly<Record<string, string>> | undefined): string | undefined {
  if (!ENV_NAME.test(name)) return 'name must be letters, digits and "_", not starting with a digit';
  if (name.startsWith(RESERVED_SECRET_PREFIX)) return `name must not start with ${RESERVED_SECRET_PREFIX} (reserved for the variables the agent sets)`;
  if (env !== undefined && Object.hasOwn(env, name)) return `is also in task.env: a name is either secret or not`;
  return undefined;
}

/** The stored spec's `task.secretEnvNames`: a sorted list of unique valid names, none also in `env`. */
function secretEnvNameProblems(names: readonly string[] | undefined, env: Readonly<Record<string, string>> | undefined): SpecProblem[] {
  if (names === undefined) return [];
  if (!Array.isArray(names)) return [{ field: 'task.secretEnvNames', problem: 'must be a list of names' }];
  const out: SpecProblem[] = [];
  if (names.length > JOB_LIMITS.maxSecretEnvEntries) out.push({ field: 'task.secretEnvNames', problem: `must have at most ${JOB_LIMITS.maxSecretEnvEntries} entries` });
  names.forEach((name, i) => {
    const problem = typeof name === 'string' ? secretNameProblem(name, env) : 'must be a string';
    if (problem !== undefined) out.push({ field: `task.secretEnvNames[${i}]`, problem });
    else if (i > 0 && !(String(names[i - 1]) < name)) out.push({ field: `task.secretEnvNames[${i}]`, problem: 'names must be sorted and unique' });
  });
  return out;
}

/** A POSIX user name (what `useradd` accepts by default), at most 32 characters. */
const TASK_USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Why `user` cannot be a job's `task.user`, or undefined when it can: a POSIX user name and
 * never `root` (the agent also refuses any name whose uid is 0).
 */
export function taskUserProblem(user: unknown): string | undefined {
  if (typeof user !== 'string' || !TASK_USER_NAME.test(user)) return `must be a user name (lowercase letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters), got ${JSON.stringify(user)}`;
  if (user === 'root') return 'must not be root';
  return undefined;
}

/** The machine attribute (`omega.users.<name>`) an agent sets to `true` for each user it lets jobs run as. */
export function userAttribute(user: string): string {
  return `${USER_ATTRIBUTE_PREFIX}${user}`;
}

/** A machine attribute a job's task spec requires (beyond its constraints), and its `ruledOut` name. */
export interface SpecRequirement {
  readonly name: string;
  readonly attribute: string;
  readonly value: string;
}

const NETWORK_NONE_REQUIREMENT: SpecRequirement = { name: `attribute ${NETWORK_NONE_ATTRIBUTE} equals true`, attribute: NETWORK_NONE_ATTRIBUTE, value: 'true' };

/**
 * The machine attributes a job's task spec implies, whatever the scheduler: `network: none`
 * needs `omega.isolation.network-none=true` (set by agents that can give it); `user: NAME` needs
 * `omega.users.NAME=true` (set by agents whose `--allow-users` names it). The one place such
 * rules live; schedulers offer a job only machines that meet them (scheduler-core), so a job lands
 * only where its agent will run it, and `ruledOut` names the attribute the others lacked. Empty
 * (the common case) allocates nothing.
 */
export function specRequirements(spec: Pick<JobSpec, 'task'>): readonly SpecRequirement[] {
  const networkNone = spec.task?.network === 'none';
  const user = spec.task?.user;
  if (user === undefined || user === '') return networkNone ? [NETWORK_NONE_REQUIREMENT] : NO_REQUIREMENTS;
  const attribute = userAttribute(user);
  const userRequirement: SpecRequirement = { name: `attribute ${attribute} equals true`, attribute, value: 'true' };
  return networkNone ? [NETWORK_NONE_REQUIREMENT, userRequirement] : [userRequirement];
}
const NO_REQUIREMENTS: readonly SpecRequirement[] = [];

/**
 * All problems of a job's secret env values as submitted (empty when valid), named
 * `<prefix>task.secretEnv.<NAME>`: names like env names, not `OMEGA_*`, not also in the spec's
 * `task.env`; values strings without NUL bytes; at most {@link JOB_LIMITS}`.maxSecretEnvEntries`
 * entries and `.maxSecretEnvBytes` bytes (names and values, UTF-8). A problem never quotes a
 * value: messages end up in logs and replies.
 */
export function secretEnvProblems(secretEnv: Readonly<Record<string, unknown>>, spec: Pick<JobSpec, 'task'>, prefix = ''): SpecProblem[] {
  const out: SpecProblem[] = [];
  const entries = Object.entries(secretEnv);
  if (entries.length > JOB_LIMITS.maxSecretEnvEntries) out.push({ field: `${prefix}task.secretEnv`, problem: `must have at most ${JOB_LIMITS.maxSecretEnvEntries} entries` });
  let bytes = 0;
  for (const [name, value] of entries) {
    const problem = secretNameProblem(name, spec.task?.env);
    if (problem !== undefined) out.push({ field: `${prefix}task.secretEnv.${name}`, problem });
    if (typeof value !== 'string' || value.includes('\0')) out.push({ field: `${prefix}task.secretEnv.${name}`, problem: 'value must be a string without NUL bytes' });
    bytes += Buffer.byteLength(name) + Buffer.byteLength(String(value));
  }
  if (bytes > JOB_LIMITS.maxSecretEnvBytes) out.push({ field: `${prefix}task.secretEnv`, problem: `must be at most ${JOB_LIMITS.maxSecretEnvBytes} bytes (names and values)` });
  return out;
}

/** The stored form of a set of secret names: sorted, as `task.secretEnvNames` must be. */
export function secretEnvNames(secretEnv: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(secretEnv).sort();
}
