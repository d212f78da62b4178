/**
 * `omega bench live`: T1 (placement throughput vs the raw etcd ceiling), E3 (conflict modes,
 * live vs simulated) and churn (bounded state under a stream of short jobs) on a real etcd with
 * hollow agents and one process per scheduler. Writes
 * result.json, result.md and the chart; prints progress and the PASS/FAIL lines.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { agentChart, agentChecks, agentMarkdown } from './agent-report.js';
import { runAgentThroughput, type AgentOptions, type AgentPhase } from './agent-throughput.js';
import type { ChartSpec } from './charts.js';
import { renderSvg } from './charts.js';
import { runChurn, type ChurnOptions, type ChurnSample } from './churn.js';
import { churnChart, churnChecks, churnMarkdown } from './churn-report.js';
import { dataDisk, describeDataDisk, isJournalLessExt4 } from '@omega/node-agent';
import { describeFileCreate } from './disk-probe.js';
import { describeHostSpeed, hostSpeedSentence, measureHostSpeed } from './host-speed.js';
import { LiveCluster } from './live-cluster.js';
import { LIVE_E3_SERVICE_DENSITY, e3Checks, runLiveE3, type LiveE3Options, type LiveE3Point } from './live-e3.js';
import { runT1, type T1Options, type T1Point } from './live-t1.js';
import { frac, int, ms, table } from './markdown.js';
import { checkLine, configHash, hostInfo, writeResult, type BenchResult, type CheckResult, type HostInfo, type PaperReference } from './result.js';
import type { Print } from './sim-command.js';
import { E3_ARMS, modeArm } from './sim-experiments.js';

export const LIVE_EXPERIMENTS = ['T1', 'E3', 'churn', 'agent'] as const;
export type LiveExperimentId = (typeof LIVE_EXPERIMENTS)[number];

export interface LiveCommandOptions {
  readonly experiment: LiveExperimentId;
  readonly out: string;
  readonly quick: boolean;
  readonly seed: number;
  readonly machines?: number;
  readonly tasks?: number;
  readonly schedulers?: readonly number[];
  /** churn: jobs in all (default 100,000; quick 5,000). agent: one-task jobs (default 1,000; quick 100). */
  readonly jobs?: number;
  /** agent: instances of the one big job (default 1,000; quick 100). */
  readonly instances?: number;
  /** agent: one-task jobs run before the measured ones, reported apart (default as many as `jobs`; 0: none). */
  readonly warmUpJobs?: number;
  /** agent: parallel gRPC clients submitting the one-task jobs (default 8). */
  readonly clients?: number;
  /** Where etcd and the real agent keep their data (a fresh directory each, removed after); default the OS temp directory. */
  readonly dataDir?: string;
}

/** BENCH.md's T1 target, for 4 batch schedulers on 2,000 hollow machines. */
export const T1_TARGET = { schedulers: 4, placementsPerSecond: 5000, shareOfCeiling: 0.5, conflictFraction: 0.1 } as const;

export function t1Checks(points: readonly T1Point[]): CheckResult[] {
  const p = points.find((x) => x.schedulers === T1_TARGET.schedulers);
  if (p === undefined) return [{ name: 'T1 target (4 batch schedulers)', pass: false, detail: 'the sweep has no point with 4 batch schedulers' }];
  const at = `${T1_TARGET.schedulers} schedulers, ${int(p.machines)} machines, ${int(p.tasks)} tasks`;
  return [
    { name: `T1 ≥ ${int(T1_TARGET.placementsPerSecond)} committed placements/s`, pass: p.placementsPerSecond >= T1_TARGET.placementsPerSecond, detail: `${int(p.placementsPerSecond)}/s (${at})` },
    { name: 'T1 ≥ half of the raw etcd ceiling', pass: p.shareOfCeiling >= T1_TARGET.shareOfCeiling, detail: `${int(p.placementsPerSecond)}/s of ${int(p.rawClaimsPerSecond)}/s = ${(p.shareOfCeiling * 100).toFixed(0)}%` },
    { name: 'T1 conflict fraction < 0.1', pass: p.conflictFraction < T1_TARGET.conflictFraction, detail: `${frac(p.conflictFraction)} (${p.transactions} transactions)` },
    ...halfLoadChecks(points),
  ];
}

