/**
 * Agent throughput (live): how many real tasks per second one real node agent starts, runs and
 * reports, end to end, and what each task's supervision costs. A whole cell on this machine,
 * every process the real entry point from `dist/`:
 *
 * ```
 *   bench ── C gRPC clients ──► API server (--insecure) ──► etcd ◄── batch scheduler
 *     │  (SubmitJob, a request id each)                      ▲
 *     │                                                      │ one machine, --cpu 64
 *     └─ CellMirror (sees each task `succeeded`)      node agent (real: cgroups, a supervisor
 *        /proc of the agent and every supervisor      per task, tasks as the task user)
 * ```
 *
 * Four phases, one after the other on the same cell:
 *
 * - `warm-up`: W one-task jobs, as phase `jobs` runs them, on the cell just started. A fresh
 *   Node process spends its first thousand tasks compiling its hot paths (V8's optimizing
 *   compiler, on background threads that take the same two cores): about a quarter more CPU
 *   per task than later. The phase is reported apart and not judged: a cell runs for months,
 *   and this is the cost of its first thousand tasks after its processes restart;
 * - `jobs`: J one-task jobs of `/bin/true` (1 CPU each) submitted by C parallel clients;
 * - `instances`: one job of I instances of `/bin/true` (1 CPU each);
 * - `hold`: one job of H instances of `sleep S`, to look at the supervisors while they hold
 *   running tasks.
 *
 * Throughput is tasks / (last task seen `succeeded` in etcd - first submit). Latency is per task,
 * from its job's submit call to the moment the bench's mirror saw the task `succeeded`.
 *
 * The bench knows the supervision only as processes. Candidates: every process below the agent
 * in the process tree, or whose command line names the agent's data directory (one that left
 * the tree), that is not in a task's cgroup (those are the task's own) and not a zombie. Among
 * them:
 *
 * - the launcher: the candidate named `omega-launcher` (comm), the one process per agent that
 *   forks every supervisor; reported per agent, never per task;
 * - a supervisor: any other candidate whose parent is not a candidate (the launcher's or the
 *   agent's child, or one re-parented after its parent died);
 * - an init: a candidate whose parent is a candidate, i.e. below a supervisor (with namespaces,
 *   pid 1 of the task's PID namespace, alive as long as the task). Supervisor and init together
 *   are a task's supervision.
 *
 * So any supervisor the agent starts (a Node one, a small C one, with or without an init) is
 * measured the same way.
 *
 * CPU: the agent's utime + stime over a phase (/proc/<pid>/stat: all its threads) and its reaped
 * children's (cutime + cstime; ~0 once a launcher forks the supervisors); the launcher's own run
 * time (/proc/<pid>/schedstat: exact, single-threaded) and its reaped children's (cutime +
 * cstime: the supervisors, and through them the inits and the tasks). In the hold phase, once
 * every task runs, each live supervisor's and init's run time (schedstat): they only wait after
 * the task's exec, so that is what starting it cost them.
 */
