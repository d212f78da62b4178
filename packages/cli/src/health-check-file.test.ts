import { describe, expect, it } from 'vitest';
import { JobFileError, parseJobFile } from './job-file.js';
import { formatJob } from './output.js';
import { jobOutput, jobSpecToWire, type JobView as WireJobView, type TaskView as WireTaskView } from './wire.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');
const base = 'name: web\nkind: service\ncommand: [python3, -m, http.server, "8080"]\ncpu: 100m\nmemory: 64Mi\n';

function problems(text: string): string[] {
  try {
    parseJobFile(text);
    return [];
  } catch (error) {
    if (error instanceof JobFileError) return [...error.problems];
    throw error;
  }
}

describe('a job file healthCheck block', () => {
  it('reads each kind, with durations in the file\'s syntax', () => {
    expect(parseJobFile(`${base}healthCheck: {http: {port: 8080, path: /healthz}, interval: 5s, timeout: 500ms, gracePeriod: 1m, failureThreshold: 2}\n`).task.healthCheck).toEqual({
      http: { port: 8080, path: '/healthz' },
      intervalMs: 5000,
      timeoutMs: 500,
      gracePeriodMs: 60_000,
      failureThreshold: 2,
    });
    expect(parseJobFile(`${base}healthCheck: {tcp: {port: 5432}}\n`).task.healthCheck).toEqual({ tcp: { port: 5432 } });
    expect(parseJobFile(`${base}healthCheck: {command: [test, -e, ready]}\n`).task.healthCheck).toEqual({ command: ['test', '-e', 'ready'] });
    expect(parseJobFile(`${base}healthCheck: {command: "test -e ready"}\n`).task.healthCheck).toEqual({ command: ['sh', '-c', 'test -e ready'] });
    expect(parseJobFile(`${base}healthCheck: {http: {port: 8080}}\n`).task.healthCheck).toEqual({ http: { port: 8080, path: '/' } });
    expect('healthCheck' in parseJobFile(base).task).toBe(false);
  });

  it('names every problem by the file\'s own fields', () => {
    expect(problems(`${base}healthCheck: {tcp: {port: 5432}, intervall: 5s}\n`)).toEqual([expect.stringMatching(/^healthCheck\.intervall: is not a known field/)]);
    expect(problems(`${base}healthCheck: {tcp: {port: 5432}, interval: soon}\n`)).toEqual([expect.stringMatching(/^healthCheck\.interval: "soon" is not a duration/)]);
    expect(problems(`${base}healthCheck: {tcp: {port: 99999}}\n`)).toEqual(['healthCheck.tcp.port: must be an integer from 1 to 65535']);
    expect(problems(`${base}healthCheck: {tcp: {port: 1}, http: {port: 2}}\n`)).toEqual(['healthCheck: must name exactly one of command, http or tcp, not http and tcp']);
    expect(problems(`${base}healthCheck: {tcp: {port: 1}, interval: 1s, timeout: 2s}\n`)).toEqual([expect.stringMatching(/^healthCheck\.timeout: must be at most the interval/)]);
    expect(problems(`${base}network: none\nhealthCheck: {http: {port: 8080}}\n`)).toEqual([expect.stringMatching(/^healthCheck\.http: cannot check a task with network: none/)]);
  });
});

describe('omega job with health checks', () => {
  const task = (index: number, overrides: Partial<WireTaskView>): WireTaskView => ({
    index, state: 'TASK_VIEW_STATE_RUNNING', machine: 'dev-0', has_exit_code: false, exit_code: 0, signal: '', reason: '', message: '', attempt: 1, restarts: 0,
    placed_at_ms: NOW - 120_000, started_at_ms: NOW - 100_000, finished_at_ms: 0, cpu_seconds: 0, peak_memory_bytes: 0, version: 1, health: '', health_since_ms: 0, ...overrides,
  });
  const view = (tasks: WireTaskView[]): WireJobView => ({
    id: 'web-1',
    spec: jobSpecToWire(parseJobFile(`${base}instances: 3\nhealthCheck: {http: {port: 8080, path: /healthz}, gracePeriod: 30s}\n`)) as unknown as WireJobView['spec'],
    state: 'JOB_VIEW_STATE_RUNNING', reason: '', ruled_out: [], kill_requested: false, submitted_at_ms: NOW - 200_000, scheduler: 'service-0', tasks,
    task_counts: { pending: 0, placed: 0, running: 3, succeeded: 0, failed: 0, killed: 0, lost: 0 },
    version: 1, deployment: null, cron: null, cron_run: null,
  });

  it('shows each instance\'s health and since when, and the check itself', () => {
    const job = jobOutput(view([task(0, { health: 'passing', health_since_ms: NOW - 60_000 }), task(1, { health: 'failing', health_since_ms: NOW - 5_000 }), task(2, {})]));
    expect(job.tasks.map((t) => [t.health, t.healthSinceMs])).toEqual([['passing', NOW - 60_000], ['failing', NOW - 5_000], [null, 0]]);
    expect(job.spec.healthCheck).toEqual({ kind: 'http', command: [], port: 8080, path: '/healthz', intervalMs: 10_000, timeoutMs: 1_000, gracePeriodMs: 30_000, failureThreshold: 3 });
    const text = formatJob(job, NOW);
    expect(text).toContain('Health:     http 127.0.0.1:8080/healthz every 10s (timeout 1s, grace 30s, 3 failures in a row stop it)');
    expect(text).toMatch(/\nINDEX\s+STATE\s+HEALTH\s+MACHINE/);
    expect(text).toMatch(/\n0\s+running\s+passing 60s\s+dev-0/);
    expect(text).toMatch(/\n1\s+running\s+failing 5s\s+dev-0/);
    expect(text).toMatch(/\n2\s+running\s+-\s+dev-0/);
  });

  it('shows no health for a server that predates health checks', () => {
    const old = task(0, {}) as Partial<WireTaskView>;
    delete old.health;
    delete old.health_since_ms;
    expect(jobOutput(view([old as WireTaskView])).tasks[0]).toMatchObject({ health: null, healthSinceMs: 0 });
  });
});
