/**
 * The agent throughput benchmark's checks, result.md body and chart. The targets are the node
 * agent's: at least 120 tasks/s end to end in both throughput phases (`jobs` and `instances`;
 * the `warm-up` before them is reported, not judged), and supervision (the supervisor and, with
 * namespaces, its init: both live while the task runs) that holds a running task in at most
 * 2 MiB of PSS and starts it in at most 5 ms of CPU (agent + launcher per start + supervisor +
 * init). The launcher is one process per agent: reported beside, not per task.
 */
import type { AgentPhase, ProcessMemory } from './agent-throughput.js';
import type { ChartSpec } from './charts.js';
import { int, table } from './markdown.js';
import type { CheckResult } from './result.js';

export const AGENT_TARGET = { tasksPerSecond: 120, supervisorPssBytes: 2 * 1024 ** 2, startCpuMs: 5 } as const;

const mib = (b: number): string => (Number.isFinite(b) ? `${(b / 1024 ** 2).toFixed(2)} MiB` : 'n/a');
const msv = (v: number, digits = 1): string => (Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a');
const count = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/** Every task succeeded in every phase (the run's correctness), then the targets. */
export function agentChecks(phases: readonly AgentPhase[]): CheckResult[] {
  const checks: CheckResult[] = phases.map((p) => ({
    name: `agent ${p.phase}: every task succeeded`,
    pass: p.succeeded === p.tasks && Object.keys(p.failures).length === 0,
    detail: `${p.succeeded}/${p.tasks} succeeded${Object.keys(p.failures).length > 0 ? `; ended otherwise: ${JSON.stringify(p.failures)}` : ''}`,
  }));
  for (const p of phases.filter((x) => x.phase === 'jobs' || x.phase === 'instances')) {
    checks.push({ name: `agent ${p.phase}: ≥ ${AGENT_TARGET.tasksPerSecond} tasks/s end to end`, pass: p.tasksPerSecond >= AGENT_TARGET.tasksPerSecond, detail: `${p.tasksPerSecond.toFixed(1)} tasks/s (${p.succeeded} tasks in ${p.seconds.toFixed(1)} s)` });
  }
  const hold = phases.find((x) => x.phase === 'hold');
  if (hold !== undefined) {
    const s = hold.supervisors;
    checks.push({
      name: `supervision ≤ ${AGENT_TARGET.supervisorPssBytes / 1024 ** 2} MiB PSS per running task`,
      pass: s.perTask.pssBytes <= AGENT_TARGET.supervisorPssBytes,
      detail: `${mib(s.perTask.pssBytes)} PSS (RSS ${mib(s.perTask.rssBytes)}) = supervisor PSS ${mib(s.supervisor.pssMeanBytes)} (RSS ${mib(s.supervisor.rssMeanBytes)}) x ${count(s.supervisorsPerTask)} + init PSS ${mib(s.init.pssMeanBytes)} (RSS ${mib(s.init.rssMeanBytes)}) x ${count(s.initsPerTask)} per task; launcher, one per agent: PSS ${mib(s.launcher.pssMaxBytes)}, RSS ${mib(s.launcher.rssMaxBytes)}`,
    });
    const t = hold.start;
    if (t !== undefined) {
      checks.push({
        name: `CPU to start a task ≤ ${AGENT_TARGET.startCpuMs} ms`,
        pass: t.totalMs <= AGENT_TARGET.startCpuMs,
        detail: `${msv(t.totalMs, 2)} = agent ${msv(t.agentMsPerTask, 2)} + launcher ${msv(t.launcherMsPerTask, 3)} per start + supervisor ${msv(t.supervisorMsMean, 2)} (mean of ${t.sampledSupervisors}) + init ${msv(t.initMsMean, 2)} (mean of ${t.sampledInits})`,
      });
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
    `${msv(p.launcherCpuPerTaskMs, 3)} / ${msv(p.supervisedCpuPerTaskMs)}`,
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
    table(['phase', 'what', 'succeeded', 'tasks/s', 'submit→succeeded p50 / p99', 'submitting took', 'agent CPU own + reaped children', 'agent CPU per task', 'launcher CPU per task: own / reaped (supervisor + init + task)', 'agent RSS max', 'CPU scheduler / API / etcd', 'etcd requests per task', 'supervisors alive at most'], rows),
    '',
    '',
    '### Where a task\'s time went (p50 / p99)',
    '',
    table(['phase', 'submit → placed', 'placed → started', 'started → exited', 'exited → succeeded seen', 'CPU held per task (placed → succeeded, mean)', 'bench CPU', 'batch scheduler (transactions, busy)', 'keys written per task (watch)'], segments),
    '',
    'From each task record\'s own stamps (placedAtMs by the scheduler, startedAtMs and finishedAtMs from the supervisor\'s files), all on this host\'s clock. With 64 CPUs and tasks of 1 CPU, the rate is at most 64 / (CPU held per task).',
    '',
    'tasks/s: tasks / (last task seen `succeeded` in etcd by the bench\'s watch - first submit). Latency: each task, from its job\'s SubmitJob call to that moment. Agent CPU: utime + stime of the agent process (/proc/<pid>/stat, all threads) over the phase, and cutime + cstime of what it reaped itself (~0: the launcher forks and reaps the supervisors). Launcher CPU: its own run time (/proc/<pid>/schedstat, exact; it is single-threaded) and its cutime + cstime: the supervisors it reaped and, through them, their inits and tasks, start to exit. etcd requests: every KV Txn, Range and Put the server handled in the phase (API, scheduler and agent together; etcd `/metrics`).',
  ];
  if (hold !== undefined) {
    const s = hold.supervisors;
    const t = hold.start;
    const mem = (role: string, m: ProcessMemory, perTask: string): string[] => [role, String(m.sightings), `${mib(m.rssP50Bytes)} / ${mib(m.rssMeanBytes)} / ${mib(m.rssMaxBytes)}`, `${mib(m.pssP50Bytes)} / ${mib(m.pssMeanBytes)} / ${mib(m.pssMaxBytes)}`, perTask];
    lines.push(
      '',
      '### Supervision (phase hold)',
      '',
      table(
        ['process', 'sightings', 'RSS p50 / mean / max', 'PSS p50 / mean / max', 'per running task'],
        [
          mem('supervisor', s.supervisor, count(s.supervisorsPerTask)),
          mem("init (pid 1 of the task's PID namespace)", s.init, count(s.initsPerTask)),
          ['**per task: supervisor + init**', '', `mean ${mib(s.perTask.rssBytes)}`, `**mean ${mib(s.perTask.pssBytes)}**`, ''],
          ['launcher (one per agent, not per task)', '', `max ${mib(s.launcher.rssMaxBytes)}`, `max ${mib(s.launcher.pssMaxBytes)}`, '—'],
        ],
      ),
      '',
      table(
        ['CPU to start a task', 'agent', 'launcher', 'supervisor (p50 / mean, sampled)', 'init (p50 / mean, sampled)', '**total**'],
        [[
          `${hold.tasks} tasks`,
          msv(t?.agentMsPerTask ?? NaN, 2),
          msv(t?.launcherMsPerTask ?? NaN, 3),
          `${msv(t?.supervisorMsP50 ?? NaN, 2)} / ${msv(t?.supervisorMsMean ?? NaN, 2)} (${t?.sampledSupervisors ?? 0})`,
          `${msv(t?.initMsP50 ?? NaN, 2)} / ${msv(t?.initMsMean ?? NaN, 2)} (${t?.sampledInits ?? 0})`,
          `**${msv(t?.totalMs ?? NaN, 2)}**`,
        ]],
      ),
      '',
      `Processes seen: ${s.commands.join(', ') || 'none'}. Candidates are the processes below the agent (or naming its data directory) outside every task cgroup and not zombies; the launcher is the one named omega-launcher, a supervisor one whose parent is not a candidate, an init one below a supervisor. Memory: each one's Rss and Pss (/proc/<pid>/smaps_rollup) at every 1 s sample of the phase; per task = mean supervisor x supervisors per task + mean init x inits per task (counts at the sample with the most tasks running). CPU to start a task: agent = its utime + stime (/proc/<pid>/stat) from the submit until every task was seen running, / tasks; launcher = its run time (/proc/<pid>/schedstat) over the same span, / the tasks it started in it; supervisor and init = each live one's run time (schedstat) at that moment: they only wait after the task's exec, so it is what the start cost them. Total = agent + launcher + mean supervisor + mean init.`,
    );
  }
  return lines.join('\n');
}

export function agentChart(phases: readonly AgentPhase[]): ChartSpec {
  const x = (i: number): number => i + 1;
  return {
    title: `Agent throughput: one real agent, 64 CPUs (${phases.map((p, i) => `${x(i)} ${p.phase}`).join(', ')})`,
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
        points: phases.flatMap((p, i) => [
          { x: x(i), y: p.agentCpuPerTaskMs, series: 'agent + reaped children' },
          { x: x(i), y: p.supervisedCpuPerTaskMs, series: 'reaped by the launcher (supervisor + init + task)' },
        ]),
        rules: [{ y: AGENT_TARGET.startCpuMs, label: 'target 5 ms' }],
      },
    ],
  };
}
