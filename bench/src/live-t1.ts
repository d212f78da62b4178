/**
 * T1 (live): how fast the real system commits placements. For each K in the sweep, a fresh cell
 * on one etcd: a hollow agent process with M machines, K batch scheduler processes (no think
 * time), and 1,000-task jobs submitted at once straight into the cell (`Cell.createJob`). Measured:
 *
 * - committed placements per second: tasks placed / (last placement seen by the bench's mirror -
 *   first submission);
 * - conflict fraction (pooled over the schedulers), spurious resource-fit retries;
 * - commit latency p50/p99 (each scheduler's histogram, from its final metrics);
 * - submit-to-running p50/p99: every task's `startedAtMs` (the agent's report) - its job's
 *   submission, exact over all tasks;
 * - etcd transactions per second and bytes received, from etcd's `/metrics`;
 * - the raw etcd ceiling: K processes sending the same request shape (1,000 claims grouped over
 *   as many machines per commit as the schedulers' commits wrote, values of the sizes they wrote)
 *   with no scheduling logic, for a fixed time right after the scheduled run, on the same etcd.
 *
 * Then latency at half load (`halfLoad`, one point): on a fresh cell with the same K, machines
 * and schedulers, half the maximum placement rate (the sweep's at that K, or given) offered as a
 * steady stream of 100-task jobs for a fixed time, each job submitted when due (not in a burst).
 * Per task, from the task record after the window: submit-to-placed (`placedAtMs`, stamped by the
 * committing scheduler's commit) and submit-to-running (`startedAtMs`, the agent's report), both
 * against the job's `submittedAtMs`; and placed-to-running, to tell the schedulers' part from the
 * agent's. The bench holds no mirror during the window (it would be one more replica to feed).
 */
import { Progress, DEFAULT_NAMESPACE, KvCompactedError, isTerminal, jobId, type Cell, type CellMirror, type JobId } from '@omega/cell-state';
import type { SchedulerMetrics } from '@omega/scheduler-core';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { cpuSeconds, finalMetrics, setNice, waitFor, waitForAnnouncements, type ChildHandle, type EtcdCounters, type LiveCluster } from './live-cluster.js';

export interface T1Options {
  readonly machines: number;
  readonly tasks: number;
  readonly tasksPerJob: number;
  readonly schedulers: readonly number[];
  readonly seed: number;
  /** How long each raw ceiling measurement runs. */
  readonly rawSeconds: number;
  /** Hollow task duration: long enough to be seen running, short enough that claims get pruned. */
  readonly taskDurationMs: number;
  /**
   * The hollow agent's niceness (-20..19; 0 by default). Its process stands in for every
   * machine's agent, and each of those would have its own CPUs; on one host shared with the
   * schedulers and etcd it waits for their CPU before it reacts to a placement. Below 0 it runs
   * first when both want the CPU (root only; elsewhere the bench says it shares them), which
   * tells the agent's part of placed-to-running from the control plane's.
   */
  readonly agentNice: number;
  /** The half-load point; undefined: none. */
  readonly halfLoad?: HalfLoadOptions;
  readonly print: (line: string) => void;
}

export interface HalfLoadOptions {
  /** Batch schedulers (the sweep's point with this K gives the maximum rate unless `maxPlacementsPerSecond` is set). */
  readonly schedulers: number;
  /** How long the stream is offered. */
  readonly seconds: number;
  /** The maximum placement rate to take half of; undefined: the sweep's at `schedulers` (measured first if the sweep lacks it). */
  readonly maxPlacementsPerSecond?: number;
  /** Share of the maximum offered (0.5). */
  readonly share: number;
  readonly tasksPerJob: number;
}

