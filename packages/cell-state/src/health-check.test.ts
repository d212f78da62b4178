import { describe, expect, it } from 'vitest';
import { decodeJob, decodeTask, encodeJob, encodeTask } from './codec.js';
import { HEALTH_CHECK_DEFAULTS, resolveHealthCheck } from './health-check.js';
import { jobSpecProblems } from './job-spec.js';
import { jobSpec } from './testing/builders.js';
import { claimId, jobId, machineId, type HealthCheck, type JobSpec, type Task } from './types.js';

const job = (spec: JobSpec) => ({ id: jobId('j'), spec, desired: 'running' as const, submittedAtMs: 1, requestId: '' });
const problems = (check: unknown, network?: 'none') => {
  const spec = jobSpec('web').service().healthCheck(check as HealthCheck).build();
  return jobSpecProblems(network === undefined ? spec : { ...spec, task: { ...spec.task, network } });
};

describe('a health check in a job spec', () => {
  it('is kept through an encode and decode, each kind, and absent when the job has none so older records read back equal', () => {
    const checks: HealthCheck[] = [
      { command: ['test', '-e', '/tmp/ready'], intervalMs: 2000, timeoutMs: 500, gracePeriodMs: 3000, failureThreshold: 5 },
      { http: { port: 8080, path: '/healthz' } },
      { tcp: { port: 5432 }, hollowFailing: true },
    ];
    for (const check of checks) expect(decodeJob(encodeJob(job(jobSpec('web').healthCheck(check).build())), 3).spec.task.healthCheck).toEqual(check);
    expect('healthCheck' in decodeJob(encodeJob(job(jobSpec('web').build())), 3).spec.task).toBe(false);
  });

  it('takes the defaults for the timings it leaves out (10 s, 1 s, no grace, 3 failures)', () => {
    expect(resolveHealthCheck({ tcp: { port: 80 } })).toEqual({ kind: 'tcp', command: [], port: 80, path: '', ...HEALTH_CHECK_DEFAULTS, hollowFailing: false });
    expect(HEALTH_CHECK_DEFAULTS).toEqual({ intervalMs: 10_000, timeoutMs: 1_000, gracePeriodMs: 0, failureThreshold: 3 });
    expect(resolveHealthCheck({ command: ['true'], intervalMs: 2000, failureThreshold: 1 })).toMatchObject({ kind: 'command', intervalMs: 2000, timeoutMs: 1000, failureThreshold: 1 });
    // The default timeout shrinks to a shorter interval; a timeout given is kept.
    expect(resolveHealthCheck({ command: ['true'], intervalMs: 200 }).timeoutMs).toBe(200);
    expect(problems({ command: ['true'], intervalMs: 200 })).toEqual([]);
  });

  it('accepts each kind alone', () => {
    expect(problems({ command: ['true'] })).toEqual([]);
    expect(problems({ http: { port: 80, path: '/' } })).toEqual([]);
    expect(problems({ tcp: { port: 1 } })).toEqual([]);
    expect(problems({ command: ['true'] }, 'none')).toEqual([]);
  });

  it('refuses none or more than one kind, naming the field', () => {
    expect(problems({})).toEqual([{ field: 'task.healthCheck', problem: 'must name one of command, http or tcp' }]);
    expect(problems({ command: ['true'], tcp: { port: 80 } })).toEqual([{ field: 'task.healthCheck', problem: 'must name exactly one of command, http or tcp, not command and tcp' }]);
  });

  it('refuses a bad command, port or path, each named', () => {
    expect(problems({ command: [] })).toEqual([{ field: 'task.healthCheck.command', problem: 'must be a non-empty list of strings (an argv)' }]);
    expect(problems({ command: ['', 'x'] })).toEqual([{ field: 'task.healthCheck.command[0]', problem: 'must not be empty' }]);
    expect(problems({ tcp: { port: 70000 } })).toEqual([{ field: 'task.healthCheck.tcp.port', problem: 'must be an integer from 1 to 65535' }]);
    expect(problems({ http: { port: 0, path: 'healthz' } }).map((p) => p.field)).toEqual(['task.healthCheck.http.port', 'task.healthCheck.http.path']);
  });

  it('refuses http and tcp checks for a task with network: none, pointing to a command check', () => {
    const [problem] = problems({ http: { port: 80, path: '/' } }, 'none');
    expect(problem?.field).toBe('task.healthCheck.http');
    expect(problem?.problem).toMatch(/network: none.*use a command check/);
    expect(problems({ tcp: { port: 80 } }, 'none').map((p) => p.field)).toEqual(['task.healthCheck.tcp']);
  });

  it('refuses timings out of range, and a timeout longer than the interval', () => {
    expect(problems({ tcp: { port: 80 }, intervalMs: 50 }).map((p) => p.field)).toEqual(['task.healthCheck.intervalMs']);
    expect(problems({ tcp: { port: 80 }, failureThreshold: 1000 }).map((p) => p.field)).toEqual(['task.healthCheck.failureThreshold']);
    expect(problems({ tcp: { port: 80 }, gracePeriodMs: -1 }).map((p) => p.field)).toEqual(['task.healthCheck.gracePeriodMs']);
    expect(problems({ tcp: { port: 80 }, intervalMs: 1.5 }).map((p) => p.field)).toEqual(['task.healthCheck.intervalMs']);
    expect(problems({ tcp: { port: 80 }, intervalMs: 500, timeoutMs: 2000 })).toEqual([{ field: 'task.healthCheck.timeoutMs', problem: 'must be at most the interval (500 ms): a check ends before the next one starts' }]);
  });
});

describe('a task record health', () => {
  const task: Omit<Task, 'revision' | 'id'> = {
    jobId: jobId('j'), index: 0, attempt: 1, claimId: claimId('c'), machineId: machineId('m'), scheduler: 's', state: 'running', reason: '', message: '', signal: '', pid: 1,
    placedAtMs: 1, startedAtMs: 2, finishedAtMs: 0, cpuSeconds: 0, peakMemoryBytes: 0, resources: { cpuMillis: 1, memoryBytes: 1 }, priority: 0, restarts: 0, notBeforeMs: 0,
  };

  it('is kept with when it began, and absent in a record that has none', () => {
    expect(decodeTask(encodeTask({ ...task, health: 'passing', healthSinceMs: 123 }), 5)).toMatchObject({ health: 'passing', healthSinceMs: 123 });
    expect(decodeTask(encodeTask({ ...task, health: 'failing', healthSinceMs: 7 }), 5)).toMatchObject({ health: 'failing', healthSinceMs: 7 });
    const plain = decodeTask(encodeTask(task), 5);
    expect('health' in plain).toBe(false);
    expect('healthSinceMs' in plain).toBe(false);
  });
});
