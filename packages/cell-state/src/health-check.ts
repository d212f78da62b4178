/**
 * Health checks in a job spec: their defaults, their resolved form, and their validation. The
 * agent runs them (node-agent's health-checks.ts) and writes `Task.health`; schedulers read it
 * (a rolling update counts an instance healthy once it has been `passing` long enough).
 *
 * Defaults are Kubernetes' (a liveness probe's period 10 s, timeout 1 s, failure threshold 3,
 * no initial delay). A stored spec keeps 0 / absent for a default, so the defaults may change
 * without rewriting records.
 */
import type { HealthCheck, TaskSpec } from './types.js';

/** Reason of a task the agent stopped after `failureThreshold` consecutive failed checks. */
export const HEALTH_CHECK_FAILED = 'health-check-failed';

/** What a check's absent or 0 timings mean (the timeout: at most the interval). */
export const HEALTH_CHECK_DEFAULTS = Object.freeze({
  intervalMs: 10_000,
  timeoutMs: 1_000,
  gracePeriodMs: 0,
  failureThreshold: 3,
});

/** Bounds a check must respect (validation). */
export const HEALTH_CHECK_LIMITS = Object.freeze({
  minIntervalMs: 100,
  maxIntervalMs: 3600_000,
  minTimeoutMs: 10,
  maxGracePeriodMs: 3600_000,
  maxFailureThreshold: 100,
  maxPathBytes: 1024,
});

/** The kind of check: exactly one per check. */
export type HealthCheckKind = 'command' | 'http' | 'tcp';

/** A check with every timing resolved (defaults applied). */
export interface ResolvedHealthCheck {
  readonly kind: HealthCheckKind;
  readonly command: readonly string[];
  readonly port: number;
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly gracePeriodMs: number;
  readonly failureThreshold: number;
  readonly hollowFailing: boolean;
}

const orDefault = (value: number | undefined, fallback: number): number => (value === undefined || value === 0 ? fallback : value);

/** Which kinds a check names (a valid one names exactly one). */
function kindsOf(check: HealthCheck): HealthCheckKind[] {
  const kinds: HealthCheckKind[] = [];
  if (check.command !== undefined) kinds.push('command');
  if (check.http !== undefined) kinds.push('http');
  if (check.tcp !== undefined) kinds.push('tcp');
  return kinds;
}

/** The check with its defaults applied. Call on a validated spec only (`jobSpecProblems`). */
export function resolveHealthCheck(check: HealthCheck): ResolvedHealthCheck {
  const kind = kindsOf(check)[0] ?? 'tcp';
  const intervalMs = orDefault(check.intervalMs, HEALTH_CHECK_DEFAULTS.intervalMs);
  return {
    kind,
    command: check.command ?? [],
    port: check.http?.port ?? check.tcp?.port ?? 0,
    path: check.http?.path ?? '',
    intervalMs,
    // The default timeout never outlasts a shorter interval; a timeout given must fit it (validation).
    timeoutMs: orDefault(check.timeoutMs, Math.min(HEALTH_CHECK_DEFAULTS.timeoutMs, intervalMs)),
    gracePeriodMs: check.gracePeriodMs ?? HEALTH_CHECK_DEFAULTS.gracePeriodMs,
    failureThreshold: orDefault(check.failureThreshold, HEALTH_CHECK_DEFAULTS.failureThreshold),
    hollowFailing: check.hollowFailing === true,
  };
}

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n);
}

function portProblem(port: unknown): string | undefined {
  return isInt(port) && port >= 1 && port <= 65535 ? undefined : 'must be an integer from 1 to 65535';
}

/**
 * The problems of `task.healthCheck` (empty when valid or absent), named `<prefix>task.healthCheck.<field>`.
 * `http` and `tcp` checks are refused for a task with `network: none`: the agent connects to
 * 127.0.0.1 of the host, and such a task listens only on a loopback of its own (use a
 * `command` check, which runs inside the task's network namespace).
 */
export function healthCheckProblems(task: Pick<TaskSpec, 'healthCheck' | 'network'>, prefix = ''): { field: string; problem: string }[] {
  const check = task.healthCheck;
  if (check === undefined) return [];
  const out: { field: string; problem: string }[] = [];
  const f = `${prefix}task.healthCheck`;
  const bad = (field: string, problem: string): void => {
    out.push({ field: field === '' ? f : `${f}.${field}`, problem });
  };
  if (check === null || typeof check !== 'object') {
    bad('', 'must be an object with one of command, http or tcp');
    return out;
  }
  const kinds = kindsOf(check);
  if (kinds.length !== 1) bad('', kinds.length === 0 ? 'must name one of command, http or tcp' : `must name exactly one of command, http or tcp, not ${kinds.join(' and ')}`);
  if (check.command !== undefined) {
    if (!Array.isArray(check.command) || check.command.length === 0) bad('command', 'must be a non-empty list of strings (an argv)');
    else {
      if (check.command.some((a) => typeof a !== 'string' || a.includes('\0'))) bad('command', 'arguments must be strings without NUL bytes');
      if (check.command[0] === '') bad('command[0]', 'must not be empty');
      if (check.command.length > 256) bad('command', 'must have at most 256 arguments');
      if (check.command.reduce((n, a) => n + String(a).length, 0) > 16 * 1024) bad('command', 'must be at most 16384 bytes');
    }
  }
  if (check.http !== undefined) {
    const problem = portProblem(check.http?.port);
    if (problem !== undefined) bad('http.port', problem);
    const path = check.http?.path;
    if (typeof path !== 'string' || !path.startsWith('/') || /[\s\0]/.test(path)) bad('http.path', 'must be a path starting with "/", without spaces');
    else if (Buffer.byteLength(path) > HEALTH_CHECK_LIMITS.maxPathBytes) bad('http.path', `must be at most ${HEALTH_CHECK_LIMITS.maxPathBytes} bytes`);
  }
  if (check.tcp !== undefined) {
    const problem = portProblem(check.tcp?.port);
    if (problem !== undefined) bad('tcp.port', problem);
  }
  if (task.network === 'none' && (check.http !== undefined || check.tcp !== undefined)) {
    bad(check.http !== undefined ? 'http' : 'tcp', 'cannot check a task with network: none (it listens only on a loopback of its own, which the agent does not reach); use a command check');
  }
  const L = HEALTH_CHECK_LIMITS;
  const timing = (name: 'intervalMs' | 'timeoutMs' | 'gracePeriodMs' | 'failureThreshold', min: number, max: number, what: string): void => {
    const value = check[name];
    if (value === undefined || value === 0) return;
    if (!isInt(value) || value < min || value > max) bad(name, `must be 0 (the default) or an integer ${what} from ${min} to ${max}`);
  };
  timing('intervalMs', L.minIntervalMs, L.maxIntervalMs, 'of ms');
  timing('timeoutMs', L.minTimeoutMs, L.maxIntervalMs, 'of ms');
  timing('gracePeriodMs', 0, L.maxGracePeriodMs, 'of ms');
  timing('failureThreshold', 1, L.maxFailureThreshold, '');
  if (out.length === 0) {
    const resolved = resolveHealthCheck(check);
    if (resolved.timeoutMs > resolved.intervalMs) bad('timeoutMs', `must be at most the interval (${resolved.intervalMs} ms): a check ends before the next one starts`);
  }
  if (check.hollowFailing !== undefined && typeof check.hollowFailing !== 'boolean') bad('hollowFailing', 'must be true or false');
  return out;
}
