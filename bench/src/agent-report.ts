/**
 * The agent throughput benchmark's checks, result.md body and chart. The targets are the node
 * agent's: at least 120 tasks/s end to end in both throughput phases, and a supervisor that
 * holds a running task in at most 2 MiB and starts it in at most 5 ms of CPU.
 */
import type { AgentPhase } from './agent-throughput.js';
import type { ChartSpec } from './charts.js';
import { int, table } from './markdown.js';
import type { CheckResult } from './result.js';

export const AGENT_TARGET = { tasksPerSecond: 120, supervisorPssBytes: 2 * 1024 ** 2, startCpuMs: 5 } as const;

const mib = (b: number): string => (Number.isFinite(b) ? `${(b / 1024 ** 2).toFixed(1)} MiB` : 'n/a');
const msv = (v: number, digits = 1): string => (Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a');

/** Every task succeeded in every phase (the run's correctness), then the targets. */
export function agentChecks(phases: readonly AgentPhase[]): CheckResult[] {
  const checks: CheckResult[] = phases.map((p) => ({
    name: `agent ${p.phase}: every task succeeded`,
    pass: p.succeeded === p.tasks && Object.keys(p.failures).length === 0,
    detail: `${p.succeeded}/${p.tasks} succeeded${Object.keys(p.failures).length > 0 ? `; ended otherwise: ${JSON.stringify(p.failures)}` : ''}`,
  }));
  for (const p of phases.filter((x) => x.phase !== 'hold')) {
    checks.push({ name: `agent ${p.phase}: ≥ ${AGENT_TARGET.tasksPerSecond} tasks/s end to end`, pass: p.tasksPerSecond >= AGENT_TARGET.tasksPerSecond, detail: `${p.tasksPerSecond.toFixed(1)} tasks/s (${p.succeeded} tasks in ${p.seconds.toFixed(1)} s)` });
  }
  const hold = phases.find((x) => x.phase === 'hold');
  if (hold !== undefined) {
    const perTask = hold.supervisors.pssMeanBytes * (Number.isFinite(hold.supervisors.processesPerTask) ? hold.supervisors.processesPerTask : 1);
    checks.push({ name: `supervision ≤ ${mib(AGENT_TARGET.supervisorPssBytes)} PSS per running task`, pass: perTask <= AGENT_TARGET.supervisorPssBytes, detail: `${mib(perTask)} (mean PSS ${mib(hold.supervisors.pssMeanBytes)} x ${hold.supervisors.processesPerTask.toFixed(2)} supervisor processes per task; RSS p50 ${mib(hold.supervisors.rssP50Bytes)})` });
    if (hold.start !== undefined) {
      checks.push({ name: `CPU to start a task ≤ ${AGENT_TARGET.startCpuMs} ms`, pass: hold.start.totalMs <= AGENT_TARGET.startCpuMs, detail: `${msv(hold.start.totalMs)} = agent ${msv(hold.start.agentMsPerTask)} + supervisor ${msv(hold.start.supervisorMsMean)} (mean of ${hold.start.sampledSupervisors})` });
    }
  }
  return checks;
}

export function agentMarkdown(phases: readonly AgentPhase[]): string {
  const rows = phases.map((p) => [
    p.phase,
    p.description,
    `${p.succeeded}/${p.tasks}`,
    p.tasksPerSecond.toFixed(1),
    `${msv(p.latencyP50Ms, 0)} / ${msv(p.latencyP99Ms, 0)}`,
    `${p.submitSeconds.toFixed(1)} s`,
    `${p.cpu.agent.toFixed(1)} s + ${p.cpu.agentChildren.toFixed(1)} s`,
    msv(p.agentCpuPerTaskMs),
    mib(p.agentRssMaxBytes),
    `${p.cpu.scheduler.toFixed(1)} / ${p.cpu.api.toFixed(1)} / ${p.cpu.etcd.toFixed(1)} s`,
    `${p.etcd.perTask.toFixed(2)} (${int(p.etcd.txns)} txn, ${int(p.etcd.ranges)} range, ${int(p.etcd.puts)} put)`,
    String(p.supervisors.maxAlive),
  ]);
  const hold = phases.find((x) => x.phase === 'hold');
  const seg = (v: { p50: number; p99: number }): string => `${msv(v.p50, 0)} / ${msv(v.p99, 0)}`;
  const segments = phases.map((p) => [
    p.phase,
    seg(p.segments.submitToPlacedMs),
    seg(p.segments.placedToStartedMs),
    seg(p.segments.startedToExitedMs),
    seg(p.segments.exitedToSucceededMs),
    msv(p.segments.slotMeanMs, 0),
    `${p.cpu.bench.toFixed(1)} s`,
    `${int(p.scheduler.transactions)} txn, busy ${Number.isFinite(p.scheduler.busyness) ? `${(p.scheduler.busyness * 100).toFixed(0)}%` : 'n/a'}`,
    Object.entries(p.writesPerTask).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '),
  ]);
  const lines = [
    table(['phase', 'what', 'succeeded', 'tasks/s', 'submit→succeeded p50 / p99', 'submitting took', 'agent CPU own + reaped children', 'agent CPU per task', 'agent RSS max', 'CPU scheduler / API / etcd', 'etcd requests per task', 'supervisors alive at most'], rows),
    '',
    '',
    '### Where a task\'s time went (p50 / p99)',
    '',
    table(['phase', 'submit → placed', 'placed → started', 'started → exited', 'exited → succeeded seen', 'CPU held per task (placed → succeeded, mean)', 'bench CPU', 'batch scheduler (transactions, busy)', 'keys written per task (watch)'], segments),
    '',
    'From each task record\'s own stamps (placedAtMs by the scheduler, startedAtMs and finishedAtMs from the supervisor\'s files), all on this host\'s clock. With 64 CPUs and tasks of 1 CPU, the rate is at most 64 / (CPU held per task).',
    '',
    'tasks/s: tasks / (last task seen `succeeded` in etcd by the bench\'s watch - first submit). Latency: each task, from its job\'s SubmitJob call to that moment. Agent CPU: utime + stime of the agent process (/proc/<pid>/stat) over the phase, and cutime + cstime: the supervisors it spawned and reaped and what they reaped (the task processes). etcd requests: every KV Txn, Range and Put the server handled in the phase (API, scheduler and agent together; etcd `/metrics`).',
  ];
  if (hold !== undefined) {
    const s = hold.supervisors;
    lines.push(
      '',
      '### Supervision (phase hold)',
      '',
      table(
        ['supervisor processes seen', 'per process RSS p50 / max', 'per process PSS p50 / mean', 'processes per running task', 'CPU to start a task: agent', 'supervisor own (p50 / mean)', 'total per task'],
        [[
          s.commands.join(', ') || 'none',
          `${mib(s.rssP50Bytes)} / ${mib(s.rssMaxBytes)}`,
          `${mib(s.pssP50Bytes)} / ${mib(s.pssMeanBytes)}`,
          Number.isFinite(s.processesPerTask) ? s.processesPerTask.toFixed(2) : 'n/a',
          msv(hold.start?.agentMsPerTask ?? NaN),
          `${msv(hold.start?.supervisorMsP50 ?? NaN)} / ${msv(hold.start?.supervisorMsMean ?? NaN)}`,
          msv(hold.start?.totalMs ?? NaN),
        ]],
      ),
      '',
      'A supervisor is a process below the agent (or naming its data directory) outside every task cgroup, sampled every second with /proc/<pid>/smaps_rollup (Rss, Pss). CPU to start a task: the agent\'s own CPU from the submit until every task was seen `running`, divided by the tasks, plus the mean utime + stime of a supervisor process at that moment (it has only waited since its task started) times the supervisor processes per task.',
    );
  }
  return lines.join('\n');
}

export function agentChart(phases: readonly AgentPhase[]): ChartSpec {
  const x = (i: number): number => i + 1;
  return {
    title: 'Agent throughput: one real agent, 64 CPUs (1 jobs, 2 instances, 3 hold)',
    xLabel: 'phase',
    xLog: false,
    columns: 3,
    panels: [
      { title: 'Tasks completed per second', yLabel: 'tasks/s', points: phases.map((p, i) => ({ x: x(i), y: p.tasksPerSecond, series: 'end to end' })), rules: [{ y: AGENT_TARGET.tasksPerSecond, label: 'target 120/s' }] },
      {
        title: 'Submit to succeeded',
        yLabel: 'ms',
        yLog: true,
        points: phases.flatMap((p, i) => [
          { x: x(i), y: p.latencyP50Ms, series: 'p50' },
          { x: x(i), y: p.latencyP99Ms, series: 'p99' },
        ]),
      },
      {
        title: 'CPU per task',
        yLabel: 'ms',
        points: phases.map((p, i) => ({ x: x(i), y: p.agentCpuPerTaskMs, series: 'agent + reaped children' })),
        rules: [{ y: AGENT_TARGET.startCpuMs, label: 'target 5 ms' }],
      },
    ],
  };
}