/** Latency at half load: p99 submit-to-placed and submit-to-running ≤ 1 s, every task placed and running. */
function halfLoadChecks(points: readonly T1Point[]): CheckResult[] {
  const h = points.find((p) => p.halfLoad !== undefined)?.halfLoad;
  if (h === undefined) return [];
  const at = `${int(h.offeredPerSecond)} tasks/s offered (${(h.share * 100).toFixed(0)}% of ${int(h.maxPlacementsPerSecond)}/s) as ${h.tasksPerJob}-task jobs for ${h.seconds.toFixed(0)} s, ${h.schedulers} schedulers`;
  const missing = h.unplaced + h.notRunning > 0 ? `; ${h.unplaced} tasks never placed, ${h.notRunning} never running` : '';
  return [
    { name: 'T1 half load: submit-to-placed p99 ≤ 1 s', pass: h.submitToPlaced.p99Ms <= 1000 && h.unplaced === 0, detail: `p99 ${int(h.submitToPlaced.p99Ms)} ms, p50 ${int(h.submitToPlaced.p50Ms)} ms (${at})${missing}` },
    { name: 'T1 half load: submit-to-running p99 ≤ 1 s', pass: h.submitToRunning.p99Ms <= 1000 && h.notRunning === 0, detail: `p99 ${int(h.submitToRunning.p99Ms)} ms, p50 ${int(h.submitToRunning.p50Ms)} ms (${at})${missing}` },
  ];
}

/** The E3 live = sim checks (live-e3.ts: a stratified test of the failure rates, with the difference it can detect). */
export function e3AgreementChecks(points: readonly LiveE3Point[]): CheckResult[] {
  return e3Checks(
    points,
    E3_ARMS.map(({ conflictMode, transactionMode }) => modeArm(conflictMode, transactionMode)),
  );
}

function t1Markdown(result: BenchResult<T1Point>): string {
  const rows = result.points.map((p) => [
    String(p.schedulers),
    int(p.placementsPerSecond),
    int(p.rawClaimsPerSecond),
    `${(p.shareOfCeiling * 100).toFixed(0)}%`,
    frac(p.conflictFraction),
    int(p.spuriousRetries),
    `${p.commitLatencyP50Ms.toFixed(0)} / ${p.commitLatencyP99Ms.toFixed(0)} ms`,
    `${ms(p.submitToRunning.p50Ms)} / ${ms(p.submitToRunning.p99Ms)}`,
    int(p.etcdTxnsPerSecond),
    `${(p.etcdReceivedBytesPerSecond / 1024 ** 2).toFixed(1)} MiB/s (${int(p.etcdReceivedBytesPerPlacement)} B/placement)`,
    `${int(p.machinesPerJob)} x ${int(p.machineRecordBytes)} B / ${int(p.taskRecordBytes)} B`,
  ]);
  return [
    table(['batch schedulers', 'placements/s', 'raw etcd ceiling (claims/s)', 'share of ceiling', 'conflict fraction', 'spurious retries', 'commit latency p50 / p99', 'submit-to-running p50 / p99', 'etcd txn/s', 'etcd bytes in', 'machine records per 1,000 placements x size / task record'], rows),
    '',
    'Commit latency: request to reply of each commit (resource-fit retries inside it included), p50 weighted over the schedulers by commits, p99 the worst scheduler. Submit-to-running: every task, from its job\'s submission (all jobs at once) to the agent\'s `running` report, so it includes the queue.',
    ...result.points.flatMap((p) => {
      const h = p.halfLoad;
      if (h === undefined) return [];
      return [
        '',
        `Latency at ${(h.share * 100).toFixed(0)}% load (${h.schedulers} batch schedulers, ${int(h.machines)} machines): ${int(h.offeredPerSecond)} tasks/s offered (of ${h.maxFrom === 'measured' ? 'the measured' : 'a given'} maximum ${int(h.maxPlacementsPerSecond)}/s), ${int(h.submittedPerSecond)}/s submitted, as ${int(h.jobs)} jobs of ${h.tasksPerJob} tasks over ${h.seconds.toFixed(1)} s, each when due.`,
        '',
        table(
          ['per task', 'p50', 'p99', 'max'],
          [
            ['submit-to-placed (commit)', ms(h.submitToPlaced.p50Ms), ms(h.submitToPlaced.p99Ms), ms(h.submitToPlaced.maxMs)],
            ['submit-to-running (agent)', ms(h.submitToRunning.p50Ms), ms(h.submitToRunning.p99Ms), ms(h.submitToRunning.maxMs)],
            ['placed-to-running', ms(h.placedToRunning.p50Ms), ms(h.placedToRunning.p99Ms), ms(h.placedToRunning.maxMs)],
          ],
        ),
        '',
        `Commit latency p50 / p99 ${h.commitLatencyP50Ms.toFixed(0)} / ${h.commitLatencyP99Ms.toFixed(0)} ms, submit-to-first-attempt p99 ${int(h.firstAttemptP99Ms)} ms, ${int(h.transactions)} transactions, conflict fraction ${frac(h.conflictFraction)}; ${h.unplaced} tasks never placed, ${h.notRunning} never running.`,
      ];
    }),
  ].join('\n');
}

