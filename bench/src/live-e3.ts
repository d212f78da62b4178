/**
 * E3 (live): conflict detection x transaction mode on real etcd, checked against the simulator at
 * the same scaled settings. That agreement is what says the etcd commit path means what the
 * simulator means.
 *
 * Scaling: W-omega-like's rates scaled to the cell (`scaledTo`), then time compressed by
 * `compression`: arrival gaps, task durations and think times all divided by it, so every
 * "rate x window" product (what conflicts depend on) is unchanged while minutes of wall time
 * cover hours of the workload. What cannot be compressed is the store's own latency (a few ms
 * per commit), which widens each live think window a little: the tolerance allows for it.
 *
 * Per point: a fresh cell, a hollow agent (machines of 4 CPU / 16 GiB), the prefill (same code as
 * the simulator's), one batch and one service scheduler process with the arm's modes and the
 * compressed think times, and the workload fed from the same seeded arrival stream for
 * `seconds`. The simulator then runs the identical config (same machines, rates, think times,
 * retry backoff and placement policies) for `simFactor` times as long, to keep its own sampling
 * error small.
 */
import { Progress, jobId, type CellMirror, type ConflictMode, type JobKind, type MachineId, type TransactionMode } from '@omega/cell-state';
import { hash32, seededRandom, type SchedulerMetrics } from '@omega/scheduler-core';
import { PAPER_CELL, W_OMEGA_LIKE, arrivalJobSpec, arrivals, merge, prefillCell, runSimulation, scaledTo, type CellShape, type SimulationConfig, type SimulationResult, type Workload } from '@omega/simulator';
import { finalMetrics, waitFor, waitForAnnouncements, type ChildHandle, type LiveCluster } from './live-cluster.js';
import { E3_ARMS, modeArm } from './sim-experiments.js';

export interface LiveE3Options {
  readonly machines: number;
  readonly compression: number;
  /** t_job(service) in the paper's (uncompressed) seconds. */
  readonly tJobServiceS: readonly number[];
  readonly seconds: number;
  readonly simFactor: number;
  readonly seed: number;
  readonly print: (line: string) => void;
}

export interface RoleCounts {
  readonly ok: number;
  readonly failed: number;
  readonly conflictFraction: number;
}

export interface LiveE3Point {
  readonly arm: string;
  readonly conflictMode: ConflictMode;
  readonly transactionMode: TransactionMode;
  readonly tJobServiceS: number;
  readonly live: { readonly batch: RoleCounts; readonly service: RoleCounts; readonly metrics: Readonly<Record<string, SchedulerMetrics | undefined>>; readonly jobsSubmitted: Readonly<Record<JobKind, number>> };
  readonly sim: { readonly batch: RoleCounts; readonly service: RoleCounts; readonly result: SimulationResult };
  readonly simConfig: SimulationConfig;
}

/** The scaled, compressed workload. */
export function compressedWorkload(machines: number, compression: number): Workload {
  const w = scaledTo(W_OMEGA_LIKE, machines);
  const squeeze = (c: Workload['batch']): Workload['batch'] => ({ ...c, interArrivalMeanMs: c.interArrivalMeanMs / compression, durationMeanMs: c.durationMeanMs / compression });
  return { name: w.name, batch: squeeze(w.batch), service: squeeze(w.service) };
}

/** The simulation config matching one live point (live retry defaults: 10 ms doubling to 1 s). */
export function simConfigFor(options: LiveE3Options, conflictMode: ConflictMode, transactionMode: TransactionMode, tJobServiceS: number): SimulationConfig {
  const c = options.compression;
  const cell: CellShape = { ...PAPER_CELL, machines: options.machines };
  return {
    seed: options.seed,
    cell,
    workload: compressedWorkload(options.machines, c),
    durationMs: options.seconds * 1000 * options.simFactor,
    schedulers: [
      { name: 'batch-0', role: 'batch', thinkTimes: { batch: { jobMs: 100 / c, taskMs: 5 / c } }, conflictMode, transactionMode },
      { name: 'service-0', role: 'service', thinkTimes: { service: { jobMs: (tJobServiceS * 1000) / c, taskMs: 5 / c } }, conflictMode, transactionMode },
    ],
    mirror: 'shared',
    servicePlacement: 'careful',
    retryBackoff: { initialMs: 10, maxMs: 1000 },
  };
}

function counts(ok: number, failed: number): RoleCounts {
  return { ok, failed, conflictFraction: ok > 0 ? failed / ok : failed };
}

function aliveIds(mirror: CellMirror): MachineId[] {
  return [...mirror.snapshot().aliveMachines()].map((a) => a.machineId).sort();
}

/** Feeds the arrival stream into the cell in (compressed) real time for `seconds`. */
async function feed(options: LiveE3Options, config: SimulationConfig, cell: ReturnType<LiveCluster['cell']>): Promise<Record<JobKind, number>> {
  const stream = merge(
    arrivals(config.workload.batch, seededRandom(config.seed ^ hash32('batch')), 0, options.seconds * 1000),
    arrivals(config.workload.service, seededRandom(config.seed ^ hash32('service')), 0, options.seconds * 1000),
  );
  const n: Record<JobKind, number> = { batch: 0, service: 0 };
  const start = Date.now();
  const pending: Promise<unknown>[] = [];
  for (const a of stream) {
    const wait = start + a.atMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = jobId(`${a.kind}-${n[a.kind]++}`);
    pending.push(
      cell.createJob({
        id,
        spec: arrivalJobSpec(a),
      }),
    );
  }
  await Promise.all(pending);
  const rest = start + options.seconds * 1000 - Date.now();
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  return n;
}

