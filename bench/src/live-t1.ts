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
 */
import { Progress, DEFAULT_NAMESPACE, KvCompactedError, isTerminal, jobId, type Cell, type CellMirror, type JobId } from '@omega/cell-state';
import type { SchedulerMetrics } from '@omega/scheduler-core';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { cpuSeconds, finalMetrics, waitFor, waitForAnnouncements, type ChildHandle, type EtcdCounters, type LiveCluster } from './live-cluster.js';

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
  readonly print: (line: string) => void;
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
  const cellName = `t1-k${k}`;
  const cell = cluster.cell(cellName);
  const agent = cluster.startAgents(cellName, options.machines, { cpu: '64', memory: '256Gi' });
  const mirror = cell.mirror();
  await mirror.start();
  const schedulers: ChildHandle[] = [];
  try {
    await waitFor(mirror, () => countAlive(mirror) >= options.machines, 120_000, `${options.machines} hollow machines alive`);
    for (let i = 0; i < k; i++) {
      schedulers.push(cluster.startScheduler('batch', cellName, `batch-${i}`, ['--t-job-ms', '0', '--t-task-ms', '0', '--seed', String(options.seed + i)]));
    }
    await waitForAnnouncements(mirror, schedulers);
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
        cell.createJob({
          id: jobId(id),
          spec: {
            name: 't1',
            namespace: DEFAULT_NAMESPACE,
            kind: 'batch',
            priority: 0,
            instances: options.tasksPerJob,
            commitMode: 'default',
            task: { command: ['hollow'], env: {}, resources: { cpuMillis: 100, memoryBytes: 64 * 1024 ** 2 }, runDurationMs: options.taskDurationMs, hollowFail: false, pidsLimit: 0 },
            constraints: [],
            restartPolicy: { kind: 'never', maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 },
          },
        }),
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
    await cell.kv.delete(cell.keys.root, { prefix: true });
    // The point and its ceiling wrote up to a million keys: compact their history now, not during the next point.
    // (Auto-compaction may have got there first: then there is nothing left to do.)
    await cluster.kv.compact((await cluster.kv.range({ key: cell.keys.root, limit: 1 })).revision).catch((error: unknown) => {
      if (!(error instanceof KvCompactedError)) throw error;
    });
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
  } finally {
    for (const h of schedulers) await cluster.stopProcess(h);
    await cluster.stopProcess(agent);
    await mirror.stop();
  }
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
  return points;
}