import { chmod, mkdtemp, readdir, rm, rmdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { freePort, type CellMirror, type JobId, type MachineId, type Task, type TaskId } from '@omega/cell-state';
import type { WireJobSpec } from '@omega/api/client';
import { API_MAIN } from './churn.js';
import { AGENT_MAIN, finalMetrics, type ChildHandle, type EtcdCounters, type LiveCluster } from './live-cluster.js';
import { descendants, percentile, procCgroups, procCpu, processTable, procRunSeconds, smapsRollup, statusBytes, type ProcEntry } from './proc-sample.js';
import { SubmitClient } from './submit-client.js';

export interface AgentOptions {
  /** Phase `warm-up`: one-task jobs run first, on the cell just started, as phase `jobs` runs them (0: no warm-up). */
  readonly warmUpJobs: number;
  /** Phase `jobs`: one-task jobs in all. */
  readonly jobs: number;
  /** Phase `instances`: instances of the one job. */
  readonly instances: number;
  /** Parallel gRPC clients submitting phase `jobs`. */
  readonly clients: number;
  /** Phase `hold`: `sleep` tasks held at once (at most the agent's CPUs: 1 CPU each). */
  readonly holdTasks: number;
  /** Phase `hold`: how long each task sleeps, seconds. */
  readonly holdSeconds: number;
  /** CPUs the agent offers (`--cpu`). */
  readonly cpus: number;
  /** Memory each task claims, bytes (its cgroup limit). */
  readonly taskMemoryBytes: number;
  /** When set, the agent runs with `--cpu-prof` into this directory. */
  readonly agentProfileDir?: string;
  readonly print: (line: string) => void;
}

export type AgentPhaseName = 'warm-up' | 'jobs' | 'instances' | 'hold';

/** Memory of one kind of process, over every sighting with a readable smaps_rollup (bytes; NaN when none). */
export interface ProcessMemory {
  readonly sightings: number;
  readonly rssP50Bytes: number;
  readonly rssMeanBytes: number;
  readonly rssMaxBytes: number;
  readonly pssP50Bytes: number;
  readonly pssMeanBytes: number;
  readonly pssMaxBytes: number;
}

/** The supervision seen by the sampler during a phase (see the file header for the roles). */
export interface SupervisorSample {
  /** Most supervisors alive at one sample. */
  readonly maxAlive: number;
  /** Each supervisor process (memory sampled in the hold phase only). */
  readonly supervisor: ProcessMemory;
  /** Each init (a process below a supervisor, outside the task's cgroup). */
  readonly init: ProcessMemory;
  /** Supervisors and inits per running task, at the sample with the most tasks (NaN when no task was seen). */
  readonly supervisorsPerTask: number;
  readonly initsPerTask: number;
  /** What one running task's supervision holds: mean supervisor + mean init, each times its count per task. */
  readonly perTask: { readonly rssBytes: number; readonly pssBytes: number };
  /** The launcher (one per agent; NaN when none was seen). */
  readonly launcher: { readonly rssMaxBytes: number; readonly pssMaxBytes: number };
  /** Commands seen (comm) by role, e.g. supervisor `omega-superviso`, launcher `omega-launcher`. */
  readonly commands: readonly string[];
}

export interface AgentPhase {
  readonly phase: AgentPhaseName;
  readonly description: string;
  readonly tasks: number;
  readonly succeeded: number;
  /** Tasks seen failed / killed / lost, by reason. */
  readonly failures: Readonly<Record<string, number>>;
  /** First submit to the last submit's reply. */
  readonly submitSeconds: number;
  /** First submit to the last task seen `succeeded`. */
  readonly seconds: number;
  readonly tasksPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** CPU seconds over the phase. */
  readonly cpu: { readonly agent: number; readonly agentChildren: number; readonly launcher: number; readonly launcherChildren: number; readonly scheduler: number; readonly api: number; readonly etcd: number; readonly bench: number };
  /** (agent + its reaped children) CPU per task, ms. */
  readonly agentCpuPerTaskMs: number;
  /** The launcher's own CPU per task, ms (its forks and reaps); NaN when no launcher was seen. */
  readonly launcherCpuPerTaskMs: number;
  /** The launcher's reaped children per task, ms: supervisor + init + the task itself, start to exit. */
  readonly supervisedCpuPerTaskMs: number;
  readonly agentRssMaxBytes: number;
  readonly supervisors: SupervisorSample;
  /** etcd requests over the phase (everyone's) and per task. */
  readonly etcd: { readonly txns: number; readonly ranges: number; readonly puts: number; readonly perTask: number };
  /** Keys written per task in the phase, by `kind put|delete` (from the watch). */
  readonly writesPerTask: Readonly<Record<string, number>>;
  readonly segments: TaskSegments;
  /** The batch scheduler over the phase, from its published stats: transactions, claims, and busy time / elapsed (NaN when unknown). */
  readonly scheduler: { readonly transactions: number; readonly claims: number; readonly busyness: number };
  /** Hold only: CPU to start one task; see `StartCpu`. */
  readonly start?: StartCpu;
}

/**
 * CPU to start one task (hold phase), ms. Agent and launcher: their CPU from the submit until
 * every task was seen running, divided by the tasks. Supervisor and init: each live one's own
 * run time at that moment (they only wait after the task's exec). Total: agent + launcher +
 * mean supervisor + mean init (when there are inits).
 */
export interface StartCpu {
  readonly agentMsPerTask: number;
  readonly launcherMsPerTask: number;
  readonly supervisorMsP50: number;
  readonly supervisorMsMean: number;
  readonly sampledSupervisors: number;
  readonly initMsP50: number;
  readonly initMsMean: number;
  readonly sampledInits: number;
  readonly totalMs: number;
}

export interface AgentRun {
  readonly phases: readonly AgentPhase[];
  /** The agent's resident set high-water mark (VmHWM) at the end. */
  readonly agentPeakRssBytes: number;
  readonly cgroupParent: string;
  /** The batch scheduler's commit latency over the whole run (its final metrics), ms; NaN when it printed none. */
  readonly commitLatency: { readonly count: number; readonly p50Ms: number; readonly p99Ms: number };
}

const CELL = 'agent';
const AGENT_MACHINE = 'bench-agent' as MachineId;

function trueSpec(name: string, instances: number, memoryBytes: number, command: string[]): WireJobSpec {
  return {
    name,
    kind: 'JOB_KIND_BATCH',
    priority: 0,
    instances,
    commit_mode: 'COMMIT_MODE_UNSPECIFIED',
    task: { command, env: {}, resources: { cpu_millis: 1000, memory_bytes: memoryBytes }, run_duration_ms: 0, hollow_fail: false, pids_limit: 0 },
    constraints: [],
    restart_policy: null,
  };
}

/** Where a task's time went, from its record's own stamps (every process is on this host: one clock). */
export interface TaskSegments {
  /** Submit call to the scheduler's placement (`placedAtMs`): the queue, and waiting for a free CPU. */
  readonly submitToPlacedMs: { readonly p50: number; readonly p99: number };
  /** Placement to the user process started (`startedAtMs`, the supervisor's started.json): the agent sees it, reads the job, makes the directory and cgroup, spawns the supervisor, which starts the task. */
  readonly placedToStartedMs: { readonly p50: number; readonly p99: number };
  /** Started to exited (`finishedAtMs`, the supervisor's exit.json). */
  readonly startedToExitedMs: { readonly p50: number; readonly p99: number };
  /** Exited to the bench seeing `succeeded` in etcd: the agent notices, reads the cgroup, removes it, batches and writes the report. */
  readonly exitedToSucceededMs: { readonly p50: number; readonly p99: number };
  /** Placement to `succeeded` seen: how long a task holds its CPU; with C CPUs the rate is at most C / this. */
  readonly slotMeanMs: number;
}

function schedulerStats(watch: TaskWatch): CpuMark['schedulerStats'] {
  const s = [...watch.mirror.snapshot().schedulerStats()].find((x) => x.name === 'batch-1');
  return s === undefined ? undefined : { transactionsOk: s.transactionsOk, transactionsFailed: s.transactionsFailed, claimsCommitted: s.claimsCommitted, busyMs: s.busyUsefulMs + s.busyWastedMs + s.busyNoFitMs, elapsedMs: s.elapsedMs };
}

/** Follows every task of the cell through the bench's mirror: when each was first seen succeeded. */
class TaskWatch {
  readonly succeededAt = new Map<TaskId, number>();
  /** The record of each task when it was first seen succeeded. */
  readonly succeededRecord = new Map<TaskId, Task>();
  /** Keys changed, by `kind put|delete` (every write anyone made, as the watch delivers it). */
  readonly writes = new Map<string, number>();
  readonly runningSeen = new Set<TaskId>();
  readonly failed = new Map<TaskId, string>();
  private readonly unsubscribe: () => void;

  constructor(readonly mirror: CellMirror) {
    this.unsubscribe = mirror.onChange((change) => {
      const now = Date.now();
      const snapshot = mirror.snapshot();
      const see = (task: Task): void => {
        if (task.state === 'running') this.runningSeen.add(task.id);
        else if (task.state === 'succeeded') {
          this.runningSeen.add(task.id);
          if (!this.succeededAt.has(task.id)) {
            this.succeededAt.set(task.id, now);
            this.succeededRecord.set(task.id, task);
          }
        } else if (task.state === 'failed' || task.state === 'killed' || task.state === 'lost') this.failed.set(task.id, `${task.state}:${task.reason}`);
      };
      if (change.full) {
        for (const job of snapshot.jobs()) for (const t of snapshot.tasksOf(job.id)) see(t);
        return;
      }
      for (const c of change.changes) {
        const k = `${c.kind} ${c.type}`;
        this.writes.set(k, (this.writes.get(k) ?? 0) + 1);
        if (c.kind !== 'task' || c.type !== 'put') continue;
        const task = snapshot.task(c.id as TaskId);
        if (task !== undefined) see(task);
      }
    });
  }

  close(): void {
    this.unsubscribe();
  }
}

interface Processes {
  readonly agent: ChildHandle;
  readonly scheduler: ChildHandle;
  readonly api: ChildHandle;
  readonly etcdPid: number | undefined;
  readonly dataDir: string;
  readonly cgroupParent: string;
}

/** The launcher's comm: the one process per agent that forks the supervisors. */
const LAUNCHER_COMM = 'omega-launcher';

/** The agent's processes now, by role (see the file header). */
export interface AgentProcesses {
  readonly launcher: ProcEntry | undefined;
  readonly supervisors: ProcEntry[];
  readonly inits: ProcEntry[];
  readonly tasks: ProcEntry[];
}

function agentProcesses(p: Processes): AgentProcesses {
  const agentPid = p.agent.child.pid;
  if (agentPid === undefined) return { launcher: undefined, supervisors: [], inits: [], tasks: [] };
  const table = processTable();
  const found = new Map<number, ProcEntry>();
  for (const d of descendants(table, agentPid)) found.set(d.pid, d);
  for (const e of table) {
    if (e.pid !== agentPid && e.cmdline.includes(p.dataDir) && !found.has(e.pid)) {
      found.set(e.pid, e);
      for (const d of descendants(table, e.pid)) found.set(d.pid, d);
    }
  }
  // A zombie (a task or supervisor that exited and is not reaped yet) holds no memory and has no cgroup left to tell.
  const live = [...found.values()].filter((e) => e.state !== 'Z');
  return supervisionRoles(live, (e) => procCgroups(e.pid).includes(`/${p.cgroupParent}/`));
}

/**
 * Sorts the agent's live (non-zombie) processes into roles (see the file header): a task is one
 * `inTaskCgroup` says is; the launcher the one named `omega-launcher` (one so named below it is
 * its fork of a supervisor before the exec, and left out); among the rest, a supervisor is one
 * whose parent is not among them, an init one whose parent is.
 */
export function supervisionRoles(live: readonly ProcEntry[], inTaskCgroup: (e: ProcEntry) => boolean): AgentProcesses {
  let launcher: ProcEntry | undefined;
  const candidates = new Map<number, ProcEntry>();
  const tasks: ProcEntry[] = [];
  const launcherPids = new Set(live.filter((e) => e.comm === LAUNCHER_COMM).map((e) => e.pid));
  for (const e of live) {
    if (inTaskCgroup(e)) tasks.push(e);
    else if (e.comm === LAUNCHER_COMM) {
      // One whose parent is a launcher too is its fork of a supervisor, not exec'd yet: not a supervisor yet.
      if (!launcherPids.has(e.ppid)) launcher ??= e;
    } else candidates.set(e.pid, e);
  }
  const supervisors: ProcEntry[] = [];
  const inits: ProcEntry[] = [];
  for (const e of candidates.values()) (candidates.has(e.ppid) ? inits : supervisors).push(e);
  return { launcher, supervisors, inits, tasks };
}

/** Rss and Pss sightings of one kind of process. */
class MemoryTally {
  private readonly rss: number[] = [];
  private readonly pss: number[] = [];

  add(pid: number): void {
    const m = smapsRollup(pid);
    if (Number.isFinite(m.rss) && Number.isFinite(m.pss)) {
      this.rss.push(m.rss);
      this.pss.push(m.pss);
    }
  }

  result(): ProcessMemory {
    const mean = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
    const max = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => Math.max(a, b), -Infinity));
    return { sightings: this.rss.length, rssP50Bytes: percentile(this.rss, 0.5), rssMeanBytes: mean(this.rss), rssMaxBytes: max(this.rss), pssP50Bytes: percentile(this.pss, 0.5), pssMeanBytes: mean(this.pss), pssMaxBytes: max(this.pss) };
  }
}