/** Latency at a fraction of the maximum placement rate (see the file header). */
export interface HalfLoadPoint {
  readonly schedulers: number;
  readonly machines: number;
  readonly maxPlacementsPerSecond: number;
  readonly maxFrom: 'measured' | 'given';
  readonly share: number;
  /** Tasks per second offered (target) and submitted (what the bench managed). */
  readonly offeredPerSecond: number;
  readonly submittedPerSecond: number;
  readonly seconds: number;
  readonly tasksPerJob: number;
  readonly jobs: number;
  readonly tasks: number;
  /** Tasks never placed / never seen running by the end of the wait. */
  readonly unplaced: number;
  /** The first few jobs with a task never placed, with what the records say. */
  readonly unplacedJobs: readonly string[];
  readonly notRunning: number;
  readonly submitToPlaced: Percentiles;
  readonly submitToRunning: Percentiles;
  readonly placedToRunning: Percentiles;
  /** How late the bench's own submit calls returned (createJob round trip), which submit-to-* includes none of. */
  readonly submitCall: Percentiles;
  /** The schedulers' commit latency (worst p99) and their jobs' wait from submit to first attempt (worst p99). */
  readonly commitLatencyP50Ms: number;
  readonly commitLatencyP99Ms: number;
  readonly firstAttemptP99Ms: number;
  readonly transactions: number;
  readonly conflictFraction: number;
  readonly cpu: { readonly etcd: number; readonly agent: number; readonly schedulers: number; readonly bench: number; readonly available: number };
}

export interface Percentiles {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

export interface T1Point {
  readonly schedulers: number;
  readonly machines: number;
  readonly tasks: number;
  readonly seconds: number;
  readonly placementsPerSecond: number;
  readonly conflictFraction: number;
  readonly taskConflictFraction: number;
  readonly transactions: number;
  readonly spuriousRetries: number;
  /** Each scheduler's commit latency (request to reply). */
  readonly commitLatency: readonly { readonly scheduler: string; readonly p50Ms: number; readonly p99Ms: number; readonly count: number }[];
  readonly commitLatencyP50Ms: number;
  readonly commitLatencyP99Ms: number;
  readonly submitToRunning: Percentiles;
  readonly etcdTxnsPerSecond: number;
  readonly etcdReceivedBytesPerSecond: number;
  readonly etcdReceivedBytesPerPlacement: number;
  /** Mean size of the machine and task records written in the window (key + value). */
  readonly machineRecordBytes: number;
  readonly taskRecordBytes: number;
  /** Machine records written per 1,000 placements: the commits' shape, which the raw ceiling copies. */
  readonly machinesPerJob: number;
  readonly rawClaimsPerSecond: number;
  readonly rawCommitsPerSecond: number;
  readonly shareOfCeiling: number;
  /**
   * CPU seconds used during the placement window, per process group, and the machine's CPU
   * seconds available in it (cores x seconds): where the time went.
   */
  readonly cpu: { readonly etcd: number; readonly agent: number; readonly schedulers: number; readonly bench: number; readonly available: number };
  readonly schedulerMetrics: readonly { readonly name: string; readonly metrics: SchedulerMetrics | undefined; readonly exitCode: number | null }[];
  /** Latency at half this point's rate (on the point with the half-load's K only). */
  readonly halfLoad?: HalfLoadPoint;
}

const RAW_COMMITTER = fileURLToPath(new URL('./raw-committer.js', import.meta.url));

/** Exact percentiles of a list of values. */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50Ms: 0, p99Ms: 0, meanMs: 0, maxMs: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length, maxMs: sorted[sorted.length - 1] as number };
}

/** What the bench saw written in the placement window. */
interface WindowCounts {
  /** First versions of task keys: placements. */
  placed: number;
  lastAtMs: number;
  taskBytes: number;
  machineWrites: number;
  machineBytes: number;
}

/**
 * Counts first placements and machine writes as a raw watch on the cell's keys sees them: a task
 * key's first version is its placement. Nothing is decoded, so the bench's own CPU stays out of
 * the way of what it measures (a mirror here would be one more full replica on a 2-core machine).
 */
