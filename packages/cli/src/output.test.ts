import { describe, expect, it } from 'vitest';
import { age, expiry, formatHistory, formatJob, formatJobs, formatMachines, formatNamespaces, formatQuota, formatStats, formatTokens, formatWatchEvent, formatWhoami, taskSummary } from './output.js';
import { jobOutput, jobSpecToWire, machineOutput, namespaceOutput, schedulerOutput, submitSpecToWire, tokenOutput, type JobView as WireJobView, type TaskView as WireTaskView } from './wire.js';
import { parseJobFile } from './job-file.js';

const NOW = Date.parse('2025-01-01T12:00:00Z');

function wireTask(index: number, overrides: Partial<WireTaskView> = {}): WireTaskView {
  return {
    index,
    state: 'TASK_VIEW_STATE_PENDING',
    machine: '',
    has_exit_code: false,
    exit_code: 0,
    signal: '',
    reason: '',
    message: '',
    attempt: 0,
    restarts: 0,
    placed_at_ms: 0,
    started_at_ms: 0,
    finished_at_ms: 0,
    cpu_seconds: 0,
    peak_memory_bytes: 0,
    version: 0,
    health: '',
    health_since_ms: 0,
    ...overrides,
  };
}

function wireJob(overrides: Partial<WireJobView> = {}): WireJobView {
  const spec = parseJobFile('name: hello\nkind: batch\ninstances: 2\ncommand: [sh, -c, "echo hi"]\ncpu: 500m\nmemory: 64Mi\n');
  return {
    id: 'hello-0000000001',
    spec: jobSpecToWire(spec) as unknown as WireJobView['spec'],
    state: 'JOB_VIEW_STATE_RUNNING',
    reason: '',
    ruled_out: [],
    kill_requested: false,
    submitted_at_ms: NOW - 90_000,
    scheduler: 'batch-0',
    tasks: [
      wireTask(0, { state: 'TASK_VIEW_STATE_FAILED', machine: 'dev-0', has_exit_code: true, exit_code: 137, reason: 'oom-killed', attempt: 1, started_at_ms: NOW - 60_000, peak_memory_bytes: 64 * 1024 * 1024 }),
      wireTask(1, { state: 'TASK_VIEW_STATE_RUNNING', machine: 'dev-1', attempt: 2, restarts: 1 }),
    ],
    task_counts: { pending: 0, placed: 0, running: 1, succeeded: 0, failed: 1, killed: 0, lost: 0 },
    version: 0,
    deployment: null,
    cron: null,
    cron_run: null,
    ...overrides,
  };
}

describe('--json output', () => {
  it('gives a job its id, name, kind, state and tasks with index, state, machine, exit code and reason', () => {
    const job = jobOutput(wireJob());
    expect(job).toMatchObject({ id: 'hello-0000000001', name: 'hello', kind: 'batch', state: 'running', instances: 2, scheduler: 'batch-0' });
    expect(job.tasks).toEqual([
      expect.objectContaining({ index: 0, state: 'failed', machine: 'dev-0', exitCode: 137, reason: 'oom-killed', attempt: 1 }),
      expect.objectContaining({ index: 1, state: 'running', machine: 'dev-1', exitCode: null, reason: '', restarts: 1 }),
    ]);
    expect(job.spec).toMatchObject({ command: ['sh', '-c', 'echo hi'], cpuMillis: 500, memoryBytes: 64 * 1024 * 1024, commitMode: 'unspecified' });
    expect(JSON.parse(JSON.stringify(job))).toEqual(job);
  });

  it('gives a machine its capacity and allocation in integers, task count and liveness', () => {
    const machine = machineOutput({
      id: 'dev-0',
      capacity: { cpu_millis: 2000, memory_bytes: 4 * 1024 ** 3 },
      allocated: { cpu_millis: 500, memory_bytes: 64 * 1024 ** 2 },
      tasks: 1,
      alive: true,
      schedulable: true,
      unschedulable_reason: '',
      attributes: { rack: 'rack-0' },
      hollow: false,
      enforcement_disabled: false,
      cordoned: false,
      cordon_reason: '',
      cordoned_at_ms: 0,
      drain_deadline_ms: 0,
    });
    expect(machine).toMatchObject({ id: 'dev-0', capacity: { cpuMillis: 2000, memoryBytes: 4 * 1024 ** 3 }, allocated: { cpuMillis: 500, memoryBytes: 64 * 1024 ** 2 }, tasks: 1, alive: true });
  });

  it('gives a scheduler its transactions, conflicts, conflict fraction and busyness', () => {
    const stats = schedulerOutput({
      name: 'batch-0',
      kind: 'batch',
      conflict_mode: 'resource-fit',
      transaction_mode: 'incremental',
      transactions: 10,
      transactions_failed: 2,
      claims_committed: 30,
      claims_conflicted: 3,
      conflict_fraction: 0.25,
      busyness: 0.4,
      jobs_placed: 7,
      jobs_abandoned: 0,
      wait_first_attempt_mean_ms: 1,
      wait_fully_placed_mean_ms: 2,
      spurious_retries: 0,
      updated_at_ms: 5,
    });
    expect(stats).toMatchObject({ name: 'batch-0', kind: 'batch', transactions: 10, conflicts: 2, conflictFraction: 0.25, busyness: 0.4 });
  });
});

