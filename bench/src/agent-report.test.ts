import { describe, expect, it } from 'vitest';
import { agentChart, agentChecks, agentMarkdown } from './agent-report.js';
import { supervisionRoles, type AgentPhase, type ProcessMemory, type StartCpu, type SupervisorSample } from './agent-throughput.js';
import type { ProcEntry } from './proc-sample.js';
import { parseBenchArgs } from './run-bench.js';
import { FlagError } from '@omega/cell-state';

function memory(pssMeanBytes: number): ProcessMemory {
  return { sightings: 64, rssP50Bytes: 1024 ** 2, rssMeanBytes: 1024 ** 2, rssMaxBytes: 1024 ** 2, pssP50Bytes: pssMeanBytes, pssMeanBytes, pssMaxBytes: pssMeanBytes };
}

/** One supervisor and one init per task, with these mean PSS. */
function supervision(supervisorPss: number, initPss: number): SupervisorSample {
  return {
    maxAlive: 64,
    supervisor: memory(supervisorPss),
    init: memory(initPss),
    supervisorsPerTask: 1,
    initsPerTask: 1,
    perTask: { rssBytes: 2 * 1024 ** 2, pssBytes: supervisorPss + initPss },
    launcher: { rssMaxBytes: 1024 ** 2, pssMaxBytes: 0.2 * 1024 ** 2 },
    commands: ['init omega-superviso', 'launcher omega-launcher', 'supervisor omega-superviso'],
  };
}

const start = (over: Partial<StartCpu>): StartCpu => ({ agentMsPerTask: 1, launcherMsPerTask: 0.06, supervisorMsP50: 0.5, supervisorMsMean: 0.5, sampledSupervisors: 64, initMsP50: 0.2, initMsMean: 0.2, sampledInits: 64, totalMs: 1.76, ...over });

function phase(over: Partial<AgentPhase>): AgentPhase {
  const q = { p50: 1, p99: 2 };
  return {
    phase: 'jobs',
    description: 'x',
    tasks: 10,
    succeeded: 10,
    failures: {},
    submitSeconds: 1,
    seconds: 0.05,
    tasksPerSecond: 200,
    latencyP50Ms: 10,
    latencyP99Ms: 20,
    cpu: { agent: 0.01, agentChildren: 0, launcher: 0.001, launcherChildren: 0.01, scheduler: 0, api: 0, etcd: 0, bench: 0 },
    agentCpuPerTaskMs: 2,
    launcherCpuPerTaskMs: 0.1,
    supervisedCpuPerTaskMs: 1,
    agentRssMaxBytes: 1,
    supervisors: supervision(0.5 * 1024 ** 2, 0.25 * 1024 ** 2),
    etcd: { txns: 1, ranges: 1, puts: 1, perTask: 0.3 },
    writesPerTask: { 'task put': 3 },
    scheduler: { transactions: 10, claims: 10, busyness: 0.5 },
    segments: { submitToPlacedMs: q, placedToStartedMs: q, startedToExitedMs: q, exitedToSucceededMs: q, slotMeanMs: 5 },
    ...over,
  };
}