function placementCounter(cell: Cell, fromRevision: number): { counts: WindowCounts; placed: () => number; stop: () => Promise<void>; onProgress: (f: () => void) => void } {
  const counts: WindowCounts = { placed: 0, lastAtMs: 0, taskBytes: 0, machineWrites: 0, machineBytes: 0 };
  const tasks = `${cell.keys.root}tasks/`;
  const machines = `${cell.keys.root}machines/`;
  let progress: (() => void) | undefined;
  const handle = cell.kv.watch(cell.keys.root, fromRevision, {
    onBatch: (batch) => {
      for (const e of batch.events) {
        if (e.type !== 'put') continue;
        const bytes = e.kv.key.length + e.kv.value.length;
        if (e.kv.key.startsWith(machines)) {
          counts.machineWrites++;
          counts.machineBytes += bytes;
        } else if (e.kv.version === 1 && e.kv.key.startsWith(tasks)) {
          counts.placed++;
          counts.taskBytes += bytes;
          counts.lastAtMs = Date.now();
        }
      }
      progress?.();
    },
    onCompacted: () => undefined,
  });
  return { counts, placed: () => counts.placed, stop: () => handle.cancel(), onProgress: (f) => (progress = f) };
}

/** Resolves once `test()` holds, checking whenever `counter` reports progress. */
function until(counter: ReturnType<typeof placementCounter>, test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (test()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    counter.onProgress(() => {
      if (!test()) return;
      clearTimeout(timer);
      resolve();
    });
  });
}

async function rawCeiling(cluster: LiveCluster, k: number, options: T1Options, shape: { machines: number; machineBytes: number; taskBytes: number }, tag: string): Promise<{ claimsPerSecond: number; commitsPerSecond: number }> {
  const handles = Array.from({ length: k }, (_, i) =>
    cluster.startNode(`raw-${tag}-${i}`, [
      RAW_COMMITTER,
      '--etcd',
      cluster.etcd.clientUrl,
      '--seconds',
      String(options.rawSeconds),
      '--claims',
      String(options.tasksPerJob),
      '--machines',
      String(options.machines),
      '--groups',
      String(Math.min(options.machines, Math.max(1, Math.round(shape.machines)))),
      '--machine-bytes',
      String(Math.max(1, Math.round(shape.machineBytes))),
      '--task-bytes',
      String(Math.max(1, Math.round(shape.taskBytes))),
      '--prefix',
      `/bench-raw/${tag}-${i}/`,
      '--max-txn-ops',
      String(cluster.etcd.limits.maxTxnOps),
    ]),
  );
  let claims = 0;
  let commits = 0;
  for (const h of handles) {
    const code = await h.exited;
    const line = h.records[h.records.length - 1] as { commits?: number; claims?: number; seconds?: number } | undefined;
    if (code !== 0 || line?.claims === undefined || line.seconds === undefined || line.commits === undefined) {
      throw new Error(`raw committer ${h.name} failed (exit ${code}): ${h.stderrTail.slice(-5).join(' | ')}`);
    }
    claims += line.claims / line.seconds;
    commits += line.commits / line.seconds;
  }
  for (let i = 0; i < k; i++) await cluster.kv.delete(`/bench-raw/${tag}-${i}/`, { prefix: true });
  return { claimsPerSecond: claims, commitsPerSecond: commits };
}

function delta(a: EtcdCounters, b: EtcdCounters): EtcdCounters {
  return { txns: b.txns - a.txns, ranges: b.ranges - a.ranges, puts: b.puts - a.puts, receivedBytes: b.receivedBytes - a.receivedBytes, sentBytes: b.sentBytes - a.sentBytes, dbBytes: b.dbBytes };
}