function e3Markdown(result: BenchResult<LiveE3Point>): string {
  const rows = result.points.map((p) => [
    p.arm,
    String(p.tJobServiceS),
    `${frac(p.live.service.conflictFraction)} (${p.live.service.failed}/${p.live.service.ok})`,
    `${frac(p.sim.service.conflictFraction)} (${p.sim.service.failed}/${p.sim.service.ok})`,
    `${frac(p.live.batch.conflictFraction)} (${p.live.batch.failed}/${p.live.batch.ok})`,
    `${frac(p.sim.batch.conflictFraction)} (${p.sim.batch.failed}/${p.sim.batch.ok})`,
    `${p.live.jobsSubmitted.batch} / ${p.live.jobsSubmitted.service}`,
  ]);
  return [
    table(['arm', 't_job(service) [s, paper units]', 'service cf live (failed/ok)', 'service cf sim', 'batch cf live', 'batch cf sim', 'jobs live batch / service'], rows),
    '',
    "The batch scheduler's think time compresses to a few milliseconds, about its commit latency on etcd, so its live window is wider than the simulated one and its conflict fraction is shown, not checked.",
  ].join('\n');
}

function t1Chart(points: readonly T1Point[]): ChartSpec {
  return {
    title: 'T1: placement throughput on etcd (live)',
    xLabel: 'batch scheduler processes',
    xLog: false,
    columns: 3,
    panels: [
      {
        title: 'Committed placements per second',
        yLabel: 'placements/s',
        points: [...points.map((p) => ({ x: p.schedulers, y: p.placementsPerSecond, series: 'Omega (scheduled)' })), ...points.map((p) => ({ x: p.schedulers, y: p.rawClaimsPerSecond, series: 'raw etcd ceiling (same shapes)' }))],
        rules: [{ y: T1_TARGET.placementsPerSecond, label: 'target 5,000/s' }],
      },
      { title: 'Conflict fraction', yLabel: 'conflict fraction', points: points.map((p) => ({ x: p.schedulers, y: p.conflictFraction, series: 'Omega (scheduled)' })), rules: [{ y: 0.1, label: '0.1' }] },
      {
        title: 'Latency',
        yLabel: 'ms',
        yLog: true,
        points: [
          ...points.map((p) => ({ x: p.schedulers, y: p.commitLatencyP50Ms, series: 'commit p50' })),
          ...points.map((p) => ({ x: p.schedulers, y: p.commitLatencyP99Ms, series: 'commit p99' })),
          ...points.map((p) => ({ x: p.schedulers, y: p.submitToRunning.p50Ms, series: 'submit-to-running p50' })),
          ...points.map((p) => ({ x: p.schedulers, y: p.submitToRunning.p99Ms, series: 'submit-to-running p99' })),
        ],
      },
    ],
  };
}

