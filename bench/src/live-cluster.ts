/**
 * The live benchmark's cluster on this machine: one etcd member (the launcher of cell-state,
 * raised `--max-txn-ops`, auto-compaction), a hollow node agent process serving many machines,
 * and one process per scheduler, each the real entry point from `dist/`:
 *
 * ```
 *   bench process ── Cell.createJob, CellMirror (observes), /metrics scrapes
 *        │ spawns
 *        ├─ etcd
 *        ├─ node packages/node-agent/dist/main.js --hollow N ...
 *        └─ node packages/scheduler-{batch,service}/dist/main.js --name ... x K
 * ```
 *
 * Every child is stopped with SIGTERM (then SIGKILL after a grace) by `stopProcess` or `close`,
 * and killed if the bench process exits first. A scheduler's final metrics come from the
 * `scheduler stopped` log line it prints on SIGTERM (its whole `SchedulerMetrics`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Cell, EtcdKv, findEtcd, startEtcd, type CellMirror, type RunningEtcd } from '@omega/cell-state';
import type { SchedulerMetrics } from '@omega/scheduler-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const AGENT_MAIN = `${ROOT}packages/node-agent/dist/main.js`;
export const SCHEDULER_MAIN = { batch: `${ROOT}packages/scheduler-batch/dist/main.js`, service: `${ROOT}packages/scheduler-service/dist/main.js` } as const;

export interface ChildHandle {
  readonly name: string;
  readonly child: ChildProcess;
  /** Lines of stdout that parsed as JSON objects, newest last (bounded). */
  readonly records: Record<string, unknown>[];
  /** The last stderr lines, for errors. */
  readonly stderrTail: string[];
  readonly exited: Promise<number | null>;
}

/** Counters scraped from etcd's `/metrics`. */
export interface EtcdCounters {
  readonly txns: number;
  readonly ranges: number;
  readonly puts: number;
  readonly receivedBytes: number;
  readonly sentBytes: number;
  readonly dbBytes: number;
}

/**
 * Node flags of every child. Overridable with OMEGA_BENCH_NODE_FLAGS (space-separated) to
 * measure their effect; OMEGA_BENCH_CPU_PROF=DIR adds `--cpu-prof` into DIR.
 */
const CHILD_NODE_FLAGS = (process.env.OMEGA_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Sets a child's niceness (-20..19; below the current one needs root). Undefined when set (or
 * already so), else why not.
 */