/** One point of the sweep: K batch schedulers placing `options.tasks` tasks. */
export async function runT1Point(cluster: LiveCluster, k: number, options: T1Options): Promise<T1Point> {
  return withPointCell(cluster, `t1-k${k}`, k, options, async ({ cellName, cell, agent, mirror, schedulers }) => {
    const jobs = Math.ceil(options.tasks / options.tasksPerJob);
    const ids = new Set<string>(Array.from({ length: jobs }, (_, j) => `t1-${j}`));
    // The bench's mirror sleeps through the measured window (see placementCounter).
    const fromRevision = mirror.revision + 1;
    await mirror.stop();
    const counter = placementCounter(cell, fromRevision);
    const before = await cluster.etcdCounters();
    const cpuOf = (): { etcd: number; agent: number; schedulers: number; bench: number } => ({
      etcd: cpuSeconds(cluster.etcd.pid),
      agent: cpuSeconds(agent.child.pid),
      schedulers: schedulers.reduce((a, h) => a + cpuSeconds(h.child.pid), 0),
      bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    });
    const cpuBefore = cpuOf();
    const t0 = Date.now();
    await Promise.all(
      [...ids].map((id) =>
        cell.createJob({ id: jobId(id), spec: t1Spec(options.tasksPerJob, options.taskDurationMs) }),
      ),
    );
    const total = jobs * options.tasksPerJob;
    await until(counter, () => counter.placed() >= total, 600_000, `${total} placements`);
    const { counts } = counter;
    const seconds = (counts.lastAtMs - t0) / 1000;
    const cpuAfter = cpuOf();
    const after = await cluster.etcdCounters();
    await counter.stop();
    const observer = cell.mirror();
    await observer.start();
    options.print(`    K=${k}: ${total} placements in ${seconds.toFixed(2)} s = ${(total / seconds).toFixed(0)}/s; waiting for the agent's running reports`);
    const machineRecordBytes = counts.machineWrites > 0 ? counts.machineBytes / counts.machineWrites : 0;
    const taskRecordBytes = counts.placed > 0 ? counts.taskBytes / counts.placed : 0;
    const machinesPerJob = (counts.machineWrites * options.tasksPerJob) / Math.max(1, counts.placed);
    await waitFor(observer, () => allStarted(observer, ids), 300_000, 'every task reported running').catch((error: unknown) => options.print(`    ${String(error)}`));
    const snapshot = observer.snapshot();
    await observer.stop();
    const s2r: number[] = [];
    for (const id of ids) {
      const job = snapshot.job(id as JobId);
      if (job === undefined) continue;
      for (const t of snapshot.tasksOf(job.id)) if (t.startedAtMs > 0) s2r.push(t.startedAtMs - job.submittedAtMs);
    }
    const stopped = await Promise.all(schedulers.map(async (h) => ({ name: h.name, exitCode: await cluster.stopProcess(h), metrics: finalMetrics(h) })));
    await cluster.stopProcess(agent);
    const d = delta(before, after);
    const raw = await rawCeiling(cluster, k, options, { machines: machinesPerJob, machineBytes: machineRecordBytes, taskBytes: taskRecordBytes }, cellName);
    const ms = stopped.map((s) => s.metrics).filter((m): m is SchedulerMetrics => m !== undefined);
    const sum = (f: (m: SchedulerMetrics) => number): number => ms.reduce((a, m) => a + f(m), 0);
    const ok = sum((m) => m.transactionsOk);
    const failed = sum((m) => m.transactionsFailed);
    const latencies = stopped.map((s) => ({ scheduler: s.name, p50Ms: s.metrics?.commitLatency?.p50Ms ?? NaN, p99Ms: s.metrics?.commitLatency?.p99Ms ?? NaN, count: s.metrics?.commitLatency?.count ?? 0 }));
    const placementsPerSecond = total / seconds;
    return {
      schedulers: k,
      machines: options.machines,
      tasks: total,
      seconds,
      placementsPerSecond,
      conflictFraction: ok > 0 ? failed / ok : failed,
      taskConflictFraction: sum((m) => m.claimsAttempted) > 0 ? sum((m) => m.claimsConflicted) / sum((m) => m.claimsAttempted) : 0,
      transactions: ok + failed,
      spuriousRetries: sum((m) => m.spuriousRetries),
      commitLatency: latencies,
      commitLatencyP50Ms: weightedMedian(latencies),
      commitLatencyP99Ms: Math.max(...latencies.map((l) => l.p99Ms)),
      submitToRunning: percentiles(s2r),
      etcdTxnsPerSecond: d.txns / seconds,
      etcdReceivedBytesPerSecond: d.receivedBytes / seconds,
      etcdReceivedBytesPerPlacement: d.receivedBytes / total,
      machineRecordBytes,
      taskRecordBytes,
      machinesPerJob,
      rawClaimsPerSecond: raw.claimsPerSecond,
      rawCommitsPerSecond: raw.commitsPerSecond,
      shareOfCeiling: raw.claimsPerSecond > 0 ? placementsPerSecond / raw.claimsPerSecond : 0,
      cpu: {
        etcd: cpuAfter.etcd - cpuBefore.etcd,
        agent: cpuAfter.agent - cpuBefore.agent,
        schedulers: cpuAfter.schedulers - cpuBefore.schedulers,
        bench: cpuAfter.bench - cpuBefore.bench,
        available: os.availableParallelism() * seconds,
      },
      schedulerMetrics: stopped,
    };
  });
}