function e3Chart(points: readonly LiveE3Point[]): ChartSpec {
  return {
    title: 'E3 live vs simulated: service conflict fraction',
    xLabel: 't_job(service) [s, paper units]',
    xLog: true,
    columns: 2,
    panels: [
      {
        title: 'Service scheduler',
        yLabel: 'conflict fraction',
        points: points.flatMap((p) => [
          { x: p.tJobServiceS, y: p.live.service.conflictFraction, series: p.arm, style: 'live' },
          { x: p.tJobServiceS, y: p.sim.service.conflictFraction, series: p.arm, style: 'simulated' },
        ]),
      },
      {
        title: 'Batch scheduler',
        yLabel: 'conflict fraction',
        points: points.flatMap((p) => [
          { x: p.tJobServiceS, y: p.live.batch.conflictFraction, series: p.arm, style: 'live' },
          { x: p.tJobServiceS, y: p.sim.batch.conflictFraction, series: p.arm, style: 'simulated' },
        ]),
      },
    ],
  };
}

function liveMarkdown(result: BenchResult, body: string, chartFile: string): string {
  return [
    `# ${result.title} (live${result.quick ? ', quick' : ''})`,
    '',
    `Seed ${result.seed}; config sha256 \`${result.configSha256.slice(0, 16)}\`; etcd ${result.host.etcd ?? '?'} (one member, on disk), node ${result.host.node}, ${result.host.cpus} x ${result.host.cpuModel}, ${(result.host.memoryBytes / 1024 ** 3).toFixed(0)} GiB; wall time ${ms(result.wallSeconds * 1000)}. Everything (etcd, agents, schedulers, the bench) shares the machine's CPUs.${hostSpeedSentence(result.host)}`,
    '',
    `![${result.experiment}](${chartFile})`,
    '',
    '## Checks',
    '',
    ...result.checks.map((c) => `- **${c.pass ? 'PASS' : 'FAIL'}** ${c.name}: ${c.detail}`),
    '',
    ...(result.paper.length > 0 ? ['## Beside the paper and peers', '', table(['what', 'reference', 'ours'], result.paper.map((r) => [r.what, r.paper, r.ours])), ''] : []),
    ...(result.notes.length > 0 ? ['## Notes', '', ...result.notes.map((n) => `- ${n}`), ''] : []),
    '## Every point',
    '',
    body,
    '',
  ].join('\n');
}

/** result.md and the chart of a live result (also used by `omega bench report`). */
export function liveReport(result: BenchResult): { markdown: string; chart: ChartSpec; chartFile: string } {
  const chartFile = `${result.experiment.toLowerCase()}-live.svg`;
  if (result.experiment === 'agent') {
    const r = result as BenchResult<AgentPhase>;
    return { markdown: liveMarkdown(r, agentMarkdown(r.points), chartFile), chart: agentChart(r.points), chartFile };
  }
  if (result.experiment === 'churn') {
    const r = result as BenchResult<ChurnSample>;
    return { markdown: liveMarkdown(r, churnMarkdown(r.points), chartFile), chart: churnChart(r.points), chartFile };
  }
  if (result.experiment === 'T1') {
    const r = result as BenchResult<T1Point>;
    return { markdown: liveMarkdown(r, t1Markdown(r), chartFile), chart: t1Chart(r.points), chartFile };
  }
  const r = result as BenchResult<LiveE3Point>;
  return { markdown: liveMarkdown(r, e3Markdown(r), chartFile), chart: e3Chart(r.points), chartFile };
}

/** Runs a live experiment; returns the exit code (0: all checks passed). */
/**
 * T1's half-load point, from the environment: `OMEGA_T1_HALF_LOAD_S` seconds of stream (default
 * 15 quick, 30 full; 0 = no half-load point), `OMEGA_T1_HALF_LOAD_K` schedulers (default 4 when
 * the sweep has it, else its first K), `OMEGA_T1_MAX_RATE` the maximum rate to take half of
 * (default: measured by the sweep at that K).
 */
