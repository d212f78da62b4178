import { jobSpec } from '@omega/cell-state/testing';
import { describe, expect, it } from 'vitest';
import { protoFieldPath } from './errors.js';
import { API_LIMITS, jobSpecFromWire, jobSpecToWire } from './job-spec-wire.js';
import type { WireJobSpec } from './wire.js';

/** A valid spec as proto-loader decodes it (defaults filled in). */
function wireSpec(overrides: Partial<WireJobSpec> = {}): WireJobSpec {
  return {
    name: 'hello',
    kind: 'JOB_KIND_BATCH',
    priority: 0,
    instances: 2,
    commit_mode: 'COMMIT_MODE_UNSPECIFIED',
    task: { command: ['sh', '-c', 'echo hi'], env: {}, resources: { cpu_millis: 500, memory_bytes: 64 * 1024 * 1024 }, run_duration_ms: 0, hollow_fail: false, pids_limit: 0, secret_env: {}, secret_env_names: [], log_limit_bytes: 0, network: '', user: '', disk_limit_bytes: 0, health_check: null },
    constraints: [],
    restart_policy: null,
    retention_ms: 0,
    namespace: '',
    update: null,
    schedule: null,
    ...overrides,
  };
}

function problems(wire: WireJobSpec | null): string[] {
  const result = jobSpecFromWire(wire);
  return (result.problems ?? []).map((p) => `${p.field}: ${p.problem}`);
}