/** What a point runs on: a fresh cell, its hollow agent process, the bench's mirror and K batch schedulers. */
interface PointCell {
  readonly cellName: string;
  readonly cell: Cell;
  readonly agent: ChildHandle;
  readonly mirror: CellMirror;
  readonly schedulers: readonly ChildHandle[];
}

/**
 * Starts a point's cell (M hollow machines, all alive, and K batch schedulers with no think
 * time, all announced), runs `run` on it, deletes the cell's keys and compacts etcd's history
 * when it succeeds, and stops every process it started, whatever happens.
 */
async function withPointCell<T>(cluster: LiveCluster, cellName: string, k: number, options: T1Options, run: (point: PointCell) => Promise<T>): Promise<T> {
  const cell = cluster.cell(cellName);
  const agent = cluster.startAgents(cellName, options.machines, { cpu: '64', memory: '256Gi' });
  const niceProblem = setNice(agent, options.agentNice);
  if (niceProblem !== undefined) options.print(`    the hollow agent shares the CPUs equally: could not set its nice to ${options.agentNice} (${niceProblem})`);
  const mirror = cell.mirror();
  await mirror.start();
  const schedulers: ChildHandle[] = [];
  try {
    await waitFor(mirror, () => countAlive(mirror) >= options.machines, 120_000, `${options.machines} hollow machines alive`);
    for (let i = 0; i < k; i++) {
      schedulers.push(cluster.startScheduler('batch', cellName, `batch-${i}`, ['--t-job-ms', '0', '--t-task-ms', '0', '--seed', String(options.seed + i)]));
    }
    await waitForAnnouncements(mirror, schedulers);
    const result = await run({ cellName, cell, agent, mirror, schedulers });
    await cell.kv.delete(cell.keys.root, { prefix: true });
    // A point (and T1's ceiling) writes up to a million keys: compact their history now, not during
    // the next point. (Auto-compaction may have got there first: then there is nothing left to do.)
    await cluster.kv.compact((await cluster.kv.range({ key: cell.keys.root, limit: 1 })).revision).catch((error: unknown) => {
      if (!(error instanceof KvCompactedError)) throw error;
    });
    return result;
  } finally {
    for (const h of schedulers) await cluster.stopProcess(h);
    await cluster.stopProcess(agent);
    await mirror.stop();
  }
}

/** A job spec of the T1 shape (hollow tasks, 100 millicores each). */
function t1Spec(instances: number, taskDurationMs: number) {
  return {
    name: 't1',
    namespace: DEFAULT_NAMESPACE,
    kind: 'batch' as const,
    priority: 0,
    instances,
    commitMode: 'default' as const,
    task: { command: ['hollow'], env: {}, resources: { cpuMillis: 100, memoryBytes: 64 * 1024 ** 2 }, runDurationMs: taskDurationMs, hollowFail: false, pidsLimit: 0 },
    constraints: [],
    restartPolicy: { kind: 'never' as const, maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 },
  };
}

