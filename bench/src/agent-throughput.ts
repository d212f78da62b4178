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
 * Three phases, one after the other on the same cell:
 *
 * - `jobs`: J one-task jobs of `/bin/true` (1 CPU each) submitted by C parallel clients;
 * - `instances`: one job of I instances of `/bin/true` (1 CPU each);
 * - `hold`: one job of H instances of `sleep S`, to look at the supervisors while they hold
 *   running tasks.
 *
 * Throughput is tasks / (last task seen `succeeded` in etcd - first submit). Latency is per task,
 * from its job's submit call to the moment the bench's mirror saw the task `succeeded`.
 *
 * The bench knows the supervisor only as processes: a supervisor is a process below the agent
 * in the process tree, or one whose command line names the agent's data directory (one that
 * detached itself from the tree), that is not in a task's cgroup (the task itself) and not a
 * zombie. So any
 * supervisor the agent spawns (a Node one, a small C one) is measured the same way.
 *
 * CPU: from /proc/<pid>/stat. The agent's own utime + stime over a phase; its children's
 * (cutime + cstime: the supervisors it spawned and reaped, and what they reaped, the task
 * processes); and in the hold phase each live supervisor's own utime + stime once all tasks
 * run (a supervisor that only waits since then has spent what its start cost).
 */