function halfLoadOptions(options: LiveCommandOptions): T1Options['halfLoad'] {
  const env = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) throw new Error(`${name}: must be a number >= 0, got ${JSON.stringify(raw)}`);
    return value;
  };
  const seconds = env('OMEGA_T1_HALF_LOAD_S') ?? (options.quick ? 15 : 30);
  if (seconds === 0) return undefined;
  const sweep = options.schedulers ?? [1, 2, 4, 8];
  const schedulers = env('OMEGA_T1_HALF_LOAD_K') ?? (sweep.includes(4) ? 4 : (sweep[0] ?? 4));
  const max = env('OMEGA_T1_MAX_RATE');
  return { schedulers, seconds, share: 0.5, tasksPerJob: 100, ...(max === undefined ? {} : { maxPlacementsPerSecond: max }) };
}

/**
 * The hollow agent's niceness in T1 (`OMEGA_T1_AGENT_NICE`, an integer from -20 to 19; default
 * 0: it shares the CPUs equally with the schedulers and etcd). It stands in for every machine's
 * agent, each of which would have its own CPUs: below 0 it runs first when both want the CPU,
 * which tells the agent's share of placed-to-running from the control plane's (see live-t1.ts).
 */
function t1AgentNice(): number {
  const raw = process.env.OMEGA_T1_AGENT_NICE;
  if (raw === undefined || raw === '') return 0;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < -20 || value > 19) throw new Error(`OMEGA_T1_AGENT_NICE: must be an integer from -20 to 19, got ${JSON.stringify(raw)}`);
  return value;
}

/**
 * Printed when the data is on ext4 without a journal: there a file created soon after many were
 * deleted scans them (see node-agent's data-disk.ts), and each run deletes its data directory
 * (tens of thousands of files) when it ends, so a run started within minutes of another measures
 * the earlier run's deletes as well as itself.
 */
const JOURNAL_LESS_WARNING =
  'warning: ext4 without a journal: for minutes after many files were deleted on it (an earlier run removing its data dir, for one) every file created scans them, which slows the agent and etcd (the file create above costs several times a tmpfs\'s then); leave 5 minutes between runs, or give --data-dir a fresh or journaled file system';

