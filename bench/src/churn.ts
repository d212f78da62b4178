/**
 * Churn (live): does a cell's state stay bounded when jobs keep coming and going? A whole cell on
 * this machine, every process the real entry point from `dist/`:
 *
 * ```
 *   bench ── 4 gRPC clients ──► API server process ──► etcd ◄── batch scheduler process
 *     │  (SubmitJob, a window of jobs in flight)          ▲  ◄── service scheduler process
 *     └─ CellMirror (counts jobs done), /proc RSS, etcd /metrics ── hollow agent (M machines)
 * ```
 *
 * N short batch jobs (one 50 ms hollow task each, a retention of a few seconds both in the job
 * and as the schedulers' `--job-retention`) go through the cell, at most `window` unfinished at
 * a time. Every `sampleEvery` jobs done, a sample: each process's RSS (`VmRSS` of
 * /proc/<pid>/status), etcd's database size in use and in total (`/metrics`), and the keys of the
 * cell by kind. A series has levelled off when the mean of its last third of samples is within
 * `LEVEL_TOLERANCE` (or an absolute slack) of the mean of its middle third.
 *
 * History: etcd keeps every revision until compacted. The cell's etcd runs revision
 * auto-compaction (cell-state's launcher), but etcd 3.4's revision compactor acts only every
 * 5 minutes; so that a run of a few minutes measures live state rather than the compaction
 * period, the bench also compacts to `retainRevisions` behind the head at every sample (what
 * the auto-compactor does, more often). etcd's file never shrinks without a defragmentation:
 * the "in use" size is the one that must level off.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatDuration, freePort, type CellMirror, type JobId } from '@omega/cell-state';
import type { WireJobSpec } from '@omega/api/client';
import { SubmitClient } from './submit-client.js';
import { finalMetrics, waitForAnnouncements, type ChildHandle, type LiveCluster } from './live-cluster.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const API_MAIN = `${ROOT}packages/api/dist/main.js`;

export interface ChurnOptions {
  readonly jobs: number;
  readonly machines: number;
  /** Retention of every job (in its spec and as the schedulers' default). */
  readonly retentionMs: number;
  /** Parallel gRPC clients submitting. */
  readonly clients: number;
  /** Most jobs submitted and not yet finished at once. */
  readonly window: number;
  /** A sample every this many jobs done. */
  readonly sampleEvery: number;
  /** Hollow run time of each job's one task. */
  readonly taskDurationMs: number;
  /** History kept by the bench's compaction at every sample. */
  readonly retainRevisions: number;
  readonly print: (line: string) => void;
}

/** The processes whose memory is sampled. */
export const CHURN_PROCESSES = ['etcd', 'api', 'batch', 'service', 'agent'] as const;
export type ChurnProcess = (typeof CHURN_PROCESSES)[number];

export interface ChurnSample {
  readonly jobsSubmitted: number;
  readonly jobsDone: number;
  readonly elapsedS: number;
  /** Resident set size of each process, in bytes (NaN when it could not be read). */
  readonly rssBytes: Readonly<Record<ChurnProcess, number>>;
  /** etcd_mvcc_db_total_size_in_use_in_bytes. */
  readonly etcdDbInUseBytes: number;
  /** etcd_debugging_mvcc_db_total_size_in_bytes (the file; shrinks only with a defragmentation). */
  readonly etcdDbTotalBytes: number;
  /** etcd_debugging_mvcc_keys_total: keys in the store. */
  readonly etcdKeys: number;
  /** Keys of the cell by kind (jobs, tasks, status, owners, requests, machines, ...). */
  readonly keys: Readonly<Record<string, number>>;
  readonly totalKeys: number;
}

export interface ChurnRun {
  readonly samples: readonly ChurnSample[];
  readonly jobsPerSecond: number;
  /** Deletions counted by the schedulers' janitors (their final metrics). */
  readonly jobsDeleted: number;
  readonly requestsDeleted: number;
  readonly wallSeconds: number;
  /** Claims on machine records whose task record is gone, at the end (must be 0: they would count as live). */
  readonly orphanClaims: number;
  /** Claims on machine records at the end, live or dead. */
  readonly claims: number;
}