/**
 * The half-load point: `share` of `maxPerSecond` offered as a steady stream of
 * `tasksPerJob`-task jobs for `seconds` on a fresh cell with K schedulers (see the file header).
 */
export async function runHalfLoadPoint(cluster: LiveCluster, options: T1Options, half: HalfLoadOptions, maxPerSecond: number, maxFrom: 'measured' | 'given'): Promise<HalfLoadPoint> {
  const k = half.schedulers;
  return withPointCell(cluster, `t1-half-k${k}`, k, options, async ({ cellName, cell, agent, mirror, schedulers }) => {
    await mirror.stop();
    const offeredPerSecond = maxPerSecond * half.share;
    const jobsPerSecond = offeredPerSecond / half.tasksPerJob;
    const total = Math.max(1, Math.round(jobsPerSecond * half.seconds));
    const cpuOf = (): { etcd: number; agent: number; schedulers: number; bench: number } => ({
      etcd: cpuSeconds(cluster.etcd.pid),
      agent: cpuSeconds(agent.child.pid),
      schedulers: schedulers.reduce((a, h) => a + cpuSeconds(h.child.pid), 0),
      bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    });
    const cpuBefore = cpuOf();
    const ids: JobId[] = [];
    const calls: number[] = [];
    const inFlight = new Set<Promise<void>>();
    const t0 = Date.now();
    // Each job goes when it is due (t0 + j / jobsPerSecond), not before: a steady stream. The
    // timer wakes every few ms; all jobs due by then go at once (at 50 jobs/s: one or two).
    for (let j = 0; j < total; ) {
      const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * jobsPerSecond) + 1);
      for (; j < due; j++) {
        const id = jobId(`half-${j}`);
        ids.push(id);
        const start = Date.now();
        const call: Promise<void> = cell.createJob({ id, spec: t1Spec(half.tasksPerJob, options.taskDurationMs) }).then(() => {
          calls.push(Date.now() - start);
          inFlight.delete(call);
        });
        inFlight.add(call);
      }
      if (j < total) await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(5, (j / jobsPerSecond) * 1000 - (Date.now() - t0)))));
    }
    await Promise.all(inFlight);
    const submitSeconds = (Date.now() - t0) / 1000;
    const cpuAfter = cpuOf();
    const observer = cell.mirror();
    await observer.start();
    const tasks = total * half.tasksPerJob;
    await waitFor(observer, () => allStarted(observer, new Set(ids)), 120_000, 'every half-load task reported running').catch((error: unknown) => options.print(`    ${String(error)}`));
    const snapshot = observer.snapshot();
    await observer.stop();
    const s2p: number[] = [];
    const s2r: number[] = [];
    const p2r: number[] = [];
    const unplacedJobs: string[] = [];
    for (const id of ids) {
      const job = snapshot.job(id);
      if (job === undefined) {
        unplacedJobs.push(`${id} (no job record)`);
        continue;
      }
      const states = new Map<string, number>();
      let seen = 0;
      for (const t of snapshot.tasksOf(id)) {
        if (t.placedAtMs === 0) states.set(t.state, (states.get(t.state) ?? 0) + 1);
        if (t.placedAtMs > 0) s2p.push(t.placedAtMs - job.submittedAtMs);
        if (t.startedAtMs > 0) s2r.push(t.startedAtMs - job.submittedAtMs);
        if (t.startedAtMs > 0 && t.placedAtMs > 0) p2r.push(t.startedAtMs - t.placedAtMs);
        seen++;
      }
      if (states.size > 0 || seen < half.tasksPerJob) {
        const unplaced = [...states].map(([state, n]) => `${n} ${state}`).join(', ');
        unplacedJobs.push(`${id} (desired ${job.desired}, ${seen} task records${unplaced === '' ? '' : `, never placed: ${unplaced}`})`);
      }
    }
    const stopped = await Promise.all(schedulers.map(async (h) => ({ exitCode: await cluster.stopProcess(h), metrics: finalMetrics(h) })));
    await cluster.stopProcess(agent);
    const ms = stopped.map((x) => x.metrics).filter((m): m is SchedulerMetrics => m !== undefined);
    const sum = (f: (m: SchedulerMetrics) => number): number => ms.reduce((a, m) => a + f(m), 0);
    const worst = (f: (m: SchedulerMetrics) => number | undefined): number => Math.max(...ms.map((m) => f(m) ?? NaN));
    const ok = sum((m) => m.transactionsOk);
    const failed = sum((m) => m.transactionsFailed);
    return {
      schedulers: k,
      machines: options.machines,
      maxPlacementsPerSecond: maxPerSecond,
      maxFrom,
      share: half.share,
      offeredPerSecond,
      submittedPerSecond: tasks / submitSeconds,
      seconds: submitSeconds,
      tasksPerJob: half.tasksPerJob,
      jobs: total,
      tasks,
      unplaced: tasks - s2p.length,
      unplacedJobs: unplacedJobs.slice(0, 5),
      notRunning: tasks - s2r.length,
      submitToPlaced: percentiles(s2p),
      submitToRunning: percentiles(s2r),
      placedToRunning: percentiles(p2r),
      submitCall: percentiles(calls),
      commitLatencyP50Ms: weightedMedian(ms.map((m) => ({ p50Ms: m.commitLatency?.p50Ms ?? NaN, count: m.commitLatency?.count ?? 0 }))),
      commitLatencyP99Ms: worst((m) => m.commitLatency?.p99Ms),
      firstAttemptP99Ms: worst((m) => m.waitFirstAttempt?.p99Ms),
      transactions: ok + failed,
      conflictFraction: ok > 0 ? failed / ok : failed,
      cpu: {
        etcd: cpuAfter.etcd - cpuBefore.etcd,
        agent: cpuAfter.agent - cpuBefore.agent,
        schedulers: cpuAfter.schedulers - cpuBefore.schedulers,
        bench: cpuAfter.bench - cpuBefore.bench,
        available: os.availableParallelism() * submitSeconds,
      },
    };
  });
}