export function setNice(handle: ChildHandle, nice: number): string | undefined {
  const pid = handle.child.pid;
  if (pid === undefined) return 'the process did not start';
  try {
    if (getPriority(pid) !== nice) setPriority(pid, nice);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function track(name: string, child: ChildProcess): ChildHandle {
  live.add(child);
  const records: Record<string, unknown>[] = [];
  const stderrTail: string[] = [];
  let buffer = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
        if (records.length > 2000) records.splice(0, records.length - 2000);
      } catch {
        // not a log record
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderrTail.push(...chunk.split('\n').filter((l) => l !== ''));
    if (stderrTail.length > 50) stderrTail.splice(0, stderrTail.length - 50);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  return { name, child, records, stderrTail, exited };
}

export class LiveCluster {
  private readonly children: ChildHandle[] = [];

  private constructor(
    readonly etcd: RunningEtcd,
    readonly kv: EtcdKv,
    readonly etcdVersion: string,
    /** Where etcd's data directory is, and any other process's that keeps data (the real agent's). */
    readonly dataRoot: string,
  ) {}

  /**
   * Starts etcd (max-txn-ops 10,000, 8 MiB requests, revision auto-compaction) with its data in
   * a fresh directory under `dataRoot` (default the OS temp directory), removed by close().
   */
  static async start(dataRoot: string = tmpdir()): Promise<LiveCluster> {
    const etcd = await startEtcd({ maxTxnOps: 10_000, maxRequestBytes: 8 * 1024 * 1024, autoCompactionRetention: '10000', tempParent: dataRoot });
    const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    return new LiveCluster(etcd, kv, await etcdVersion(), dataRoot);
  }

  cell(name: string): Cell {
    return new Cell(this.kv, name);
  }

  /** A hollow agent process serving `machines` machines of the given capacity. */
  startAgents(cellName: string, machines: number, capacity: { cpu: string; memory: string }, prefix = 'hollow'): ChildHandle {
    const args = [AGENT_MAIN, '--hollow', String(machines), '--hollow-prefix', prefix, '--insecure', '--etcd', this.etcd.clientUrl, '--cell', cellName, '--cpu', capacity.cpu, '--memory', capacity.memory, '--log-level', 'warn'];
    return this.spawn(`agent-${cellName}`, args);
  }

  /** A scheduler process (`--max-txn-ops` set to the server's, stats every second, info logs). */
  startScheduler(kind: 'batch' | 'service', cellName: string, name: string, flags: readonly string[]): ChildHandle {
    const args = [
      SCHEDULER_MAIN[kind],
      '--insecure',
      '--etcd',
      this.etcd.clientUrl,
      '--cell',
      cellName,
      '--name',
      name,
      '--max-txn-ops',
      String(this.etcd.limits.maxTxnOps),
      '--log-level',
      'info',
      ...flags,
    ];
    return this.spawn(name, args);
  }

  /** Any node script as a child (the raw etcd committers). */
  startNode(name: string, args: readonly string[]): ChildHandle {
    return this.spawn(name, args);
  }

  private spawn(name: string, args: readonly string[]): ChildHandle {
    const profile = process.env.OMEGA_BENCH_CPU_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.OMEGA_BENCH_CPU_PROF}`];
    const child = spawn(process.execPath, [...CHILD_NODE_FLAGS, ...profile, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const handle = track(name, child);
    this.children.push(handle);
    return handle;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code. */
  async stopProcess(handle: ChildHandle, graceMs = 10_000): Promise<number | null> {
    if (handle.child.exitCode !== null || handle.child.signalCode !== null) return handle.child.exitCode;
    handle.child.kill('SIGTERM');
    const timer = setTimeout(() => handle.child.kill('SIGKILL'), graceMs);
    try {
      return await handle.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Counters from etcd's Prometheus endpoint. */
  async etcdCounters(): Promise<EtcdCounters> {
    const text = await (await fetch(`${this.etcd.clientUrl}/metrics`)).text();
    let txns = 0;
    let ranges = 0;
    let puts = 0;
    let receivedBytes = 0;
    let sentBytes = 0;
    let dbBytes = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.startsWith('grpc_server_handled_total{') && line.includes('grpc_service="etcdserverpb.KV"')) {
        if (line.includes('grpc_method="Txn"')) txns += value;
        else if (line.includes('grpc_method="Range"')) ranges += value;
        else if (line.includes('grpc_method="Put"')) puts += value;
      } else if (line.startsWith('etcd_network_client_grpc_received_bytes_total')) receivedBytes += value;
      else if (line.startsWith('etcd_network_client_grpc_sent_bytes_total')) sentBytes += value;
      else if (line.startsWith('etcd_mvcc_db_total_size_in_bytes ')) dbBytes = value;
    }
    return { txns, ranges, puts, receivedBytes, sentBytes, dbBytes };
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((c) => this.stopProcess(c, 5_000)));
    await this.kv.close();
    await this.etcd.stop();
  }
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere or
 * when it is gone. Sampled before and after a measured window to say where the CPU went.
 */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** USER_HZ: 100 on every Linux the bench runs on (sysconf is not reachable from Node). */
const CLOCK_TICKS = 100;

/** The scheduler's whole metrics from its `scheduler stopped` line; undefined if it printed none. */
export function finalMetrics(handle: ChildHandle): SchedulerMetrics | undefined {
  for (let i = handle.records.length - 1; i >= 0; i--) {
    const r = handle.records[i] as { msg?: unknown; metrics?: unknown };
    if (r.msg === 'scheduler stopped' && typeof r.metrics === 'object' && r.metrics !== null) return r.metrics as SchedulerMetrics;
  }
  return undefined;
}

/** Resolves once `test(snapshot)` holds on the mirror (checked on every change), or rejects after `timeoutMs`. */
export function waitFor(mirror: CellMirror, test: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (test()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const unsubscribe = mirror.onChange(() => {
      if (!test()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/**
 * Resolves once every scheduler process has published its stats record (its membership); rejects
 * at once, with its stderr, if one of them exits first, or after 60 s.
 */
export async function waitForAnnouncements(mirror: CellMirror, handles: readonly ChildHandle[]): Promise<void> {
  const names = new Set(handles.map((h) => h.name));
  const announced = (): boolean => [...mirror.snapshot().schedulerStats()].filter((s) => names.has(s.name)).length >= names.size;
  const failed = new Promise<never>((_, reject) => {
    for (const h of handles) {
      void h.exited.then((code) => reject(new Error(`scheduler ${h.name} exited with ${code} before announcing itself: ${h.stderrTail.slice(-5).join(' | ')}`)));
    }
  });
  // Observed here; a later exit (at shutdown) must not become an unhandled rejection.
  failed.catch(() => undefined);
  await Promise.race([waitFor(mirror, announced, 60_000, `${names.size} schedulers announced`), failed]);
}

async function etcdVersion(): Promise<string> {
  const binary = await findEtcd();
  if (binary === undefined) return 'unknown';
  return new Promise((resolve) => {
    const child = spawn(binary, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    child.once('exit', () => resolve(/etcd Version: (\S+)/.exec(out)?.[1] ?? 'unknown'));
    child.once('error', () => resolve('unknown'));
  });
}
