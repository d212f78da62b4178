import { describe, expect, it } from 'vitest';
import { jobSpecFromWire, jobSpecToWire } from './job-spec-wire.js';
import type { WireHealthCheck, WireJobSpec } from './wire.js';

const check = (overrides: Partial<WireHealthCheck>): WireHealthCheck => ({ command: [], http: null, tcp: null, interval_ms: 0, timeout_ms: 0, grace_period_ms: 0, failure_threshold: 0, hollow_failing: false, ...overrides });

function wireSpec(health_check: WireHealthCheck | null): WireJobSpec {
  return {
    name: 'web',
    kind: 'JOB_KIND_SERVICE',
    priority: 0,
    instances: 1,
    commit_mode: 'COMMIT_MODE_UNSPECIFIED',
    task: { command: ['sleep', '300'], env: {}, resources: { cpu_millis: 100, memory_bytes: 64 * 1024 * 1024 }, run_duration_ms: 0, hollow_fail: false, pids_limit: 0, secret_env: {}, secret_env_names: [], log_limit_bytes: 0, network: '', user: '', disk_limit_bytes: 0, health_check },
    constraints: [],
    restart_policy: null,
    retention_ms: 0,
    namespace: '',
    update: null,
    schedule: null,
  };
}

describe('a health check on the wire', () => {
  it('becomes the spec\'s check with zero timings left to the defaults, and comes back the same', () => {
    const result = jobSpecFromWire(wireSpec(check({ http: { port: 8080, path: '/healthz' }, interval_ms: 5000, failure_threshold: 2 })));
    expect(result.problems).toBeUndefined();
    expect(result.spec?.task.healthCheck).toEqual({ http: { port: 8080, path: '/healthz' }, intervalMs: 5000, failureThreshold: 2 });
    expect(jobSpecToWire(result.spec!).task?.health_check).toEqual(check({ http: { port: 8080, path: '/healthz' }, interval_ms: 5000, failure_threshold: 2 }));
    const command = jobSpecFromWire(wireSpec(check({ command: ['test', '-e', 'ready'], grace_period_ms: 3000, hollow_failing: true })));
    expect(command.spec?.task.healthCheck).toEqual({ command: ['test', '-e', 'ready'], gracePeriodMs: 3000, hollowFailing: true });
  });

  it('is absent from the spec when the wire has none, and null in the view', () => {
    const result = jobSpecFromWire(wireSpec(null));
    expect('healthCheck' in (result.spec?.task ?? {})).toBe(false);
    expect(jobSpecToWire(result.spec!).task?.health_check).toBeNull();
  });

  it('is refused with the problem named in proto field names', () => {
    const problems = (c: WireHealthCheck) => (jobSpecFromWire(wireSpec(c)).problems ?? []).map((p) => `${p.field}: ${p.problem}`);
    expect(problems(check({ tcp: { port: 0 } }))).toEqual(['job.task.health_check.tcp.port: must be an integer from 1 to 65535']);
    expect(problems(check({}))).toEqual(['job.task.health_check: must name one of command, http or tcp']);
    expect(problems(check({ tcp: { port: 80 }, interval_ms: 500, timeout_ms: 900 }))).toEqual(['job.task.health_check.timeout_ms: must be at most the interval (500 ms): a check ends before the next one starts']);
  });
});