/** Mean x count per task, where no process of the kind per task adds nothing (not NaN). */
function share(meanBytes: number, perTask: number): number {
  return perTask === 0 ? 0 : meanBytes * perTask;
}

/** Samples the agent, its launcher, supervisors and inits every `everyMs` until stopped. */
class Sampler {
  private timer: NodeJS.Timeout | undefined;
  private maxAlive = 0;
  private agentRssMax = 0;
  private best = { tasks: 0, supervisors: 0, inits: 0 };
  private readonly supervisor = new MemoryTally();
  private readonly init = new MemoryTally();
  private readonly launcher = new MemoryTally();
  private readonly commands = new Set<string>();

  constructor(
    private readonly p: Processes,
    private readonly everyMs: number,
    private readonly withMemory: boolean,
  ) {}

  start(): void {
    const tick = (): void => {
      this.sample();
      this.timer = setTimeout(tick, this.everyMs);
    };
    this.timer = setTimeout(tick, this.everyMs);
  }

  /** One sample now; returns the processes seen. */
  sample(): AgentProcesses {
    this.agentRssMax = Math.max(this.agentRssMax, statusBytes(this.p.agent.child.pid, 'VmRSS') || 0);
    const seen = agentProcesses(this.p);
    const { launcher, supervisors, inits, tasks } = seen;
    this.maxAlive = Math.max(this.maxAlive, supervisors.length);
    if (tasks.length > this.best.tasks) this.best = { tasks: tasks.length, supervisors: supervisors.length, inits: inits.length };
    if (launcher !== undefined) this.commands.add(`launcher ${launcher.comm}`);
    for (const s of supervisors) this.commands.add(`supervisor ${s.comm}`);
    for (const s of inits) this.commands.add(`init ${s.comm}`);
    if (this.withMemory) {
      if (launcher !== undefined) this.launcher.add(launcher.pid);
      for (const s of supervisors) this.supervisor.add(s.pid);
      for (const s of inits) this.init.add(s.pid);
    }
    return seen;
  }