export async function runLiveCommand(options: LiveCommandOptions, print: Print): Promise<number> {
  const startedAt = new Date();
  // Timed before the cell starts, on the host as the run finds it.
  const speed = measureHostSpeed();
  const cluster = await LiveCluster.start(options.dataDir);
  const host = hostInfo(cluster.etcdVersion, speed);
  // The state of the disk the run starts in; the probe's files are removed with the rest at the end.
  const probeDir = await mkdtemp(join(cluster.dataRoot, 'omega-bench-probe-'));
  let result: BenchResult;
  let disk: string;
  let fileCreate: string;
  try {
    fileCreate = describeFileCreate(probeDir);
    const dataRootDisk = dataDisk(cluster.dataRoot);
    disk = describeDataDisk(dataRootDisk);
    print(`omega bench live ${options.experiment}${options.quick ? ' --quick' : ''}: etcd ${cluster.etcdVersion} at ${cluster.etcd.clientUrl}; data under ${cluster.dataRoot}: ${disk}; ${fileCreate}`);
    print(describeHostSpeed(speed));
    if (isJournalLessExt4(dataRootDisk)) print(JOURNAL_LESS_WARNING);
    if (options.experiment === 'T1') {
      const t1: T1Options = {
        machines: options.machines ?? 2000,
        tasks: options.tasks ?? (options.quick ? 20_000 : 100_000),
        tasksPerJob: 1000,
        schedulers: options.schedulers ?? [1, 2, 4, 8],
        seed: options.seed,
        rawSeconds: options.quick ? 8 : 15,
        taskDurationMs: Number(process.env.OMEGA_T1_TASK_MS ?? 5_000),
        agentNice: t1AgentNice(),
        halfLoad: halfLoadOptions(options),
        print,
      };
      const points = await runT1(cluster, t1);
      const checks = t1Checks(points);
      const best = Math.max(...points.map((p) => p.placementsPerSecond));
      const paper: PaperReference[] = [
        { what: 'placements per second', paper: 'Nomad: 1,000,000 containers in < 5 min on 5,000 hosts, 5 servers (3,750/s)', ours: `best ${int(best)}/s on ${t1.machines} hollow machines, one 2-core host` },
        { what: 'placements per second', paper: "Kubernetes scheduler benchmark floor: 810 pods/s at 5,000 nodes", ours: `${int(points.find((p) => p.schedulers === 1)?.placementsPerSecond ?? NaN)}/s with one batch scheduler` },
      ];
      const config = { experiment: 'T1', quick: options.quick, ...t1, print: undefined };
      result = envelope('T1', 'T1: placement throughput (live)', options, config, points, checks, paper, [
        `Jobs of ${t1.tasksPerJob} tasks (0.1 CPU, 64 MiB, ${t1.taskDurationMs / 1000} s) submitted at once straight into the cell; machines of 64 CPU / 256 GiB so nothing misfits; batch schedulers with their default placement (pack), no think time and --max-txn-ops ${cluster.etcd.limits.maxTxnOps}.`,
        `The raw ceiling runs ${t1.rawSeconds} s per point with as many processes as schedulers, right after the scheduled run, on the same etcd.`,
        `The hollow agent (${t1.machines} machines' agents in one process) runs at nice ${t1.agentNice} (OMEGA_T1_AGENT_NICE)${t1.agentNice < 0 ? ': ahead of the schedulers and etcd when both want the CPU, as if each machine\'s agent had its machine\'s CPUs to itself' : ', sharing the CPUs equally with the schedulers and etcd'}.`,
      ], host, startedAt);
    } else if (options.experiment === 'agent') {
      const jobs = options.jobs ?? (options.quick ? 100 : 1000);
      const agent: AgentOptions = {
        warmUpJobs: options.warmUpJobs ?? jobs,
        jobs,
        instances: options.instances ?? (options.quick ? 100 : 1000),
        clients: options.clients ?? 8,
        holdTasks: options.quick ? 16 : 64,
        holdSeconds: options.quick ? 5 : 10,
        cpus: 64,
        taskMemoryBytes: 16 * 1024 ** 2,
        ...(process.env.OMEGA_BENCH_AGENT_CPU_PROF === undefined ? {} : { agentProfileDir: process.env.OMEGA_BENCH_AGENT_CPU_PROF }),
        print,
      };
      const run = await runAgentThroughput(cluster, agent);
      const config = { experiment: 'agent', quick: options.quick, ...agent, agentProfileDir: undefined, print: undefined };
      result = envelope('agent', 'Agent throughput: real tasks through one real node agent', options, config, run.phases, agentChecks(run.phases), [
        { what: 'one-task jobs started per second on one machine', paper: 'Slurm 22.05 on this machine: 10-12 jobs/s', ours: `${(run.phases.find((p) => p.phase === 'jobs')?.tasksPerSecond ?? NaN).toFixed(1)} tasks/s (${agent.jobs} jobs, ${agent.clients} clients)` },
      ], [
        `One real node agent (cgroup v1/v2 enforcement, a supervisor per task, tasks as its task user) offering ${agent.cpus} CPUs, one batch scheduler process, the API server process, etcd: all on this machine, **all with --insecure** (plaintext gRPC and etcd, no tokens): TLS would add the handshakes of the clients' few long-lived connections, not a per-task cost.`,
        `Tasks claim 1 CPU and ${agent.taskMemoryBytes / 1024 ** 2} MiB; at most ${agent.cpus} run at once. Agent peak RSS (VmHWM) ${(run.agentPeakRssBytes / 1024 ** 2).toFixed(0)} MiB; its cgroups under ${run.cgroupParent}, removed at the end.`,
        `The batch scheduler's commit latency over the run: p50 ${run.commitLatency.p50Ms.toFixed(0)} ms, p99 ${run.commitLatency.p99Ms.toFixed(0)} ms (${run.commitLatency.count} commits).`,
        'OMEGA_BENCH_AGENT_CPU_PROF=DIR runs the agent alone with --cpu-prof into DIR.',
      ], host, startedAt);
    } else if (options.experiment === 'churn') {
      const jobs = options.jobs ?? (options.quick ? 5_000 : 100_000);
      const churn: ChurnOptions = {
        jobs,
        machines: options.machines ?? 100,
        retentionMs: 5_000,
        clients: 4,
        window: 200,
        sampleEvery: Math.max(100, Math.floor(jobs / 30)),
        taskDurationMs: 50,
        retainRevisions: 10_000,
        print,
      };
      const run = await runChurn(cluster, churn);
      const config = { experiment: 'churn', quick: options.quick, ...churn, print: undefined };
      const checks = churnChecks(run.samples, run);
      result = envelope('churn', 'Churn: bounded state under a stream of short jobs', options, config, run.samples, checks, [], [
        `${int(jobs)} batch jobs of one ${churn.taskDurationMs} ms hollow task (0.1 CPU, 64 MiB) on ${churn.machines} hollow machines, submitted through the gRPC API by ${churn.clients} clients with at most ${churn.window} unfinished at a time; retention ${churn.retentionMs / 1000} s in each job and as the schedulers' --job-retention and --request-retention.`,
        `Processes: etcd, the API server, one batch and one service scheduler, one hollow agent; RSS is VmRSS of /proc/<pid>/status. ${int(Math.round(run.jobsPerSecond))} jobs/s; the janitors deleted ${int(run.jobsDeleted)} jobs and ${int(run.requestsDeleted)} request records.`,
        `etcd runs revision auto-compaction (cell-state's launcher), which etcd 3.4 applies every 5 minutes; the bench also compacts to ${int(churn.retainRevisions)} revisions behind the head at every sample. etcd's file does not shrink without a defragmentation: "in use" is the size that must level off.`,
        'Levelled off: the mean of the last third of the samples is at most 20% above that of the middle third (or within 16 MiB of RSS, 2 MiB of database, 200 keys).',
      ], host, startedAt);
    } else {
      const e3: LiveE3Options = {
        machines: options.machines ?? 1000,
        compression: 200,
        tJobServiceS: options.quick ? [10, 100] : [1, 10, 100],
        seconds: options.quick ? 60 : 180,
        simFactor: options.quick ? 4 : 10,
        seed: options.seed,
        print,
      };
      const points = await runLiveE3(cluster, e3);
      const checks = e3AgreementChecks(points);
      const config = { experiment: 'E3', quick: options.quick, ...e3, print: undefined };
      result = envelope('E3', 'E3: conflict detection x transaction mode, live vs simulated', options, config, points, checks, [], [
        `W-omega-like scaled to ${e3.machines} machines (4 CPU, 16 GiB, prefilled to 60% CPU) and time compressed ${e3.compression}x (arrival gaps, durations and think times divided by ${e3.compression}); service jobs ${LIVE_E3_SERVICE_DENSITY}x as often and ${LIVE_E3_SERVICE_DENSITY}x as short (the same service load, ${LIVE_E3_SERVICE_DENSITY}x the service transactions); ${e3.seconds} s of arrivals per point live, ${e3.simFactor}x as long simulated at the identical settings (careful service policy, live retry backoff 10 ms → 1 s).`,
      ], host, startedAt);
    }
  } finally {
    await cluster.close();
    await rm(probeDir, { recursive: true, force: true });
  }
  result = { ...result, notes: [...result.notes, `etcd's data${options.experiment === 'agent' ? ' and the agent\'s' : ''} under ${cluster.dataRoot}: ${disk} (\`--data-dir\` chooses); at the start ${fileCreate} (500 empty files made there, removed with the run's data).`] };
  const report = liveReport(result);
  const svg = await renderSvg(report.chart);
  const written = await writeResult(options.out, result, report.markdown, new Map([[report.chartFile, svg]]));
  for (const c of result.checks) print(checkLine(c));
  print(`wrote ${written.join(', ')}`);
  return result.checks.every((c) => c.pass) ? 0 : 1;
}

function envelope<P>(
  experiment: string,
  title: string,
  options: LiveCommandOptions,
  config: unknown,
  points: readonly P[],
  checks: CheckResult[],
  paper: PaperReference[],
  notes: string[],
  host: HostInfo,
  startedAt: Date,
): BenchResult<P> {
  const finishedAt = new Date();
  return {
    schema: 'omega-bench/1',
    mode: 'live',
    experiment,
    title,
    quick: options.quick,
    seed: options.seed,
    config,
    configSha256: configHash(config),
    host,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    points,
    checks,
    paper,
    notes,
  };
}