describe('tables', () => {
  it('lists jobs with their namespace, task summary and age', () => {
    const text = formatJobs([jobOutput(wireJob())], NOW);
    const [head, row] = text.split('\n');
    expect(head).toMatch(/^NAMESPACE\s+ID\s+NAME\s+KIND\s+STATE\s+TASKS\s+AGE\s+REASON$/);
    expect(row).toMatch(/^default\s+hello-0000000001\s+hello\s+batch\s+running\s+1 running, 1 failed\s+90s$/);
    expect(formatJobs([], NOW)).toBe('No jobs.');
  });

  it('leaves the namespace column out when one namespace was asked for', () => {
    const [head, row] = formatJobs([jobOutput(wireJob())], NOW, 'default').split('\n');
    expect(head).toMatch(/^ID\s+NAME\s+KIND/);
    expect(row).toMatch(/^hello-0000000001\s+hello\s+batch/);
    expect(formatJobs([], NOW, 'team-a')).toBe('No jobs in namespace team-a.');
  });

  it('shows a job namespace and its secret env names, never values', () => {
    const base = wireJob();
    const spec = base.spec as NonNullable<WireJobView['spec']>;
    const view = wireJob({ spec: { ...spec, namespace: 'team-a', task: { ...(spec.task as NonNullable<typeof spec.task>), secret_env_names: ['API_KEY', 'DB_PASSWORD'] } } });
    const job = jobOutput(view);
    expect(job.namespace).toBe('team-a');
    expect(job.spec.secretEnvNames).toEqual(['API_KEY', 'DB_PASSWORD']);
    const text = formatJob(job, NOW);
    expect(text).toContain('Namespace:  team-a');
    expect(text).toContain('Secret env: API_KEY, DB_PASSWORD (values are write-only)');
    // A server that predates namespaces sends none: the job is in default, and has no secret line.
    expect(formatJob(jobOutput(wireJob()), NOW)).toContain('Namespace:  default');
    expect(formatJob(jobOutput(wireJob()), NOW)).not.toContain('Secret env');
  });

  it('shows a job with one row per task, exit code and reason', () => {
    const text = formatJob(jobOutput(wireJob()), NOW);
    expect(text).toContain('State:      running');
    expect(text).toContain('Instances:  2, each 500m CPU, 64Mi memory');
    expect(text).toContain('Command:    sh -c "echo hi"');
    expect(text).toMatch(/\n0\s+failed\s+dev-0\s+1\s+-\s+0\s+137\s+oom-killed\s+60s ago\s+-\s+64Mi\n/);
    expect(text).toContain('Version:    1');
    expect(text).not.toContain('Messages:');
  });

  it("shows under the task table, in full, the agent's message on why an attempt ended, and gives it in --json", () => {
    const why = `could not start the task: exec /nonexistent/binary: No such file or directory${' (more)'.repeat(40)}`;
    const wire = wireJob({
      tasks: [
        wireTask(0, { state: 'TASK_VIEW_STATE_FAILED', machine: 'dev-0', has_exit_code: true, exit_code: 127, reason: 'start-failed', message: why, attempt: 1 }),
        wireTask(1, { state: 'TASK_VIEW_STATE_RUNNING', machine: 'dev-1', attempt: 2, restarts: 1 }),
      ],
    });
    const text = formatJob(jobOutput(wire), NOW);
    // The table row keeps its columns: the message is not in it.
    expect(text).toMatch(/\n0\s+failed\s+dev-0\s+1\s+-\s+0\s+127\s+start-failed\s+-\s+-\s+-\n/);
    expect(text.endsWith(`\n\nMessages:\n  0  start-failed: ${why}`)).toBe(true);
    expect(jobOutput(wire).tasks.map((t) => t.message)).toEqual([why, '']);
    // From a server that predates messages: none.
    const { message: _dropped, ...old } = wireTask(0);
    expect(jobOutput(wireJob({ tasks: [old as WireTaskView] })).tasks[0]?.message).toBe('');
  });

  it('shows the version of a service, its last rolling update, and the version of each task', () => {
    const text = formatJob(
      jobOutput({
        ...wireJob(),
        version: 3,
        deployment: { version: 3, state: 'running', healthy: 1, updated: 2, total: 2, reason: '', started_at_ms: NOW - 1_000 },
        tasks: wireJob().tasks.map((t) => ({ ...t, version: 3 })),
      } as never),
      NOW,
    );
    expect(text).toContain('Version:    3');
    expect(text).toContain('Deployment: version 3 running: 1/2 healthy, 2/2 updated');
    expect(text).toMatch(/\n0\s+failed\s+dev-0\s+1\s+3\s+0\s+137/);
  });

  it('lists versions newest first with who changed what', () => {
    const text = formatHistory([
      { version: 2, atMs: NOW, by: 'alice', change: 'instances 2 -> 4', current: true },
      { version: 1, atMs: NOW - 60_000, by: '', change: 'submitted', current: false },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^VERSION\s+WHEN\s+BY\s+CHANGE$/);
    expect(lines[1]).toMatch(/^2 \(current\)\s+2025-01-01T12:00:00Z\s+alice\s+instances 2 -> 4$/);
    expect(lines[2]).toMatch(/^1\s+\S+\s+-\s+submitted$/);
  });

  it('shows machines with allocation as used/capacity', () => {
    const text = formatMachines([machineOutput({ id: 'dev-0', capacity: { cpu_millis: 2000, memory_bytes: 1024 ** 3 }, allocated: { cpu_millis: 500, memory_bytes: 256 * 1024 ** 2 }, tasks: 2, alive: false, schedulable: true, unschedulable_reason: '', attributes: {}, hollow: true, enforcement_disabled: false, cordoned: false, cordon_reason: '', cordoned_at_ms: 0, drain_deadline_ms: 0 })]);
    expect(text.split('\n')[1]).toMatch(/^dev-0\s+no\s+yes\s+500m\/2 \(25%\)\s+256Mi\/1Gi \(25%\)\s+2\s+hollow$/);
  });

  it('shows scheduler stats with the conflict fraction and busyness', () => {
    const text = formatStats([{ name: 'batch-0', kind: 'batch', conflictMode: 'resource-fit', transactionMode: 'incremental', transactions: 10, conflicts: 2, conflictFraction: 0.25, busyness: 0.4, claimsCommitted: 0, claimsConflicted: 0, jobsPlaced: 7, jobsAbandoned: 0, waitFirstAttemptMeanMs: 0, waitFullyPlacedMeanMs: 0, spuriousRetries: 0, updatedAtMs: 0 }]);
    expect(text.split('\n')[1]).toMatch(/^batch-0\s+batch\s+resource-fit\s+10\s+2\s+0\.250\s+40\.0%\s+7\s+0$/);
  });

  it('prints a watch event as one line with the task summary and reasons', () => {
    expect(formatWatchEvent(jobOutput(wireJob({ state: 'JOB_VIEW_STATE_FAILED' })), NOW)).toBe('12:00:00  hello-0000000001  failed  1 running, 1 failed  (oom-killed)');
  });

  it('adds where a rolling update stands to a watch event', () => {
    const view = { ...wireJob(), deployment: { version: 2, state: 'running', healthy: 1, updated: 2, total: 2, reason: '', started_at_ms: NOW } } as never;
    expect(formatWatchEvent(jobOutput(view), NOW)).toMatch(/  \[update version 2 running: 1\/2 healthy, 2\/2 updated\]$/);
  });

  it('summarises task counts, live ones first, and ages in human units', () => {
    expect(taskSummary({ pending: 1, placed: 0, running: 2, succeeded: 3, failed: 0, killed: 0, lost: 0 })).toBe('2 running, 1 pending, 3 succeeded');
    expect([age(NOW - 5_000, NOW), age(NOW - 600_000, NOW), age(NOW - 3 * 3600_000, NOW), age(NOW - 3 * 86_400_000, NOW), age(0, NOW)]).toEqual(['5s', '10m', '3h', '3d', '-']);
  });
});

describe('tokens and namespaces', () => {
  const token = tokenOutput({ name: 'ci', namespaces: ['a', 'b'], role: 'ROLE_SUBMIT', expires_at_ms: NOW + 30 * 86_400_000, created_at_ms: NOW - 3_600_000 });

  it('gives a token its role as a word, namespaces and times', () => {
    expect(token).toEqual({ name: 'ci', role: 'submit', namespaces: ['a', 'b'], expiresAtMs: NOW + 30 * 86_400_000, createdAtMs: NOW - 3_600_000 });
    expect(tokenOutput({ name: 'x', namespaces: ['*'], role: 'ROLE_UNSPECIFIED', expires_at_ms: 0, created_at_ms: 0 }).role).toBe('unknown');
  });

  it('lists tokens with role, namespaces and expiry', () => {
    const admin = tokenOutput({ name: 'root', namespaces: ['*'], role: 'ROLE_ADMIN', expires_at_ms: 0, created_at_ms: NOW - 60_000 });
    const lines = formatTokens([token, admin], NOW).split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ROLE\s+NAMESPACES\s+EXPIRES\s+AGE$/);
    expect(lines[1]).toMatch(/^ci\s+submit\s+a,b\s+2025-01-31 12:00Z \(in 30d\)\s+60m$/);
    expect(lines[2]).toMatch(/^root\s+admin\s+\* \(every namespace\)\s+never\s+60s$/);
    expect(formatTokens([], NOW)).toBe('No tokens.');
  });

  it('says when a token expired', () => {
    expect(expiry(NOW - 7_200_000, NOW)).toBe('expired 2h ago');
    expect(expiry(0, NOW)).toBe('never');
  });

  it('shows whoami as the token name, role and namespaces', () => {
    expect(formatWhoami(token, NOW)).toBe('Token:      ci\nRole:       submit\nNamespaces: a,b\nExpires:    2025-01-31 12:00Z (in 30d)');
  });

  it('shows a quota against the use, and no limit for 0', () => {
    const ns = namespaceOutput({ name: 'team-a', has_quota: true, quota: { cpu_millis: 4000, memory_bytes: 8 * 1024 ** 3, tasks: 0 }, used: { cpu_millis: 1500, memory_bytes: 1024 ** 3, tasks: 3 }, created_at_ms: NOW - 86_400_000 });
    expect(ns).toEqual({ name: 'team-a', quota: { cpuMillis: 4000, memoryBytes: 8 * 1024 ** 3, tasks: 0 }, used: { cpuMillis: 1500, memoryBytes: 1024 ** 3, tasks: 3 }, createdAtMs: NOW - 86_400_000 });
    const lines = formatQuota(ns).split('\n');
    expect(lines[0]).toBe('Namespace: team-a');
    expect(lines[2]).toMatch(/^cpu\s+1500m\s+4$/);
    expect(lines[3]).toMatch(/^memory\s+1Gi\s+8Gi$/);
    expect(lines[4]).toMatch(/^tasks\s+3\s+no limit$/);
    const listed = formatNamespaces([ns, namespaceOutput({ name: 'default', has_quota: false, quota: null, used: null, created_at_ms: 0 })], NOW).split('\n');
    expect(listed[1]).toMatch(/^team-a\s+1500m\/4\s+1Gi\/8Gi\s+3\/-\s+24h$/);
    expect(listed[2]).toMatch(/^default\s+0\/-\s+0\/-\s+0\/-\s+-$/);
    expect(formatQuota(namespaceOutput({ name: 'default', has_quota: false, quota: null, used: null, created_at_ms: 0 }))).toContain('Namespace: default (no quota)');
  });
});

describe('a submitted spec on the wire', () => {
  it('carries the namespace and the secret values in task.secret_env, and the names in the stored spec', () => {
    const spec = { ...parseJobFile('name: hello\nnamespace: team-a\nkind: batch\ncommand: [env]\ncpu: 1\nmemory: 1Mi\nsecretEnv: {TOKEN: abc}\n') };
    const wire = submitSpecToWire(spec, { TOKEN: 'abc' });
    expect(wire.namespace).toBe('team-a');
    expect(wire.task?.secret_env).toEqual({ TOKEN: 'abc' });
    expect(wire.task?.env).toEqual({});
    expect(spec.task.secretEnvNames).toEqual(['TOKEN']);
    expect(submitSpecToWire(parseJobFile('name: a\nkind: batch\ncommand: [true]\ncpu: 1\nmemory: 1Mi\n')).task?.secret_env).toEqual({});
  });
});