async function livePoint(cluster: LiveCluster, options: LiveE3Options, conflictMode: ConflictMode, transactionMode: TransactionMode, tJobServiceS: number, index: number): Promise<LiveE3Point['live']> {
  const config = simConfigFor(options, conflictMode, transactionMode, tJobServiceS);
  const cellName = `e3-${index}`;
  const cell = cluster.cell(cellName);
  const agent = cluster.startAgents(cellName, options.machines, { cpu: '4', memory: '16Gi' });
  const mirror = cell.mirror();
  await mirror.start();
  const handles: ChildHandle[] = [];
  try {
    await waitFor(mirror, () => aliveIds(mirror).length >= options.machines, 120_000, `${options.machines} hollow machines alive`);
    const lease = await cluster.kv.grantLease(60, { autoKeepAlive: true });
    await prefillCell(cell, config.cell, aliveIds(mirror), seededRandom(options.seed), lease, 24 * 3600_000);
    for (const s of config.schedulers) {
      const kind = s.role === 'batch' ? 'batch' : 'service';
      const think = s.thinkTimes[kind];
      handles.push(
        cluster.startScheduler(kind, cellName, s.name, [
          '--conflict-mode',
          conflictMode,
          '--transaction-mode',
          transactionMode,
          '--t-job-ms',
          String(think?.jobMs ?? 0),
          '--t-task-ms',
          String(think?.taskMs ?? 0),
          ...(kind === 'batch' ? ['--choice', 'first-fit'] : []),
          '--ownership-grace-ms',
          String(365 * 24 * 3600_000),
          '--seed',
          String((options.seed ^ hash32(s.name)) >>> 0),
        ]),
      );
    }
    await waitForAnnouncements(mirror, handles);
    const jobsSubmitted = await feed(options, config, cell);
    const metrics: Record<string, SchedulerMetrics | undefined> = {};
    for (const h of handles) {
      await cluster.stopProcess(h);
      metrics[h.name] = finalMetrics(h);
      if (metrics[h.name] === undefined) throw new Error(`scheduler ${h.name} printed no final metrics: ${h.stderrTail.slice(-5).join(' | ')}`);
    }
    await lease.revoke();
    const m = (name: string): SchedulerMetrics | undefined => metrics[name];
    return {
      batch: counts(m('batch-0')?.transactionsOk ?? 0, m('batch-0')?.transactionsFailed ?? 0),
      service: counts(m('service-0')?.transactionsOk ?? 0, m('service-0')?.transactionsFailed ?? 0),
      metrics,
      jobsSubmitted,
    };
  } finally {
    for (const h of handles) await cluster.stopProcess(h);
    await cluster.stopProcess(agent);
    await mirror.stop();
    await cell.kv.delete(cell.keys.root, { prefix: true });
  }
}

/** Every arm at every t_job(service): live, then the simulator at the same settings. */
export async function runLiveE3(cluster: LiveCluster, options: LiveE3Options): Promise<LiveE3Point[]> {
  const points: LiveE3Point[] = [];
  let index = 0;
  const progress = new Progress(options.tJobServiceS.length * E3_ARMS.length);
  for (const t of options.tJobServiceS) {
    for (const { conflictMode, transactionMode } of E3_ARMS) {
      const arm = modeArm(conflictMode, transactionMode);
      options.print(`  ${progress.starting()} E3 live: ${arm}, t_job(service) = ${t} s (${(t * 1000) / options.compression} ms compressed), ${options.seconds} s`);
      const live = await livePoint(cluster, options, conflictMode, transactionMode, t, index++);
      const simConfig = simConfigFor(options, conflictMode, transactionMode, t);
      const result = await runSimulation(simConfig);
      const role = (r: string): RoleCounts => {
        const s = result.schedulers.filter((x) => x.role === r);
        return counts(
          s.reduce((a, x) => a + x.metrics.transactionsOk, 0),
          s.reduce((a, x) => a + x.metrics.transactionsFailed, 0),
        );
      };
      const point: LiveE3Point = { arm, conflictMode, transactionMode, tJobServiceS: t, live, sim: { batch: role('batch'), service: role('service'), result }, simConfig };
      options.print(
        `    service conflict fraction live ${point.live.service.conflictFraction.toFixed(3)} (${point.live.service.failed}/${point.live.service.ok}) vs sim ${point.sim.service.conflictFraction.toFixed(3)} (${point.sim.service.failed}/${point.sim.service.ok}); batch live ${point.live.batch.conflictFraction.toFixed(3)} vs sim ${point.sim.batch.conflictFraction.toFixed(3)}`,
      );
      points.push(point);
      progress.step();
    }
  }
  return points;
}
