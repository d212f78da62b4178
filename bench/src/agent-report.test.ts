import { describe, expect, it } from 'vitest';
import { agentChecks, agentMarkdown } from './agent-report.js';
import type { AgentPhase } from './agent-throughput.js';
import { parseBenchArgs } from './run-bench.js';
import { FlagError } from '@omega/cell-state';

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
    cpu: { agent: 0.01, agentChildren: 0.01, scheduler: 0, api: 0, etcd: 0, bench: 0 },
    agentCpuPerTaskMs: 2,
    agentRssMaxBytes: 1,
    supervisors: { maxAlive: 1, rssP50Bytes: 1, rssMaxBytes: 1, pssP50Bytes: 1, pssMeanBytes: 1024 ** 2, processesPerTask: 1, commands: ['sv'] },
    etcd: { txns: 1, ranges: 1, puts: 1, perTask: 0.3 },
    writesPerTask: { 'task put': 3 },
    scheduler: { transactions: 10, claims: 10, busyness: 0.5 },
    segments: { submitToPlacedMs: q, placedToStartedMs: q, startedToExitedMs: q, exitedToSucceededMs: q, slotMeanMs: 5 },
    ...over,
  };
}

describe('agent benchmark checks', () => {
  it('pass when every task succeeded and the targets are met', () => {
    const phases = [phase({}), phase({ phase: 'instances' }), phase({ phase: 'hold', start: { agentMsPerTask: 1, supervisorMsP50: 1, supervisorMsMean: 1, totalMs: 2, sampledSupervisors: 10 } })];
    const checks = agentChecks(phases);
    expect(checks.map((c) => c.pass)).toEqual(checks.map(() => true));
    expect(checks).toHaveLength(7);
    expect(agentMarkdown(phases)).toContain('### Supervision (phase hold)');
  });

  it('fail a phase with a task that did not succeed, naming its end', () => {
    const [done] = agentChecks([phase({ succeeded: 9, failures: { 'failed:nonzero-exit': 1 } })]);
    expect(done?.pass).toBe(false);
    expect(done?.detail).toContain('failed:nonzero-exit');
  });

  it('fail the rate, memory and start-CPU targets when they are missed', () => {
    const checks = agentChecks([phase({ tasksPerSecond: 20 }), phase({ phase: 'hold', supervisors: { ...phase({}).supervisors, pssMeanBytes: 7 * 1024 ** 2 }, start: { agentMsPerTask: 4, supervisorMsP50: 30, supervisorMsMean: 31, totalMs: 35, sampledSupervisors: 64 } })]);
    expect(checks.filter((c) => !c.pass).map((c) => c.name)).toEqual(['agent jobs: ≥ 120 tasks/s end to end', 'supervision ≤ 2.0 MiB PSS per running task', 'CPU to start a task ≤ 5 ms']);
  });
});

describe('omega bench live --experiment agent flags', () => {
  it('takes --jobs, --instances and --clients', () => {
    const parsed = parseBenchArgs(['live', '--experiment', 'agent', '--quick', '--out', '/tmp/x', '--jobs', '20', '--instances', '30', '--clients', '4']);
    expect(parsed).toMatchObject({ command: 'live', options: { experiment: 'agent', quick: true, jobs: 20, instances: 30, clients: 4 } });
  });

  it.each([
    [['live', '--experiment', 'churn', '--out', 'x', '--instances', '5'], '--instances'],
    [['live', '--experiment', 'T1', '--out', 'x', '--clients', '2'], '--clients'],
    [['live', '--experiment', 'agent', '--out', 'x', '--clients', '0'], '--clients'],
    [['live', '--experiment', 'agent', '--out', 'x', '--clients', '65'], '--clients'],
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