import { chmod, mkdtemp, readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { freePort, type CellMirror, type JobId, type MachineId, type Task, type TaskId } from '@omega/cell-state';
import type { WireJobSpec } from '@omega/api/client';
import { API_MAIN } from './churn.js';
import { AGENT_MAIN, finalMetrics, type ChildHandle, type EtcdCounters, type LiveCluster } from './live-cluster.js';
import { descendants, percentile, procCgroups, procCpu, processTable, smapsRollup, statusBytes, type ProcEntry } from './proc-sample.js';
import { SubmitClient } from './submit-client.js';

export interface AgentOptions {
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

export type AgentPhaseName = 'jobs' | 'instances' | 'hold';

/** Supervisors seen by the sampler during a phase. */
export interface SupervisorSample {
  /** Most supervisor processes alive at one sample. */
  readonly maxAlive: number;
  /** Per supervisor process, over every sighting with a readable smaps_rollup (bytes). */
  readonly rssP50Bytes: number;
  readonly rssMaxBytes: number;
  readonly pssP50Bytes: number;
  readonly pssMeanBytes: number;
  /** Supervisor processes per running task, at the sample with the most tasks. */
  readonly processesPerTask: number;
  /** Commands seen (comm), e.g. `node`, `omega-supervise`. */
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
  readonly cpu: { readonly agent: number; readonly agentChildren: number; readonly scheduler: number; readonly api: number; readonly etcd: number; readonly bench: number };
  /** (agent + its reaped children) CPU per task, ms. */
  readonly agentCpuPerTaskMs: number;
  readonly agentRssMaxBytes: number;
  readonly supervisors: SupervisorSample;
  /** etcd requests over the phase (everyone's) and per task. */
  readonly etcd: { readonly txns: number; readonly ranges: number; readonly puts: number; readonly perTask: number };
  /** Keys written per task in the phase, by `kind put|delete` (from the watch). */
  readonly writesPerTask: Readonly<Record<string, number>>;
  readonly segments: TaskSegments;
  /** The batch scheduler over the phase, from its published stats: transactions, claims, and busy time / elapsed (NaN when unknown). */
  readonly scheduler: { readonly transactions: number; readonly claims: number; readonly busyness: number };
  /** Hold only: CPU to start one task, ms: the agent's own share (submit to all running / tasks) and a supervisor's own. */
  readonly start?: { readonly agentMsPerTask: number; readonly supervisorMsP50: number; readonly supervisorMsMean: number; readonly totalMs: number; readonly sampledSupervisors: number };
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

/** The supervisors and tasks of the agent now (see the file header). */
function agentProcesses(p: Processes): { supervisors: ProcEntry[]; tasks: ProcEntry[] } {
  const agentPid = p.agent.child.pid;
  if (agentPid === undefined) return { supervisors: [], tasks: [] };
  const table = processTable();
  const found = new Map<number, ProcEntry>();
  for (const d of descendants(table, agentPid)) found.set(d.pid, d);
  for (const e of table) {
    if (e.pid !== agentPid && e.cmdline.includes(p.dataDir) && !found.has(e.pid)) {
      found.set(e.pid, e);
      for (const d of descendants(table, e.pid)) found.set(d.pid, d);
    }
  }
  const supervisors: ProcEntry[] = [];
  const tasks: ProcEntry[] = [];
  for (const e of found.values()) {
    // A zombie (a task or supervisor that exited and is not reaped yet) holds no memory and has no cgroup left to tell.
    if (e.state === 'Z') continue;
    (procCgroups(e.pid).includes(`/${p.cgroupParent}/`) ? tasks : supervisors).push(e);
  }
  return { supervisors, tasks };
}

/** Samples the agent and its supervisors every `everyMs` until stopped. */
class Sampler {
  private timer: NodeJS.Timeout | undefined;
  private maxAlive = 0;
  private agentRssMax = 0;
  private best = { tasks: 0, supervisors: 0 };
  private readonly rss: number[] = [];
  private readonly pss: number[] = [];
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

  /** One sample now; returns the supervisors seen. */
  sample(): ProcEntry[] {
    this.agentRssMax = Math.max(this.agentRssMax, statusBytes(this.p.agent.child.pid, 'VmRSS') || 0);
    const { supervisors, tasks } = agentProcesses(this.p);
    this.maxAlive = Math.max(this.maxAlive, supervisors.length);
    if (tasks.length > this.best.tasks) this.best = { tasks: tasks.length, supervisors: supervisors.length };
    for (const s of supervisors) {
      this.commands.add(s.comm);
      if (!this.withMemory) continue;
      const m = smapsRollup(s.pid);
      if (Number.isFinite(m.rss) && Number.isFinite(m.pss)) {
        this.rss.push(m.rss);
        this.pss.push(m.pss);
      }
    }
    return supervisors;
  }

  stop(): { supervisors: SupervisorSample; agentRssMaxBytes: number } {
    if (this.timer !== undefined) clearTimeout(this.timer);
    const mean = this.pss.length === 0 ? NaN : this.pss.reduce((a, b) => a + b, 0) / this.pss.length;
    return {
      agentRssMaxBytes: this.agentRssMax,
      supervisors: {
        maxAlive: this.maxAlive,
        rssP50Bytes: percentile(this.rss, 0.5),
        rssMaxBytes: this.rss.length === 0 ? NaN : Math.max(...this.rss),
        pssP50Bytes: percentile(this.pss, 0.5),
        pssMeanBytes: mean,
        processesPerTask: this.best.tasks === 0 ? NaN : this.best.supervisors / this.best.tasks,
        commands: [...this.commands].sort(),
      },
    };
  }
}

interface CpuMark {
  readonly at: number;
  readonly bench: number;
  readonly writes: ReadonlyMap<string, number>;
  /** The batch scheduler's published stats (its record in the cell, refreshed every second). */
  readonly schedulerStats: { readonly transactionsOk: number; readonly transactionsFailed: number; readonly claimsCommitted: number; readonly busyMs: number; readonly elapsedMs: number } | undefined;
  readonly agent: { self: number; children: number };
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
export async function runAgentThroughput(cluster: LiveCluster, options: AgentOptions): Promise<AgentRun> {
  const { print } = options;
  if (options.holdTasks > options.cpus) throw new Error(`holdTasks (${options.holdTasks}) must be at most the agent's CPUs (${options.cpus}): every sleep task must run at once`);
  const cell = cluster.cell(CELL);
  const dataDir = await mkdtemp(join(tmpdir(), 'omega-bench-agent-'));
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

    // Phase jobs: J one-task jobs from C clients.
    {
      const spec = trueSpec('true', 1, options.taskMemoryBytes, ['/bin/true']);
      const submittedAt = new Map<JobId, number>();
      let next = 0;
      const sampler = new Sampler(p, 1000, false);
      const before = await mark(cluster, p, watch);
      sampler.start();
      const submitter = async (client: SubmitClient): Promise<void> => {
        while (next < options.jobs) {
          const i = next++;
          const at = Date.now();
          const id = (await client.submit(spec, `bench-${runId}-jobs-${i}`)) as JobId;
          submittedAt.set(id, at);
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
      const ids = (): TaskId[] => [...submittedAt.keys()].map((j) => `${j}/0` as TaskId);
      const finished = (): number => ids().filter((t) => watch.succeededAt.has(t) || watch.failed.has(t)).length;
      await until(
        p,
        () => {
          if (submitFailure !== undefined) throw new Error(`a submit failed: ${String(submitFailure)}`);
          return submittedAt.size === options.jobs && finished() === options.jobs;
        },
        finished,
        'phase jobs',
      );
      const submitEnd = await submitDone;
      const supervision = sampler.stop();
      const after = await mark(cluster, p, watch);
      const latencies = [...submittedAt].flatMap(([job, at]) => {
        const done = watch.succeededAt.get(`${job}/0` as TaskId);
        return done === undefined ? [] : [done - at];
      });
      const end = Math.max(...ids().map((t) => watch.succeededAt.get(t) ?? 0));
      const jobOf = (t: TaskId): JobId => t.slice(0, t.lastIndexOf('/')) as JobId;
      phases.push(phaseResult('jobs', `${options.jobs} one-task jobs of /bin/true (1 CPU, ${options.taskMemoryBytes / 1024 ** 2} MiB), submitted by ${options.clients} parallel gRPC clients`, ids(), watch, before, after, before.at, submitEnd, end, latencies, supervision, (t) => submittedAt.get(jobOf(t)) ?? NaN));
      print(phaseLine(phases[phases.length - 1] as AgentPhase));
    }

    // Phase instances: one job of I instances.
    {
      const sampler = new Sampler(p, 1000, false);
      const before = await mark(cluster, p, watch);
      sampler.start();
      const at = Date.now();
      const job = (await (clients[0] as SubmitClient).submit(trueSpec('true-many', options.instances, options.taskMemoryBytes, ['/bin/true']), `bench-${runId}-instances`)) as JobId;
      const submitEnd = Date.now();
      const ids = Array.from({ length: options.instances }, (_, i) => `${job}/${i}` as TaskId);
      const finished = (): number => ids.filter((t) => watch.succeededAt.has(t) || watch.failed.has(t)).length;
      await until(p, () => finished() === ids.length, finished, 'phase instances');
      const supervision = sampler.stop();
      const after = await mark(cluster, p, watch);
      const latencies = ids.flatMap((t) => {
        const done = watch.succeededAt.get(t);
        return done === undefined ? [] : [done - at];
      });
      const end = Math.max(...ids.map((t) => watch.succeededAt.get(t) ?? 0));
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
      const startSeconds = (Date.now() - at) / 1000;
      // Everything started; each supervisor has spent what its start cost (it only waits now).
      const supervisors = sampler.sample();
      const supervisorCpuMs = supervisors.map((s) => procCpu(s.pid).self * 1000).filter((v) => Number.isFinite(v));
      const finished = (): number => ids.filter((t) => watch.succeededAt.has(t) || watch.failed.has(t)).length;
      await until(p, () => finished() === ids.length, finished, 'phase hold');
      const supervision = sampler.stop();
      const after = await mark(cluster, p, watch);
      const latencies = ids.flatMap((t) => {
        const done = watch.succeededAt.get(t);
        return done === undefined ? [] : [done - at];
      });
      const end = Math.max(...ids.map((t) => watch.succeededAt.get(t) ?? 0));
      const agentMsPerTask = ((allRunning - before.agent.self) * 1000) / ids.length;
      // A supervisor's own CPU by the time every task ran, per supervisor *process group of a task*:
      // scaled by processes per task so a design with two processes per task counts both.
      const perProcess = supervisorCpuMs.length === 0 ? NaN : supervisorCpuMs.reduce((a, b) => a + b, 0) / supervisorCpuMs.length;
      const perTask = supervisorCpuMs.length === 0 ? NaN : supervisorCpuMs.reduce((a, b) => a + b, 0) / ids.length;
      const base = phaseResult('hold', `one job of ${options.holdTasks} instances of sleep ${options.holdSeconds} (1 CPU each: all at once on ${options.cpus} CPUs); all running after ${startSeconds.toFixed(1)} s`, ids, watch, before, after, at, submitEnd, end, latencies, supervision, () => at);
      phases.push({
        ...base,
        start: { agentMsPerTask, supervisorMsP50: percentile(supervisorCpuMs, 0.5), supervisorMsMean: perProcess, totalMs: agentMsPerTask + perTask, sampledSupervisors: supervisorCpuMs.length },
      });
      print(phaseLine(phases[phases.length - 1] as AgentPhase));
    }
    const agentPeakRssBytes = statusBytes(agent.child.pid, 'VmHWM');
    await cluster.stopProcess(scheduler);
    const latency = finalMetrics(scheduler)?.commitLatency;
    const commitLatency = { count: latency?.count ?? NaN, p50Ms: latency?.p50Ms ?? NaN, p99Ms: latency?.p99Ms ?? NaN };
    print(`  batch scheduler: ${commitLatency.count} commits, commit latency p50 ${commitLatency.p50Ms.toFixed(0)} ms, p99 ${commitLatency.p99Ms.toFixed(0)} ms`);
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
  const seconds = (end - firstSubmit) / 1000;
  const cpu = {
    agent: after.agent.self - before.agent.self,
    agentChildren: after.agent.children - before.agent.children,
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
    agentRssMaxBytes: supervision.agentRssMaxBytes,
    supervisors: supervision.supervisors,
    etcd: { txns, ranges, puts, perTask: (txns + ranges + puts) / ids.length },
    writesPerTask,
    segments: segments(ids, watch, submittedAt),
    scheduler: schedulerDelta(before.schedulerStats, after.schedulerStats),
  };
}

const mib = (b: number): string => (b / 1024 ** 2).toFixed(1);
const seg = (s: { p50: number; p99: number }): string => `${s.p50.toFixed(0)} / ${s.p99.toFixed(0)}`;

/** One progress line of a phase. */
export function phaseLine(r: AgentPhase): string {
  const s = r.supervisors;
  const parts = [
    `  ${r.phase}: ${r.succeeded}/${r.tasks} succeeded in ${r.seconds.toFixed(1)} s = ${r.tasksPerSecond.toFixed(1)} tasks/s; submit→succeeded p50 ${r.latencyP50Ms.toFixed(0)} ms, p99 ${r.latencyP99Ms.toFixed(0)} ms`,
    `agent CPU ${r.cpu.agent.toFixed(1)} s + reaped children ${r.cpu.agentChildren.toFixed(1)} s = ${r.agentCpuPerTaskMs.toFixed(1)} ms/task, RSS max ${mib(r.agentRssMaxBytes)} MiB; scheduler ${r.cpu.scheduler.toFixed(1)} s, API ${r.cpu.api.toFixed(1)} s, etcd ${r.cpu.etcd.toFixed(1)} s`,
    `where a task's time went (p50 / p99 ms): submit→placed ${seg(r.segments.submitToPlacedMs)}, placed→started ${seg(r.segments.placedToStartedMs)}, started→exited ${seg(r.segments.startedToExitedMs)}, exited→succeeded seen ${seg(r.segments.exitedToSucceededMs)}; a task holds its CPU ${r.segments.slotMeanMs.toFixed(0)} ms on average`,
    `CPU of the bench itself ${r.cpu.bench.toFixed(1)} s; keys written per task: ${Object.entries(r.writesPerTask).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`,
    `batch scheduler: ${r.scheduler.transactions} transactions, ${r.scheduler.claims} claims, busy ${(r.scheduler.busyness * 100).toFixed(0)}% of the phase`,
    `etcd ${r.etcd.perTask.toFixed(2)} requests/task (${r.etcd.txns} txn, ${r.etcd.ranges} range, ${r.etcd.puts} put); supervisors alive at most ${s.maxAlive} (${s.commands.join(', ') || 'none seen'})`,
  ];
  if (Number.isFinite(s.pssMeanBytes)) parts.push(`per supervisor RSS p50 ${mib(s.rssP50Bytes)} MiB, PSS mean ${mib(s.pssMeanBytes)} MiB, ${s.processesPerTask.toFixed(2)} processes/task`);
  if (r.start !== undefined) parts.push(`CPU to start a task: agent ${r.start.agentMsPerTask.toFixed(1)} ms + supervisor ${r.start.supervisorMsMean.toFixed(1)} ms (mean of ${r.start.sampledSupervisors}) = ${r.start.totalMs.toFixed(1)} ms`);
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