/** VmRSS of a process in bytes; NaN when unknown. */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** The db-size gauges of etcd's `/metrics`. */
export async function etcdDbGauges(clientUrl: string): Promise<{ inUse: number; total: number; keys: number }> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  const gauge = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? NaN : Number(line.slice(name.length + 1));
  };
  return { inUse: gauge('etcd_mvcc_db_total_size_in_use_in_bytes'), total: gauge('etcd_debugging_mvcc_db_total_size_in_bytes'), keys: gauge('etcd_debugging_mvcc_keys_total') };
}

function churnSpec(retentionMs: number, taskDurationMs: number): WireJobSpec {
  return {
    name: 'churn',
    kind: 'JOB_KIND_BATCH',
    priority: 0,
    instances: 1,
    commit_mode: 'COMMIT_MODE_UNSPECIFIED',
    task: { command: ['true'], env: {}, resources: { cpu_millis: 100, memory_bytes: 64 * 1024 * 1024 }, run_duration_ms: taskDurationMs, hollow_fail: false, pids_limit: 0 },
    constraints: [],
    restart_policy: null,
    retention_ms: retentionMs,
  };
}

/** Keys of the cell under `root`, by kind, read in pages. */
async function countKeys(cluster: LiveCluster, cellName: string): Promise<Record<string, number>> {
  const cell = cluster.cell(cellName);
  const counts: Record<string, number> = {};
  let fromKey: string | undefined;
  for (;;) {
    const page = await cluster.kv.range({ key: cell.keys.root, prefix: true, limit: 5000, ...(fromKey === undefined ? {} : { fromKey }) });
    for (const kv of page.kvs) {
      const kind = cell.keys.parse(kv.key)?.kind ?? 'other';
      counts[kind] = (counts[kind] ?? 0) + 1;
    }
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || last === undefined) break;
    fromKey = `${last.key}\0`;
  }
  return counts;
}