  stop(): { supervisors: SupervisorSample; agentRssMaxBytes: number } {
    if (this.timer !== undefined) clearTimeout(this.timer);
    const supervisor = this.supervisor.result();
    const init = this.init.result();
    const launcher = this.launcher.result();
    const supervisorsPerTask = this.best.tasks === 0 ? NaN : this.best.supervisors / this.best.tasks;
    const initsPerTask = this.best.tasks === 0 ? NaN : this.best.inits / this.best.tasks;
    return {
      agentRssMaxBytes: this.agentRssMax,
      supervisors: {
        maxAlive: this.maxAlive,
        supervisor,
        init,
        supervisorsPerTask,
        initsPerTask,
        perTask: {
          rssBytes: share(supervisor.rssMeanBytes, supervisorsPerTask) + share(init.rssMeanBytes, initsPerTask),
          pssBytes: share(supervisor.pssMeanBytes, supervisorsPerTask) + share(init.pssMeanBytes, initsPerTask),
        },
        launcher: { rssMaxBytes: launcher.rssMaxBytes, pssMaxBytes: launcher.pssMaxBytes },
        commands: [...this.commands].sort(),
      },
    };
  }
}

/** The agent's launcher now (a child of the agent named `omega-launcher`), or undefined. */
function launcherPid(p: Processes): number | undefined {
  const agentPid = p.agent.child.pid;
  return processTable().find((e) => e.ppid === agentPid && e.comm === LAUNCHER_COMM && e.state !== 'Z')?.pid;
}

/** The launcher's CPU at a mark: its pid, own run time (schedstat) and reaped children's (cutime + cstime), seconds. */
interface LauncherCpu {
  readonly pid: number | undefined;
  readonly run: number;
  readonly children: number;
}

function launcherCpu(p: Processes): LauncherCpu {
  const pid = launcherPid(p);
  return { pid, run: pid === undefined ? 0 : procRunSeconds(pid), children: pid === undefined ? 0 : procCpu(pid).children };
}

/** The launcher's CPU between two marks: none before counts from zero (it started meanwhile); another pid after is unknown (NaN). */
function launcherDelta(before: LauncherCpu, after: LauncherCpu, field: 'run' | 'children'): number {
  if (after.pid === undefined) return before.pid === undefined ? 0 : NaN;
  if (before.pid === undefined) return after[field];
  return before.pid === after.pid ? after[field] - before[field] : NaN;
}

interface CpuMark {
  readonly at: number;
  readonly bench: number;
  readonly writes: ReadonlyMap<string, number>;
  /** The batch scheduler's published stats (its record in the cell, refreshed every second). */
  readonly schedulerStats: { readonly transactionsOk: number; readonly transactionsFailed: number; readonly claimsCommitted: number; readonly busyMs: number; readonly elapsedMs: number } | undefined;
  readonly agent: { self: number; children: number };
  readonly launcher: LauncherCpu;
  readonly scheduler: number;
  readonly api: number;
  readonly etcd: number;
  readonly counters: EtcdCounters;
}

async function mark(cluster: LiveCluster, p: Processes, watch: TaskWatch): Promise<CpuMark> {
  const own = process.cpuUsage();
  return {
    at: Date.now(),
    bench: (own.user + own.system) / 1e6,
    writes: new Map(watch.writes),
    schedulerStats: schedulerStats(watch),
    agent: procCpu(p.agent.child.pid),
    launcher: launcherCpu(p),
    scheduler: procCpu(p.scheduler.child.pid).self,
    api: procCpu(p.api.child.pid).self,
    etcd: procCpu(p.etcdPid).self,
    counters: await cluster.etcdCounters(),
  };
}

/** A child's last log messages and stderr lines, for an error. */
function lastWords(h: ChildHandle): string {
  const messages = h.records.slice(-3).map((r) => `${String(r.msg)}${typeof r.err === 'object' && r.err !== null ? `: ${String((r.err as { message?: unknown }).message)}` : ''}`);
  return [...messages, ...h.stderrTail.slice(-3)].join(' | ');
}