describe('jobSpecFromWire', () => {
  it('converts a valid spec to the stored form with default commit mode and restart policy', () => {
    const result = jobSpecFromWire(wireSpec());
    expect(result.problems).toBeUndefined();
    expect(result.spec).toMatchObject({
      name: 'hello',
      kind: 'batch',
      instances: 2,
      commitMode: 'default',
      task: { command: ['sh', '-c', 'echo hi'], resources: { cpuMillis: 500, memoryBytes: 64 * 1024 * 1024 } },
      restartPolicy: { kind: 'default' },
    });
  });

  it('names a missing job as the field `job`', () => {
    expect(problems(null)).toEqual(['job: is required']);
  });

  it('names resource problems by their proto field path', () => {
    const spec = wireSpec();
    const task = spec.task as NonNullable<WireJobSpec['task']>;
    expect(problems({ ...spec, task: { ...task, resources: { cpu_millis: 100, memory_bytes: 0 } } })).toEqual(['job.task.resources.memory_bytes: must be > 0']);
    expect(problems({ ...spec, task: { ...task, resources: null } })).toEqual([
      'job.task.resources.cpu_millis: must be > 0',
      'job.task.resources.memory_bytes: must be > 0',
    ]);
  });

  it('refuses an unspecified or unknown kind with the proto enum names', () => {
    expect(problems(wireSpec({ kind: 'JOB_KIND_UNSPECIFIED' }))).toEqual(['job.kind: must be JOB_KIND_BATCH or JOB_KIND_SERVICE']);
    expect(problems(wireSpec({ kind: 7 }))).toEqual(['job.kind: must be JOB_KIND_BATCH or JOB_KIND_SERVICE']);
  });

  it('accepts every commit mode and refuses an unknown one', () => {
    expect(jobSpecFromWire(wireSpec({ commit_mode: 'COMMIT_MODE_ALL_OR_NOTHING' })).spec?.commitMode).toBe('all-or-nothing');
    expect(problems(wireSpec({ commit_mode: 9 }))[0]).toMatch(/^job\.commit_mode: must be one of COMMIT_MODE_UNSPECIFIED/);
  });

  it('refuses a job name that is not a DNS label', () => {
    expect(problems(wireSpec({ name: 'Bad_Name' }))).toEqual([expect.stringMatching(/^job\.name: must be a DNS label/)]);
    expect(problems(wireSpec({ name: '' }))).toHaveLength(1);
  });

  it('names constraint problems with their index and refuses an unspecified operator', () => {
    const out = problems(
      wireSpec({
        constraints: [
          { attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_IN', values: [], limit: 0 },
          { attribute: 'rack', operator: 'CONSTRAINT_OPERATOR_UNSPECIFIED', values: [], limit: 0 },
          { attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_EQUALS', values: ['x'.repeat(300)], limit: 0 },
        ],
      }),
    );
    expect(out).toContain('job.constraints[0].values: must not be empty for in');
    expect(out).toContainEqual(expect.stringMatching(/^job\.constraints\[1\]\.operator: must be one of CONSTRAINT_OPERATOR_EQUALS/));
    expect(out).toContain(`job.constraints[2].values[0]: must be at most ${API_LIMITS.maxConstraintValueLength} characters`);
  });

  it('enforces the limits on instances, command length and environment size', () => {
    const spec = wireSpec();
    const task = spec.task as NonNullable<WireJobSpec['task']>;
    expect(problems({ ...spec, instances: API_LIMITS.maxInstances + 1 })).toEqual([`job.instances: must be at most ${API_LIMITS.maxInstances}`]);
    expect(problems({ ...spec, instances: 0 })).toEqual(['job.instances: must be an integer >= 1']);
    expect(problems({ ...spec, task: { ...task, command: ['sh', 'x'.repeat(API_LIMITS.maxCommandBytes)] } })).toEqual([`job.task.command: must be at most ${API_LIMITS.maxCommandBytes} bytes`]);
    const env = Object.fromEntries(Array.from({ length: API_LIMITS.maxEnvEntries + 1 }, (_, i) => [`V${i}`, 'x']));
    expect(problems({ ...spec, task: { ...task, env } })).toEqual([`job.task.env: must have at most ${API_LIMITS.maxEnvEntries} entries`]);
  });

  it('refuses an empty command and an empty first word, which would only fail at the agent', () => {
    const spec = wireSpec();
    const task = spec.task as NonNullable<WireJobSpec['task']>;
    expect(problems({ ...spec, task: { ...task, command: [] } })).toEqual(['job.task.command: must not be empty']);
    expect(problems({ ...spec, task: { ...task, command: ['', 'x'] } })).toEqual(['job.task.command[0]: must not be empty']);
  });

  it('keeps environment variable names as written in the field path', () => {
    const spec = wireSpec();
    const task = spec.task as NonNullable<WireJobSpec['task']>;
    expect(problems({ ...spec, task: { ...task, env: { 'myVar-x': 'v' } } })).toEqual([expect.stringMatching(/^job\.task\.env\.myVar-x: name must be/)]);
  });

  it('refuses a spec whose encoding is over the size limit', () => {
    const values = Array.from({ length: 250 }, (_, i) => `${i}-${'v'.repeat(250)}`);
    const constraints = Array.from({ length: 10 }, () => ({ attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_IN' as const, values, limit: 0 }));
    expect(problems(wireSpec({ constraints }))).toEqual([expect.stringMatching(new RegExp(`^job: is \\d+ bytes encoded, over the limit of ${API_LIMITS.maxJobSpecBytes}$`))]);
  });

  it('reports every problem, not only the first', () => {
    expect(problems(wireSpec({ name: 'X', kind: 'JOB_KIND_UNSPECIFIED', instances: 0 }))).toHaveLength(3);
  });

  it('round-trips a stored spec through the wire form', () => {
    const spec = jobSpec('web').service().instances(3).cpu(250).memory('128Mi').constraint({ operator: 'in', attribute: 'zone', values: ['a', 'b'] }).restart({ kind: 'on-failure', maxRestarts: 3 }).build();
    expect(jobSpecFromWire(jobSpecToWire(spec)).spec).toEqual(spec);
  });
});

describe('a JobSpec retention_ms', () => {
  it('carries a retention to the stored spec and back, 0 meaning the cell default', () => {
    expect(jobSpecFromWire(wireSpec({ retention_ms: 60_000 })).spec?.retentionMs).toBe(60_000);
    expect(jobSpecFromWire(wireSpec({ retention_ms: 0 })).spec?.retentionMs).toBeUndefined();
    const spec = { ...jobSpec('hello').build(), retentionMs: 5_000 };
    expect(jobSpecToWire(spec).retention_ms).toBe(5_000);
    expect(jobSpecFromWire(jobSpecToWire(spec)).spec).toEqual(spec);
  });

  it('names a retention over a year by its proto field', () => {
    expect(problems(wireSpec({ retention_ms: API_LIMITS.maxRetentionMs + 1 }))).toEqual([expect.stringMatching(/^job\.retention_ms: must be an integer number of ms/)]);
  });
});

describe('a JobSpec namespace', () => {
  it('reads an empty or absent namespace as default and keeps any other', () => {
    expect(jobSpecFromWire(wireSpec()).spec?.namespace).toBe('default');
    expect(jobSpecFromWire(wireSpec({ namespace: '' })).spec?.namespace).toBe('default');
    expect(jobSpecFromWire(wireSpec({ namespace: 'team-a' })).spec?.namespace).toBe('team-a');
    const spec = jobSpec('hello').namespace('team-a').build();
    expect(jobSpecToWire(spec).namespace).toBe('team-a');
    expect(jobSpecFromWire(jobSpecToWire(spec)).spec).toEqual(spec);
  });

  it('names a namespace that is not a DNS label by its field', () => {
    expect(problems(wireSpec({ namespace: 'Team_A' }))).toEqual([expect.stringMatching(/^job\.namespace: must be a DNS label/)]);
  });
});

describe('protoFieldPath', () => {
  it('turns camelCase segments into snake_case but keeps environment variable names', () => {
    expect(protoFieldPath('job.restartPolicy.maxRestarts')).toBe('job.restart_policy.max_restarts');
    expect(protoFieldPath('job.task.runDurationMs')).toBe('job.task.run_duration_ms');
    expect(protoFieldPath('job.task.env.myVar')).toBe('job.task.env.myVar');
    expect(protoFieldPath('requestId')).toBe('request_id');
  });
});

describe('the log limit on the wire', () => {
  it('becomes logLimitBytes, goes back out as log_limit_bytes, and a too small one is named by its proto field', () => {
    const task = wireSpec().task!;
    const result = jobSpecFromWire(wireSpec({ task: { ...task, log_limit_bytes: 1 << 20 } }));
    expect(result.spec?.task.logLimitBytes).toBe(1 << 20);
    expect(jobSpecToWire(result.spec!).task?.log_limit_bytes).toBe(1 << 20);
    expect(jobSpecFromWire(wireSpec()).spec?.task.logLimitBytes).toBeUndefined();
    expect(problems(wireSpec({ task: { ...task, log_limit_bytes: 100 } }))).toEqual([expect.stringMatching(/^job\.task\.log_limit_bytes: must be 0/)]);
  });
});

describe('the disk limit on the wire', () => {
  it('becomes diskLimitBytes, goes back out as disk_limit_bytes, and a too small one is named by its proto field', () => {
    const task = wireSpec().task!;
    const result = jobSpecFromWire(wireSpec({ task: { ...task, disk_limit_bytes: 64 << 20 } }));
    expect(result.spec?.task.diskLimitBytes).toBe(64 << 20);
    expect(jobSpecToWire(result.spec!).task?.disk_limit_bytes).toBe(64 << 20);
    expect(jobSpecFromWire(wireSpec()).spec?.task.diskLimitBytes).toBeUndefined();
    expect(problems(wireSpec({ task: { ...task, disk_limit_bytes: 4096 } }))).toEqual([expect.stringMatching(/^job\.task\.disk_limit_bytes: must be 0/)]);
  });
});

describe('the user on the wire', () => {
  it('becomes task.user, empty stays absent, goes back out, and root is named by its proto field', () => {
    const task = wireSpec().task!;
    const result = jobSpecFromWire(wireSpec({ task: { ...task, user: 'daemon' } }));
    expect(result.spec?.task.user).toBe('daemon');
    expect(jobSpecToWire(result.spec!).task?.user).toBe('daemon');
    expect(jobSpecFromWire(wireSpec({ task: { ...task, user: '' } })).spec?.task.user).toBeUndefined();
    expect(jobSpecToWire(jobSpecFromWire(wireSpec()).spec!).task?.user).toBe('');
    expect(problems(wireSpec({ task: { ...task, user: 'root' } }))).toEqual(['job.task.user: must not be root']);
  });
});

describe('the network on the wire', () => {
  it('becomes network host or none, empty stays absent, goes back out, and anything else is named by its proto field', () => {
    const task = wireSpec().task!;
    const result = jobSpecFromWire(wireSpec({ task: { ...task, network: 'none' } }));
    expect(result.spec?.task.network).toBe('none');
    expect(jobSpecToWire(result.spec!).task?.network).toBe('none');
    expect(jobSpecFromWire(wireSpec({ task: { ...task, network: '' } })).spec?.task.network).toBeUndefined();
    expect(jobSpecToWire(jobSpecFromWire(wireSpec()).spec!).task?.network).toBe('');
    expect(problems(wireSpec({ task: { ...task, network: 'bridge' } }))).toEqual(['job.task.network: must be one of host, none']);
  });
});