/** Runs the churn on a started cluster; see the file header. */
export async function runChurn(cluster: LiveCluster, options: ChurnOptions): Promise<ChurnRun> {
  const { print } = options;
  const cellName = 'churn';
  const cell = cluster.cell(cellName);
  const retention = `${Math.round(options.retentionMs)}ms`;
  const agent = cluster.startAgents(cellName, options.machines, { cpu: '64', memory: '256Gi' });
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const api = cluster.startNode('api', [API_MAIN, '--insecure', '--etcd', cluster.etcd.clientUrl, '--cell', cellName, '--listen', address, '--log-level', 'warn']);
  const janitorFlags = ['--job-retention', retention, '--request-retention', retention];
  const batch = cluster.startScheduler('batch', cellName, 'batch-1', janitorFlags);
  const service = cluster.startScheduler('service', cellName, 'service-1', janitorFlags);
  const handles: Record<ChurnProcess, ChildHandle | undefined> = { etcd: undefined, api, batch, service, agent };
  const pidOf = (p: ChurnProcess): number | undefined => (p === 'etcd' ? cluster.etcd.pid : handles[p]?.child.pid);

  const mirror: CellMirror = cell.mirror();
  await mirror.start();
  const clients = Array.from({ length: options.clients }, () => new SubmitClient(address));
  try {
    await waitForAnnouncements(mirror, [batch, service]);
    await clients[0]?.ready(60_000).catch((error: unknown) => {
      throw new Error(`the API server did not come up: ${String(error)}; ${api.stderrTail.slice(-5).join(' | ')}`);
    });
    // Machines registered and alive before the clock starts.
    const deadline = Date.now() + 60_000;
    while ([...mirror.snapshot().aliveMachines()].length < options.machines) {
      if (Date.now() > deadline) throw new Error(`only ${[...mirror.snapshot().aliveMachines()].length} of ${options.machines} machines came up`);
      await new Promise((r) => setTimeout(r, 200));
    }
    print(`churn: ${options.jobs} jobs through ${options.machines} hollow machines, retention ${options.retentionMs / 1000} s, ${options.clients} clients, window ${options.window}`);

    const started = Date.now();
    const spec = churnSpec(options.retentionMs, options.taskDurationMs);
    /** Submitted and not yet seen finished: id → whether the mirror has shown the job. */
    const pending = new Map<JobId, boolean>();
    let submitted = 0;
    let done = 0;
    let failure: unknown;
    let lastProgressAt = Date.now();

    const settle = (): void => {
      const snapshot = mirror.snapshot();
      for (const [id, seen] of pending) {
        const job = snapshot.job(id);
        const state = snapshot.status(id)?.state;
        if (state === 'succeeded' || state === 'failed' || state === 'killed' || (job === undefined && seen)) {
          pending.delete(id);
          done++;
          lastProgressAt = Date.now();
        } else if (job !== undefined && !seen) pending.set(id, true);
      }
    };

    const submitter = async (client: SubmitClient): Promise<void> => {
      while (failure === undefined && submitted < options.jobs) {
        if (submitted - done >= options.window) {
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        submitted++;
        try {
          pending.set((await client.submit(spec)) as JobId, false);
        } catch (error) {
          failure ??= error;
        }
      }
    };

    const samples: ChurnSample[] = [];
    const sample = async (): Promise<void> => {
      const head = await cluster.kv.currentRevision();
      if (head > options.retainRevisions) await cluster.kv.compact(head - options.retainRevisions).catch(() => undefined);
      const [db, keys] = await Promise.all([etcdDbGauges(cluster.etcd.clientUrl), countKeys(cluster, cellName)]);
      const rss = Object.fromEntries(CHURN_PROCESSES.map((p) => [p, rssBytes(pidOf(p))])) as Record<ChurnProcess, number>;
      const s: ChurnSample = {
        jobsSubmitted: submitted,
        jobsDone: done,
        elapsedS: (Date.now() - started) / 1000,
        rssBytes: rss,
        etcdDbInUseBytes: db.inUse,
        etcdDbTotalBytes: db.total,
        etcdKeys: db.keys,
        keys,
        totalKeys: Object.values(keys).reduce((a, b) => a + b, 0),
      };
      samples.push(s);
      const mib = (b: number): string => (b / 1024 ** 2).toFixed(0);
      print(
        `  ${String(done).padStart(7)} done ${s.elapsedS.toFixed(0).padStart(5)} s (${Math.floor((done / options.jobs) * 100)}%${done > 0 && done < options.jobs ? `, about ${formatDuration(((s.elapsedS * 1000) / done) * (options.jobs - done))} left` : ''})  RSS MiB ${CHURN_PROCESSES.map((p) => `${p} ${mib(rss[p])}`).join(', ')}  etcd db ${mib(db.inUse)} in use / ${mib(db.total)} MiB  keys ${s.totalKeys} (jobs ${keys.job ?? 0}, tasks ${keys.task ?? 0}, requests ${keys.request ?? 0})`,
      );
    };

    await sample();
    let nextSampleAt = options.sampleEvery;
    const submitting = Promise.all(clients.map((c) => submitter(c)));
    while (done < options.jobs) {
      if (failure !== undefined) throw new Error(`a submit failed: ${String(failure)}`);
      for (const [name, h] of Object.entries(handles)) {
        if (h !== undefined && h.child.exitCode !== null) throw new Error(`${name} exited with ${h.child.exitCode}: ${h.stderrTail.slice(-5).join(' | ')}`);
      }
      if (Date.now() - lastProgressAt > 120_000) throw new Error(`no job finished for 120 s (${done} done, ${pending.size} pending)`);
      await new Promise((r) => setTimeout(r, 50));
      settle();
      if (done >= nextSampleAt) {
        await sample();
        nextSampleAt += options.sampleEvery;
      }
    }
    await submitting;
    const seconds = (Date.now() - started) / 1000;
    if (samples[samples.length - 1]?.jobsDone !== done) await sample();
    // Retention plus a scan: what is left must be what the last few seconds of jobs hold.
    print(`churn: ${done} jobs done in ${seconds.toFixed(0)} s (${(done / seconds).toFixed(0)} jobs/s)`);

    // No claim may point at a deleted task (it would hold its resources for ever).
    await mirror.waitForRevision(await cluster.kv.currentRevision());
    const end = mirror.snapshot();
    let claims = 0;
    let orphanClaims = 0;
    for (const m of end.machines()) {
      claims += m.claims.length;
      orphanClaims += m.claims.filter((c) => end.task(c.taskId) === undefined).length;
    }
    await Promise.all([cluster.stopProcess(batch), cluster.stopProcess(service)]);
    const metrics = [finalMetrics(batch), finalMetrics(service)];
    return {
      samples,
      jobsPerSecond: done / seconds,
      jobsDeleted: metrics.reduce((n, m) => n + (m?.jobsDeleted ?? 0), 0),
      requestsDeleted: metrics.reduce((n, m) => n + (m?.requestsDeleted ?? 0), 0),
      wallSeconds: seconds,
      orphanClaims,
      claims,
    };
  } finally {
    for (const c of clients) c.close();
    await mirror.stop();
  }
}