/** Resolves once `done()` holds, polling every 50 ms; throws if a process exits or nothing progresses for 120 s. */
async function until(p: Processes, done: () => boolean, progress: () => number, what: string): Promise<void> {
  let last = progress();
  let lastAt = Date.now();
  while (!done()) {
    for (const h of [p.agent, p.scheduler, p.api]) {
      if (h.child.exitCode !== null || h.child.signalCode !== null) throw new Error(`${h.name} exited (${h.child.exitCode ?? h.child.signalCode}) during ${what}: ${lastWords(h)}`);
    }
    const now = progress();
    if (now !== last) {
      last = now;
      lastAt = Date.now();
    } else if (Date.now() - lastAt > 120_000) throw new Error(`no progress for 120 s during ${what} (${now} done)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the three phases on a started cluster; see the file header. */
/** How many of `ids` have ended (succeeded or failed). */
function endedCount(watch: TaskWatch, ids: readonly TaskId[]): number {
  return ids.filter((t) => watch.succeededAt.has(t) || watch.failed.has(t)).length;
}

/** Submit (at `at`) to succeeded of each succeeded task of `ids`, and when the last one succeeded. */
function completion(watch: TaskWatch, ids: readonly TaskId[], at: number): { latencies: number[]; end: number } {
  const latencies = ids.flatMap((t) => {
    const done = watch.succeededAt.get(t);
    return done === undefined ? [] : [done - at];
  });
  return { latencies, end: Math.max(...ids.map((t) => watch.succeededAt.get(t) ?? 0)) };
}

export async function runAgentThroughput(cluster: LiveCluster, options: AgentOptions): Promise<AgentRun> {
  const { print } = options;
  if (options.holdTasks > options.cpus) throw new Error(`holdTasks (${options.holdTasks}) must be at most the agent's CPUs (${options.cpus}): every sleep task must run at once`);
  const cell = cluster.cell(CELL);
  const dataDir = await mkdtemp(join(cluster.dataRoot, 'omega-bench-agent-'));
  // The task user must be able to enter it (the agent checks at start).
  await chmod(dataDir, 0o755);
  const cgroupParent = `omega-bench-${process.pid}`;
  const profile = options.agentProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.agentProfileDir}`];
  const memory = `${Math.max(1, Math.ceil((options.cpus * options.taskMemoryBytes * 2) / 1024 ** 3))}Gi`;
  const agent = cluster.startNode('agent', [
    ...profile,
    AGENT_MAIN,
    '--insecure',
    '--etcd',
    cluster.etcd.clientUrl,
    '--cell',
    CELL,
    '--machine-id',
    AGENT_MACHINE,
    '--cpu',
    String(options.cpus),
    '--memory',
    memory,
    '--data-dir',
    dataDir,
    '--cgroup-parent',
    cgroupParent,
    '--log-level',
    'warn',
  ]);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const api = cluster.startNode('api', [API_MAIN, '--insecure', '--etcd', cluster.etcd.clientUrl, '--cell', CELL, '--listen', address, '--log-level', 'warn']);
  const scheduler = cluster.startScheduler('batch', CELL, 'batch-1', []);
  const p: Processes = { agent, scheduler, api, etcdPid: cluster.etcd.pid, dataDir, cgroupParent };

  const mirror = cell.mirror();
  await mirror.start();
  const watch = new TaskWatch(mirror);
  const clients = Array.from({ length: options.clients }, () => new SubmitClient(address));
  const phases: AgentPhase[] = [];
  try {
    await clients[0]?.ready(60_000).catch((error: unknown) => {
      throw new Error(`the API server did not come up: ${String(error)}; ${api.stderrTail.slice(-5).join(' | ')}`);
    });
    const deadline = Date.now() + 60_000;
    while (mirror.snapshot().alive(AGENT_MACHINE) === undefined || [...mirror.snapshot().schedulerStats()].length === 0) {
      if (agent.child.exitCode !== null) throw new Error(`the agent exited with ${agent.child.exitCode}: ${lastWords(agent)}`);
      if (Date.now() > deadline) throw new Error(`the agent or the scheduler did not come up in 60 s: ${lastWords(agent)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    print(`agent: one real agent (--cpu ${options.cpus}, --memory ${memory}, cgroups under ${cgroupParent}), one batch scheduler, the API server; all with --insecure (plaintext, no tokens)`);
    const runId = Date.now().toString(36);

    // Phase warm-up, then phase jobs: J one-task jobs from C clients each.
    const jobsPhase = async (phase: 'warm-up' | 'jobs', jobs: number, description: string): Promise<void> => {
      const spec = trueSpec('true', 1, options.taskMemoryBytes, ['/bin/true']);
      const submittedAt = new Map<JobId, number>();
      // Their tasks, as submitted: polled every 50 ms, so not rebuilt from submittedAt each time.
      const taskIds: TaskId[] = [];
      let next = 0;
      const sampler = new Sampler(p, 1000, false);
      const before = await mark(cluster, p, watch);
      sampler.start();
      const submitter = async (client: SubmitClient): Promise<void> => {
        while (next < jobs) {
          const i = next++;
          const at = Date.now();
          const id = (await client.submit(spec, `bench-${runId}-${phase}-${i}`)) as JobId;
          submittedAt.set(id, at);
          taskIds.push(`${id}/0` as TaskId);
        }
      };
      const submitting = Promise.all(clients.map((c) => submitter(c)));
      let submitFailure: unknown;
      const submitDone = submitting.then(
        () => Date.now(),
        (error: unknown) => {
          submitFailure = error;
          return NaN;
        },
      );
      const finished = (): number => endedCount(watch, taskIds);
      await until(
        p,
        () => {
          if (submitFailure !== undefined) throw new Error(`a submit failed: ${String(submitFailure)}`);
          return submittedAt.size === jobs && finished() === jobs;
        },
        finished,
        `phase ${phase}`,
      );
      const submitEnd = await submitDone;
      const supervision = sampler.stop();
      const after = await mark(cluster, p, watch);
      const latencies = [...submittedAt].flatMap(([job, at]) => {
        const done = watch.succeededAt.get(`${job}/0` as TaskId);
        return done === undefined ? [] : [done - at];
      });
      const end = Math.max(...taskIds.map((t) => watch.succeededAt.get(t) ?? 0));
      const jobOf = (t: TaskId): JobId => t.slice(0, t.lastIndexOf('/')) as JobId;
      phases.push(phaseResult(phase, description, taskIds, watch, before, after, before.at, submitEnd, end, latencies, supervision, (t) => submittedAt.get(jobOf(t)) ?? NaN));
      print(phaseLine(phases[phases.length - 1] as AgentPhase));
    };
    const jobsWhat = (jobs: number): string => `${jobs} one-task jobs of /bin/true (1 CPU, ${options.taskMemoryBytes / 1024 ** 2} MiB), submitted by ${options.clients} parallel gRPC clients`;
    if (options.warmUpJobs > 0) await jobsPhase('warm-up', options.warmUpJobs, `${jobsWhat(options.warmUpJobs)}, on the cell just started: its processes' JIT compiles the hot paths meanwhile (reported, not checked)`);
    await jobsPhase('jobs', options.jobs, jobsWhat(options.jobs));

    // Phase instances: one job of I instances.
    {
      const sampler = new Sampler(p, 1000, false);
      const before = await mark(cluster, p, watch);
      sampler.start();
      const at = Date.now();
      const job = (await (clients[0] as SubmitClient).submit(trueSpec('true-many', options.instances, options.taskMemoryBytes, ['/bin/true']), `bench-${runId}-instances`)) as JobId;
      const submitEnd = Date.now();
      const ids = Array.from({ length: options.instances }, (_, i) => `${job}/${i}` as TaskId);
      const finished = (): number => endedCount(watch, ids);
      await until(p, () => finished() === ids.length, finished, 'phase instances');
      const supervision = sampler.stop();
      const after = await mark(cluster, p, watch);
      const { latencies, end } = completion(watch, ids, at);
      phases.push(phaseResult('instances', `one job of ${options.instances} instances of /bin/true (1 CPU, ${options.taskMemoryBytes / 1024 ** 2} MiB each)`, ids, watch, before, after, at, submitEnd, end, latencies, supervision, () => at));
      print(phaseLine(phases[phases.length - 1] as AgentPhase));
    }

    // Phase hold: H sleeping tasks at once; the supervisors are measured while they hold them.
    {
      const sampler = new Sampler(p, 1000, true);
      const before = await mark(cluster, p, watch);
      sampler.start();
      const at = Date.now();
      const job = (await (clients[0] as SubmitClient).submit(trueSpec('sleep', options.holdTasks, options.taskMemoryBytes, ['/bin/sleep', String(options.holdSeconds)]), `bench-${runId}-hold`)) as JobId;
      const submitEnd = Date.now();
      const ids = Array.from({ length: options.holdTasks }, (_, i) => `${job}/${i}` as TaskId);
      const running = (): number => ids.filter((t) => watch.runningSeen.has(t) || watch.failed.has(t)).length;
      await until(p, () => running() === ids.length, running, 'phase hold (all running)');
      const allRunning = procCpu(agent.child.pid).self;
      const launcherAllRunning = launcherCpu(p);
      const startSeconds = (Date.now() - at) / 1000;
      // Everything started; each supervisor and init has spent what the start cost it (it only waits now).
      const seen = sampler.sample();
      const runMs = (list: readonly ProcEntry[]): number[] => list.map((s) => procRunSeconds(s.pid) * 1000).filter((v) => Number.isFinite(v));
      const supervisorCpuMs = runMs(seen.supervisors);
      const initCpuMs = runMs(seen.inits);
      const finished = (): number => endedCount(watch, ids);
      await until(p, () => finished() === ids.length, finished, 'phase hold');
      const supervision = sampler.stop();
      const after = await mark(cluster, p, watch);
      const { latencies, end } = completion(watch, ids, at);
      const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
      const agentMsPerTask = ((allRunning - before.agent.self) * 1000) / ids.length;
      const launcherMsPerTask = (launcherDelta(before.launcher, launcherAllRunning, 'run') * 1000) / ids.length;
      const supervisorMsMean = mean(supervisorCpuMs);
      const initMsMean = mean(initCpuMs);
      const base = phaseResult('hold', `one job of ${options.holdTasks} instances of sleep ${options.holdSeconds} (1 CPU each: all at once on ${options.cpus} CPUs); all running after ${startSeconds.toFixed(1)} s`, ids, watch, before, after, at, submitEnd, end, latencies, supervision, () => at);
      phases.push({
        ...base,
        start: {
          agentMsPerTask,
          launcherMsPerTask,
          supervisorMsP50: percentile(supervisorCpuMs, 0.5),
          supervisorMsMean,
          sampledSupervisors: supervisorCpuMs.length,
          initMsP50: percentile(initCpuMs, 0.5),
          initMsMean,
          sampledInits: initCpuMs.length,
          // No launcher (supervisors forked by the agent itself) adds nothing; no init likewise.
          totalMs: agentMsPerTask + (launcherAllRunning.pid === undefined && before.launcher.pid === undefined ? 0 : launcherMsPerTask) + supervisorMsMean + (initCpuMs.length === 0 ? 0 : initMsMean),
        },
      });
      print(phaseLine(phases[phases.length - 1] as AgentPhase));
    }
    const agentPeakRssBytes = statusBytes(agent.child.pid, 'VmHWM');
    await cluster.stopProcess(scheduler);
    const final = finalMetrics(scheduler);
    const latency = final?.commitLatency;
    const commitLatency = { count: latency?.count ?? NaN, p50Ms: latency?.p50Ms ?? NaN, p99Ms: latency?.p99Ms ?? NaN };
    // Latency is recorded per transaction (per job), which shares its commit with the other jobs committed with it.
    const commits = final?.commits ?? NaN;
    print(`  batch scheduler: ${commitLatency.count} transactions in ${commits} commits (${(commitLatency.count / commits).toFixed(1)} jobs per commit), commit latency per transaction p50 ${commitLatency.p50Ms.toFixed(0)} ms, p99 ${commitLatency.p99Ms.toFixed(0)} ms`);
    return { phases, agentPeakRssBytes, cgroupParent, commitLatency };
  } finally {
    watch.close();
    for (const c of clients) c.close();
    await mirror.stop();
    await Promise.all([cluster.stopProcess(agent), cluster.stopProcess(scheduler), cluster.stopProcess(api)]);
    await removeCgroupParent(cgroupParent);
    await rm(dataDir, { recursive: true, force: true });
  }
}

function schedulerDelta(a: CpuMark['schedulerStats'], b: CpuMark['schedulerStats']): AgentPhase['scheduler'] {
  if (a === undefined || b === undefined) return { transactions: NaN, claims: NaN, busyness: NaN };
  const elapsed = b.elapsedMs - a.elapsedMs;
  return { transactions: b.transactionsOk + b.transactionsFailed - a.transactionsOk - a.transactionsFailed, claims: b.claimsCommitted - a.claimsCommitted, busyness: elapsed > 0 ? (b.busyMs - a.busyMs) / elapsed : NaN };
}

function segments(ids: readonly TaskId[], watch: TaskWatch, submittedAt: (id: TaskId) => number): TaskSegments {
  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  const d: number[] = [];
  const slot: number[] = [];
  for (const id of ids) {
    const t = watch.succeededRecord.get(id);
    const seen = watch.succeededAt.get(id);
    if (t === undefined || seen === undefined || t.placedAtMs <= 0 || t.startedAtMs <= 0 || t.finishedAtMs <= 0) continue;
    a.push(t.placedAtMs - submittedAt(id));
    b.push(t.startedAtMs - t.placedAtMs);
    c.push(t.finishedAtMs - t.startedAtMs);
    d.push(seen - t.finishedAtMs);
    slot.push(seen - t.placedAtMs);
  }
  const q = (xs: number[]): { p50: number; p99: number } => ({ p50: percentile(xs, 0.5), p99: percentile(xs, 0.99) });
  return { submitToPlacedMs: q(a), placedToStartedMs: q(b), startedToExitedMs: q(c), exitedToSucceededMs: q(d), slotMeanMs: slot.length === 0 ? NaN : slot.reduce((x, y) => x + y, 0) / slot.length };
}

function phaseResult(
  phase: AgentPhaseName,
  description: string,
  ids: readonly TaskId[],
  watch: TaskWatch,
  before: CpuMark,
  after: CpuMark,
  firstSubmit: number,
  submitEnd: number,
  end: number,
  latencies: readonly number[],
  supervision: { supervisors: SupervisorSample; agentRssMaxBytes: number },
  submittedAt: (id: TaskId) => number,
): AgentPhase {
  const succeeded = ids.filter((t) => watch.succeededAt.has(t)).length;
  const failures: Record<string, number> = {};
  for (const t of ids) {
    const f = watch.failed.get(t);
    if (f !== undefined && !watch.succeededAt.has(t)) failures[f] = (failures[f] ?? 0) + 1;
  }
  // Nothing succeeded: no end to measure to (NaN, which no check passes).
  const seconds = succeeded === 0 ? NaN : (end - firstSubmit) / 1000;
  const cpu = {
    agent: after.agent.self - before.agent.self,
    agentChildren: after.agent.children - before.agent.children,
    launcher: launcherDelta(before.launcher, after.launcher, 'run'),
    launcherChildren: launcherDelta(before.launcher, after.launcher, 'children'),
    scheduler: after.scheduler - before.scheduler,
    api: after.api - before.api,
    etcd: after.etcd - before.etcd,
    bench: after.bench - before.bench,
  };
  const writesPerTask: Record<string, number> = {};
  for (const [k, n] of after.writes) {
    const d = n - (before.writes.get(k) ?? 0);
    if (d > 0) writesPerTask[k] = d / ids.length;
  }
  const txns = after.counters.txns - before.counters.txns;
  const ranges = after.counters.ranges - before.counters.ranges;
  const puts = after.counters.puts - before.counters.puts;
  return {
    phase,
    description,
    tasks: ids.length,
    succeeded,
    failures,
    submitSeconds: (submitEnd - firstSubmit) / 1000,
    seconds,
    tasksPerSecond: succeeded / seconds,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    cpu,
    agentCpuPerTaskMs: ((cpu.agent + cpu.agentChildren) * 1000) / ids.length,
    launcherCpuPerTaskMs: (cpu.launcher * 1000) / ids.length,
    supervisedCpuPerTaskMs: (cpu.launcherChildren * 1000) / ids.length,
    agentRssMaxBytes: supervision.agentRssMaxBytes,
    supervisors: supervision.supervisors,
    etcd: { txns, ranges, puts, perTask: (txns + ranges + puts) / ids.length },
    writesPerTask,
    segments: segments(ids, watch, submittedAt),
    scheduler: schedulerDelta(before.schedulerStats, after.schedulerStats),
  };
}

const mib = (b: number): string => (b / 1024 ** 2).toFixed(2);
const ms = (v: number, digits = 2): string => (Number.isFinite(v) ? `${v.toFixed(digits)} ms` : 'n/a');
const seg = (s: { p50: number; p99: number }): string => `${s.p50.toFixed(0)} / ${s.p99.toFixed(0)}`;

/**
 * The CPU the whole cell spent per task (every process of it on this host, the bench too), and
 * how many of the host's cores that is at the phase's rate: near the host's core count, the
 * rate is bound by CPU, whoever's processes wait for it.
 */
function cellCpuLine(r: AgentPhase): string {
  const c = r.cpu;
  const perTask = (seconds: number): number => (seconds * 1000) / Math.max(1, r.tasks);
  const launcher = r.launcherCpuPerTaskMs + r.supervisedCpuPerTaskMs;
  const total = perTask(c.agent + c.agentChildren + c.scheduler + c.api + c.etcd + c.bench) + launcher;
  return `cell CPU per task ${total.toFixed(1)} ms = agent ${perTask(c.agent + c.agentChildren).toFixed(1)} + launcher and its children ${launcher.toFixed(1)} + scheduler ${perTask(c.scheduler).toFixed(1)} + API ${perTask(c.api).toFixed(1)} + etcd ${perTask(c.etcd).toFixed(1)} + bench ${perTask(c.bench).toFixed(1)}: ${((total * r.tasksPerSecond) / 1000).toFixed(2)} cores at ${r.tasksPerSecond.toFixed(0)} tasks/s`;
}

/** One progress line of a phase. */
export function phaseLine(r: AgentPhase): string {
  const s = r.supervisors;
  const parts = [
    `  ${r.phase}: ${r.succeeded}/${r.tasks} succeeded in ${r.seconds.toFixed(1)} s = ${r.tasksPerSecond.toFixed(1)} tasks/s; submit→succeeded p50 ${r.latencyP50Ms.toFixed(0)} ms, p99 ${r.latencyP99Ms.toFixed(0)} ms; the last submit answered after ${r.submitSeconds.toFixed(1)} s`,
    cellCpuLine(r),
    `agent CPU ${r.cpu.agent.toFixed(1)} s + reaped children ${r.cpu.agentChildren.toFixed(1)} s = ${r.agentCpuPerTaskMs.toFixed(1)} ms/task, RSS max ${mib(r.agentRssMaxBytes)} MiB; launcher own ${ms(r.launcherCpuPerTaskMs, 3)}/task, reaped by it (supervisor + init + task) ${ms(r.supervisedCpuPerTaskMs)}/task; scheduler ${r.cpu.scheduler.toFixed(1)} s, API ${r.cpu.api.toFixed(1)} s, etcd ${r.cpu.etcd.toFixed(1)} s`,
    `where a task's time went (p50 / p99 ms): submit→placed ${seg(r.segments.submitToPlacedMs)}, placed→started ${seg(r.segments.placedToStartedMs)}, started→exited ${seg(r.segments.startedToExitedMs)}, exited→succeeded seen ${seg(r.segments.exitedToSucceededMs)}; a task holds its CPU ${r.segments.slotMeanMs.toFixed(0)} ms on average`,
    `CPU of the bench itself ${r.cpu.bench.toFixed(1)} s; keys written per task: ${Object.entries(r.writesPerTask).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`,
    `batch scheduler: ${r.scheduler.transactions} transactions, ${r.scheduler.claims} claims, busy ${(r.scheduler.busyness * 100).toFixed(0)}% of the phase`,
    `etcd ${r.etcd.perTask.toFixed(2)} requests/task (${r.etcd.txns} txn, ${r.etcd.ranges} range, ${r.etcd.puts} put); supervisors alive at most ${s.maxAlive} (seen: ${s.commands.join(', ') || 'none'})`,
  ];
  if (s.supervisor.sightings > 0) {
    const mem = (m: ProcessMemory): string => `RSS mean ${mib(m.rssMeanBytes)} MiB, PSS mean ${mib(m.pssMeanBytes)} MiB (${m.sightings} sightings)`;
    parts.push(
      `supervision per running task: RSS ${mib(s.perTask.rssBytes)} MiB, PSS ${mib(s.perTask.pssBytes)} MiB = supervisor ${mem(s.supervisor)} x ${s.supervisorsPerTask.toFixed(2)} + init ${s.init.sightings > 0 ? mem(s.init) : 'none'} x ${s.initsPerTask.toFixed(2)}; launcher (one per agent, not per task) RSS max ${mib(s.launcher.rssMaxBytes)} MiB, PSS max ${mib(s.launcher.pssMaxBytes)} MiB`,
    );
  }
  if (r.start !== undefined) {
    const t = r.start;
    parts.push(`CPU to start a task: ${ms(t.totalMs)} = agent ${ms(t.agentMsPerTask)} + launcher ${ms(t.launcherMsPerTask, 3)} (their CPU from the submit to all running / ${r.tasks} tasks) + supervisor ${ms(t.supervisorMsMean)} (mean of ${t.sampledSupervisors}) + init ${ms(t.initMsMean)} (mean of ${t.sampledInits}) (run time by then, schedstat)`);
  }
  if (Object.keys(r.failures).length > 0) parts.push(`FAILED: ${JSON.stringify(r.failures)}`);
  return parts.join('\n    ');
}

/** Removes the bench's cgroup parent in every hierarchy (v1: each controller; v2: the one tree), deepest first. */
async function removeCgroupParent(parent: string, root = '/sys/fs/cgroup'): Promise<void> {
  const remove = async (dir: string): Promise<void> => {
    let entries: string[];
    try {
      entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) await remove(join(dir, e));
    await rmdir(dir).catch(() => undefined);
  };
  await remove(join(root, parent));
  let controllers: string[] = [];
  try {
    controllers = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && basename(e.name) === e.name).map((e) => e.name);
  } catch {
    return;
  }
  for (const c of controllers) await remove(join(root, c, parent));
}