describe('agent benchmark checks', () => {
  it('pass when every task succeeded and the targets are met', () => {
    const phases = [phase({}), phase({ phase: 'instances' }), phase({ phase: 'hold', start: start({}) })];
    const checks = agentChecks(phases);
    expect(checks.map((c) => c.pass)).toEqual(checks.map(() => true));
    expect(checks).toHaveLength(7);
    const md = agentMarkdown(phases);
    expect(md).toContain('### Supervision (phase hold)');
    expect(md).toContain('launcher (one per agent, not per task)');
  });

  it('judge memory on the supervisor and its init together, and name both and the launcher apart', () => {
    // 1.25 + 1.0 MiB: each alone is under 2 MiB, their sum is not.
    const [memoryCheck] = agentChecks([phase({ phase: 'hold', succeeded: 10, supervisors: supervision(1.25 * 1024 ** 2, 1024 ** 2) })]).slice(1);
    expect(memoryCheck?.pass).toBe(false);
    expect(memoryCheck?.detail).toContain('supervisor PSS 1.25 MiB');
    expect(memoryCheck?.detail).toContain('init PSS 1.00 MiB');
    expect(memoryCheck?.detail).toContain('launcher, one per agent');
  });

  it('judge the start CPU on the sum of agent, launcher, supervisor and init, naming each', () => {
    const checks = agentChecks([phase({ phase: 'hold', start: start({ agentMsPerTask: 3, launcherMsPerTask: 0.06, supervisorMsMean: 1.5, initMsMean: 0.6, totalMs: 5.16 }) })]);
    const cpu = checks.find((c) => c.name.startsWith('CPU to start a task'));
    expect(cpu?.pass).toBe(false);
    expect(cpu?.detail).toBe('5.16 ms = agent 3.00 ms + launcher 0.060 ms per start + supervisor 1.50 ms (mean of 64) + init 0.60 ms (mean of 64)');
  });

  it('report the warm-up without judging its rate, but still require every task to succeed', () => {
    const checks = agentChecks([phase({ phase: 'warm-up', tasksPerSecond: 90 }), phase({}), phase({ phase: 'warm-up', succeeded: 9, failures: { 'failed:nonzero-exit': 1 } })]);
    expect(checks.map((c) => c.name)).toEqual(['agent warm-up: every task succeeded', 'agent jobs: every task succeeded', 'agent warm-up: every task succeeded', 'agent jobs: ≥ 120 tasks/s end to end']);
    expect(checks.map((c) => c.pass)).toEqual([true, true, false, true]);
    expect(agentMarkdown([phase({ phase: 'warm-up', tasksPerSecond: 90 })])).toContain('| warm-up |');
  });

  it('label each phase of the chart at its own x, the warm-up included', () => {
    const chart = agentChart([phase({ phase: 'warm-up' }), phase({}), phase({ phase: 'instances' }), phase({ phase: 'hold' })]);
    expect(chart.title).toContain('(1 warm-up, 2 jobs, 3 instances, 4 hold)');
    expect(chart.panels[0]?.points.map((p) => p.x)).toEqual([1, 2, 3, 4]);
  });

  it('fail a phase with a task that did not succeed, naming its end', () => {
    const [done] = agentChecks([phase({ succeeded: 9, failures: { 'failed:nonzero-exit': 1 } })]);
    expect(done?.pass).toBe(false);
    expect(done?.detail).toContain('failed:nonzero-exit');
  });

  it('fail the rate, memory and start-CPU targets when they are missed', () => {
    const checks = agentChecks([phase({ tasksPerSecond: 20 }), phase({ phase: 'hold', supervisors: supervision(6 * 1024 ** 2, 1024 ** 2), start: start({ agentMsPerTask: 4, supervisorMsMean: 31, totalMs: 35 }) })]);
    expect(checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(['agent jobs: ≥ 120 tasks/s end to end', 'supervision ≤ 2 MiB PSS per running task', 'CPU to start a task ≤ 5 ms']);
  });
});

describe('omega bench live --experiment agent flags', () => {
  it('takes --jobs, --instances and --clients', () => {
    const parsed = parseBenchArgs(['live', '--experiment', 'agent', '--quick', '--out', '/tmp/x', '--jobs', '20', '--instances', '30', '--clients', '4']);
    expect(parsed).toMatchObject({ command: 'live', options: { experiment: 'agent', quick: true, jobs: 20, instances: 30, clients: 4 } });
  });

  it('takes --warm-up-jobs, 0 for none', () => {
    expect(parseBenchArgs(['live', '--experiment', 'agent', '--out', 'x', '--warm-up-jobs', '0'])).toMatchObject({ options: { warmUpJobs: 0 } });
    expect(parseBenchArgs(['live', '--experiment', 'agent', '--out', 'x', '--warm-up-jobs', '500'])).toMatchObject({ options: { warmUpJobs: 500 } });
    expect(parseBenchArgs(['live', '--experiment', 'agent', '--out', 'x'])).not.toHaveProperty('options.warmUpJobs');
  });

  it.each([
    [['live', '--experiment', 'churn', '--out', 'x', '--instances', '5'], '--instances'],
    [['live', '--experiment', 'T1', '--out', 'x', '--clients', '2'], '--clients'],
    [['live', '--experiment', 'agent', '--out', 'x', '--clients', '0'], '--clients'],
    [['live', '--experiment', 'agent', '--out', 'x', '--clients', '65'], '--clients'],
    [['live', '--experiment', 'agent', '--out', 'x', '--warm-up-jobs', '-1'], '--warm-up-jobs'],
    [['live', '--experiment', 'agent', '--out', 'x', '--warm-up-jobs', '1.5'], '--warm-up-jobs'],
    [['live', '--experiment', 'T1', '--out', 'x', '--warm-up-jobs', '10'], '--warm-up-jobs'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--warm-up-jobs', '10'], '--warm-up-jobs'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--instances', '5'], '--instances'],
  ])('refuses %j naming %s', (argv, flag) => {
    expect(() => parseBenchArgs(argv)).toThrow(FlagError);
    try {
      parseBenchArgs(argv);
    } catch (error) {
      expect((error as FlagError).message).toContain(flag);
    }
  });
});

describe('the roles of the agent\'s processes', () => {
  const e = (pid: number, ppid: number, comm: string): ProcEntry => ({ pid, ppid, comm, cmdline: comm, state: 'S' });

  it('tell the launcher, each supervisor, its init and the task apart', () => {
    // agent 10 -> launcher 11 -> supervisor 20 -> init 21 -> task 22; supervisor 30 re-parented to 1 -> init 31 -> task 32.
    // 40 is the launcher's fork of a supervisor before its exec: not a supervisor yet.
    const live = [e(40, 11, 'omega-launcher'), e(11, 10, 'omega-launcher'), e(20, 11, 'omega-superviso'), e(21, 20, 'omega-superviso'), e(22, 21, 'sleep'), e(30, 1, 'omega-superviso'), e(31, 30, 'omega-superviso'), e(32, 31, 'sleep')];
    const roles = supervisionRoles(live, (p) => p.comm === 'sleep');
    expect(roles.launcher?.pid).toBe(11);
    expect(roles.supervisors.map((p) => p.pid).sort()).toEqual([20, 30]);
    expect(roles.inits.map((p) => p.pid).sort()).toEqual([21, 31]);
    expect(roles.tasks.map((p) => p.pid).sort()).toEqual([22, 32]);
  });

  it('count a supervisor the agent forked itself, without a launcher or an init', () => {
    const roles = supervisionRoles([e(20, 10, 'node'), e(22, 20, 'true')], (p) => p.pid === 22);
    expect(roles.launcher).toBeUndefined();
    expect(roles.supervisors.map((p) => p.pid)).toEqual([20]);
    expect(roles.inits).toEqual([]);
  });
});