/** The schedulers' p50s weighted by their commit counts (their histograms are not merged). */
function weightedMedian(latencies: readonly { p50Ms: number; count: number }[]): number {
  const n = latencies.reduce((a, l) => a + l.count, 0);
  return n === 0 ? NaN : latencies.reduce((a, l) => a + l.p50Ms * l.count, 0) / n;
}

function countAlive(mirror: CellMirror): number {
  let n = 0;
  for (const _ of mirror.snapshot().aliveMachines()) n++;
  return n;
}

function allStarted(mirror: CellMirror, ids: ReadonlySet<string>): boolean {
  const snapshot = mirror.snapshot();
  for (const id of ids) {
    for (const t of snapshot.tasksOf(id as JobId)) if (t.startedAtMs === 0 && !isTerminal(t.state)) return false;
  }
  return true;
}

/** The whole T1 sweep. */
export async function runT1(cluster: LiveCluster, options: T1Options): Promise<T1Point[]> {
  const points: T1Point[] = [];
  const progress = new Progress(options.schedulers.length);
  for (const k of options.schedulers) {
    options.print(`  ${progress.starting()} T1 with ${k} batch scheduler${k === 1 ? '' : 's'} on ${options.machines} hollow machines, ${options.tasks} tasks`);
    const p = await runT1Point(cluster, k, options);
    progress.step();
    options.print(
      `    K=${k}: CPU in the window: etcd ${p.cpu.etcd.toFixed(1)} s, agent ${p.cpu.agent.toFixed(1)} s, schedulers ${p.cpu.schedulers.toFixed(1)} s, bench ${p.cpu.bench.toFixed(1)} s of ${p.cpu.available.toFixed(1)} s available`,
    );
    options.print(
      `    K=${k}: ${p.placementsPerSecond.toFixed(0)} placements/s, raw etcd ceiling ${p.rawClaimsPerSecond.toFixed(0)}/s (${(p.shareOfCeiling * 100).toFixed(0)}%), conflict fraction ${p.conflictFraction.toFixed(4)}, commit p50/p99 ${p.commitLatencyP50Ms.toFixed(0)}/${p.commitLatencyP99Ms.toFixed(0)} ms, submit-to-running p50/p99 ${(p.submitToRunning.p50Ms / 1000).toFixed(2)}/${(p.submitToRunning.p99Ms / 1000).toFixed(2)} s`,
    );
    points.push(p);
  }
  const half = options.halfLoad;
  if (half === undefined) return points;
  let at = points.findIndex((p) => p.schedulers === half.schedulers);
  if (half.maxPlacementsPerSecond === undefined && at === -1) {
    options.print(`  measuring the maximum rate with ${half.schedulers} batch schedulers for the half-load point`);
    points.push(await runT1Point(cluster, half.schedulers, options));
    at = points.length - 1;
  }
  const max = half.maxPlacementsPerSecond ?? (points[at] as T1Point).placementsPerSecond;
  const from = half.maxPlacementsPerSecond === undefined ? 'measured' : 'given';
  options.print(
    `  latency at ${(half.share * 100).toFixed(0)}% load: ${(max * half.share).toFixed(0)} tasks/s (of ${from === 'measured' ? 'the measured' : 'a given'} ${max.toFixed(0)}/s) as ${half.tasksPerJob}-task jobs for ${half.seconds} s, ${half.schedulers} batch schedulers`,
  );
  const h = await runHalfLoadPoint(cluster, options, half, max, from);
  options.print(
    `    half load: ${h.tasks} tasks in ${h.jobs} jobs submitted at ${h.submittedPerSecond.toFixed(0)}/s (offered ${h.offeredPerSecond.toFixed(0)}/s); submit-to-placed p50/p99 ${h.submitToPlaced.p50Ms.toFixed(0)}/${h.submitToPlaced.p99Ms.toFixed(0)} ms, submit-to-running p50/p99 ${h.submitToRunning.p50Ms.toFixed(0)}/${h.submitToRunning.p99Ms.toFixed(0)} ms, placed-to-running p50/p99 ${h.placedToRunning.p50Ms.toFixed(0)}/${h.placedToRunning.p99Ms.toFixed(0)} ms`,
  );
  options.print(
    `    half load: commit p50/p99 ${h.commitLatencyP50Ms.toFixed(0)}/${h.commitLatencyP99Ms.toFixed(0)} ms, submit-to-first-attempt p99 ${h.firstAttemptP99Ms.toFixed(0)} ms, ${h.transactions} transactions, conflict fraction ${h.conflictFraction.toFixed(4)}, unplaced ${h.unplaced}, not running ${h.notRunning}; submit call p99 ${h.submitCall.p99Ms.toFixed(0)} ms; CPU etcd ${h.cpu.etcd.toFixed(1)} s, agent ${h.cpu.agent.toFixed(1)} s, schedulers ${h.cpu.schedulers.toFixed(1)} s, bench ${h.cpu.bench.toFixed(1)} s of ${h.cpu.available.toFixed(1)} s`,
  );
  for (const line of h.unplacedJobs) options.print(`    half load: not placed: ${line}`);
  // Kept on the sweep's point with the same K (or, with a given rate and no such point, the last one: the point names its own K).
  const on = at === -1 ? points.length - 1 : at;
  if (on >= 0) points[on] = { ...(points[on] as T1Point), halfLoad: h };
  return points;
}

