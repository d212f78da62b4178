/**
 * The `healthCheck:` block of a job file → the spec's `task.healthCheck`:
 *
 * ```yaml
 * healthCheck:
 *   http: {port: 8080, path: /healthz}   # or tcp: {port: 5432}, or command: [test, -e, ready]
 *   interval: 10s                        # default 10s
 *   timeout: 1s                          # default 1s (at most the interval)
 *   gracePeriod: 30s                     # default 0: no check before this long after the start
 *   failureThreshold: 3                  # default 3: failures in a row that stop the task
 * ```
 *
 * `command` is a list of strings, or one shell command line (run by `sh -c`) as the job's own
 * `command` may be. Only the shape is checked here; the rules (exactly one kind, ports, ranges,
 * `network: none` with http/tcp) are cell-state's, reported by the job file parser by file field.
 */
import type { HealthCheck } from '@omega/cell-state/vocabulary';

const HEALTH_CHECK_KEYS = ['command', 'http', 'tcp', 'interval', 'timeout', 'gracePeriod', 'failureThreshold', 'hollowFailing'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A port as written: numbers only (a string is reported, not guessed). */
function port(value: unknown, field: string, bad: (field: string, problem: string) => void): number {
  if (typeof value === 'number') return value;
  bad(field, 'must be a port number from 1 to 65535');
  return 1;
}

/**
 * Parses `raw` (the value of `healthCheck:`); reports shape problems through `bad` with file
 * field names (`healthCheck.interval`, ...), durations read by the job file's `parseDuration`
 * (passed in: the job file parser imports this module). Returns undefined when the block is unusable.
 */
export function parseHealthCheckBlock(raw: unknown, bad: (field: string, problem: string) => void, parseDuration: (value: unknown) => number): HealthCheck | undefined {
  if (!isRecord(raw)) {
    bad('healthCheck', 'must be a mapping like {http: {port: 8080, path: /healthz}, interval: 10s}');
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!(HEALTH_CHECK_KEYS as readonly string[]).includes(key)) bad(`healthCheck.${key}`, `is not a known field (known: ${HEALTH_CHECK_KEYS.join(', ')})`);
  }
  const duration = (key: 'interval' | 'timeout' | 'gracePeriod'): number => {
    if (raw[key] === undefined) return 0;
    try {
      return parseDuration(raw[key]);
    } catch (error) {
      bad(`healthCheck.${key}`, (error as Error).message);
      return 0;
    }
  };
  let command: string[] | undefined;
  if (raw.command !== undefined) {
    if (typeof raw.command === 'string') command = ['sh', '-c', raw.command];
    else if (Array.isArray(raw.command) && raw.command.every((a) => ['string', 'number', 'boolean'].includes(typeof a))) command = raw.command.map(String);
    else bad('healthCheck.command', 'must be a list of strings ([test, -e, ready]) or one shell command line');
  }
  let http: { port: number; path: string } | undefined;
  if (raw.http !== undefined) {
    if (!isRecord(raw.http)) bad('healthCheck.http', 'must be a mapping like {port: 8080, path: /healthz}');
    else {
      for (const key of Object.keys(raw.http)) if (key !== 'port' && key !== 'path') bad(`healthCheck.http.${key}`, 'is not a known field (known: port, path)');
      http = { port: port(raw.http.port, 'healthCheck.http.port', bad), path: raw.http.path === undefined ? '/' : String(raw.http.path) };
    }
  }
  let tcp: { port: number } | undefined;
  if (raw.tcp !== undefined) {
    if (!isRecord(raw.tcp)) bad('healthCheck.tcp', 'must be a mapping like {port: 5432}');
    else {
      for (const key of Object.keys(raw.tcp)) if (key !== 'port') bad(`healthCheck.tcp.${key}`, 'is not a known field (known: port)');
      tcp = { port: port(raw.tcp.port, 'healthCheck.tcp.port', bad) };
    }
  }
  const threshold = raw.failureThreshold;
  if (threshold !== undefined && typeof threshold !== 'number') bad('healthCheck.failureThreshold', 'must be an integer from 1 to 100');
  if (raw.hollowFailing !== undefined && typeof raw.hollowFailing !== 'boolean') bad('healthCheck.hollowFailing', 'must be true or false');
  const intervalMs = duration('interval');
  const timeoutMs = duration('timeout');
  const gracePeriodMs = duration('gracePeriod');
  return {
    ...(command === undefined ? {} : { command }),
    ...(http === undefined ? {} : { http }),
    ...(tcp === undefined ? {} : { tcp }),
    ...(intervalMs > 0 ? { intervalMs } : {}),
    ...(timeoutMs > 0 ? { timeoutMs } : {}),
    ...(gracePeriodMs > 0 ? { gracePeriodMs } : {}),
    ...(typeof threshold === 'number' && threshold !== 0 ? { failureThreshold: threshold } : {}),
    ...(raw.hollowFailing === true ? { hollowFailing: true } : {}),
  };
}
