/**
 * The simulated experiments E1-E4 of shared/BENCH.md as lists of simulation points: which arms,
 * which sweep, which workload, how long, on how large a cell. Pure data; `sim-runner.ts` runs
 * them and `checks.ts` judges them.
 *
 * Quick sweeps keep the paper's cell (10,000 machines) and workloads, so busyness and conflict
 * rates mean what they mean at full scale, and cut the sweep points and the simulated time. The
 * full sweeps are the paper's grids with a simulated day per point (E2 and E4, whose high loads
 * place hundreds of tasks per second, simulate fewer hours per point).
 */
import {
  PAPER_CELL,
  WORKLOADS,
  type CellShape,
  type ServicePlacement,
  type SimSchedulerConfig,
  type SimulationConfig,
  type ThinkTime,
  type Workload,
} from '@omega/simulator';
import type { ConflictMode, TransactionMode } from '@omega/cell-state';

export const SIM_EXPERIMENTS = ['E1', 'E2', 'E3', 'E4'] as const;
export type SimExperimentId = (typeof SIM_EXPERIMENTS)[number];

/** One simulation of an experiment: an arm at one sweep point. */
export interface SimPoint {
  /** Unique within the experiment, e.g. `W-omega-like omega t_job(service)=1s`. */
  readonly id: string;
  readonly arm: string;
  readonly workload: Workload['name'];
  /** Sweep coordinates (seconds for think times, factors for loads, counts for schedulers). */
  readonly x: Readonly<Record<string, number>>;
  readonly config: SimulationConfig;
}

export interface SimExperiment {
  readonly id: SimExperimentId;
  readonly title: string;
  /** The coordinate drawn on the x axis of the chart. */
  readonly xKey: string;
  readonly xLabel: string;
  readonly xLog: boolean;
  readonly points: readonly SimPoint[];
}

export interface SimExperimentOptions {
  readonly quick: boolean;
  readonly seed: number;
  /** Cell size; default the paper's 10,000 machines (rates are scaled to a smaller cell). */
  readonly machines?: number;
  /** Overrides the simulated time per point. */
  readonly durationMs?: number;
  readonly servicePlacement?: ServicePlacement;
  /** Default `shared`. */
  readonly mirror?: 'shared' | 'own';
}

const HOUR = 3600_000;
/** BENCH.md defaults: t_job = 0.1 s, t_task = 5 ms per task still to place. */
export const DEFAULT_THINK: ThinkTime = { jobMs: 100, taskMs: 5 };

const seconds = (s: number): string => `${s}s`;
const think = (jobS: number, taskS = 0.005): ThinkTime => ({ jobMs: jobS * 1000, taskMs: taskS * 1000 });

function cellFor(options: SimExperimentOptions): CellShape {
  return { ...PAPER_CELL, machines: options.machines ?? PAPER_CELL.machines };
}

/** A workload's rates scaled to the cell (the paper's for 10,000 machines). */
function workloadFor(name: Workload['name'], cell: CellShape): Workload {
  const w = WORKLOADS[name];
  const f = PAPER_CELL.machines / cell.machines;
  if (f === 1) return w;
  return { name: w.name, batch: { ...w.batch, interArrivalMeanMs: w.batch.interArrivalMeanMs * f }, service: { ...w.service, interArrivalMeanMs: w.service.interArrivalMeanMs * f } };
}

function base(options: SimExperimentOptions, workload: Workload['name'], durationMs: number, schedulers: SimSchedulerConfig[], extra: Partial<SimulationConfig> = {}): SimulationConfig {
  const cell = cellFor(options);
  return {
    seed: options.seed,
    cell,
    workload: workloadFor(workload, cell),
    durationMs: options.durationMs ?? durationMs,
    schedulers,
    mirror: options.mirror ?? 'shared',
    servicePlacement: options.servicePlacement ?? 'first-fit',
    retryBackoff: { initialMs: 1000, maxMs: 1000 },
    ...extra,
  };
}

/** One batch and one service scheduler (the Omega arm of E1, and E3/E4). */
function omegaPair(batch: ThinkTime, service: ThinkTime, conflictMode: ConflictMode = 'resource-fit', transactionMode: TransactionMode = 'incremental'): SimSchedulerConfig[] {
  return [
    { name: 'batch-0', role: 'batch', thinkTimes: { batch }, conflictMode, transactionMode },
    { name: 'service-0', role: 'service', thinkTimes: { service }, conflictMode, transactionMode },
  ];
}

/** E1: monolithic (single path), monolithic with a batch fast path, and Omega, vs t_job(service). */
export function e1(options: SimExperimentOptions): SimExperiment {
  const tJobs = options.quick ? [0.1, 1, 3, 10] : [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100];
  const workloads: Workload['name'][] = options.quick ? ['W-omega-like'] : ['W-sim-example', 'W-omega-like'];
  const duration = options.quick ? 1 * HOUR : 24 * HOUR;
  const points: SimPoint[] = [];
  for (const workload of workloads) {
    for (const t of tJobs) {
      const x = { tJobServiceS: t };
      const arms: [string, SimSchedulerConfig[]][] = [
        ['monolithic', [{ name: 'mono-0', role: 'monolithic', thinkTimes: { batch: think(t), service: think(t) } }]],
        ['monolithic-fast-path', [{ name: 'mono-0', role: 'monolithic', thinkTimes: { batch: DEFAULT_THINK, service: think(t) } }]],
        ['omega', omegaPair(DEFAULT_THINK, think(t))],
      ];
      for (const [arm, schedulers] of arms) {
        points.push({ id: `${workload} ${arm} t_job(service)=${seconds(t)}`, arm, workload, x, config: base(options, workload, duration, schedulers) });
      }
    }
  }
  return { id: 'E1', title: 'E1: architectures vs t_job(service)', xKey: 'tJobServiceS', xLabel: 't_job(service) [s]', xLog: true, points };
}

/** E2: batch load x number of batch schedulers (jobs spread by hashing the job id). */
export function e2(options: SimExperimentOptions): SimExperiment {
  const loads = options.quick ? [1, 4, 8] : [1, 1.5, 2, 2.5, 3, 4, 6, 8, 10, 12, 16];
  const counts = options.quick ? [1, 2, 4, 8] : [1, 2, 4, 8, 16, 32];
  // W-sim-example: its batch load fits the cell up to ~12x (W-omega-like's fills it near 3x,
  // which turns the experiment into one about a full cell).
  const workloads: Workload['name'][] = options.quick ? ['W-sim-example'] : ['W-sim-example', 'W-omega-like'];
  const duration = options.quick ? 0.5 * HOUR : 4 * HOUR;
  const points: SimPoint[] = [];
  for (const workload of workloads) {
    for (const n of counts) {
      for (const load of loads) {
        const schedulers: SimSchedulerConfig[] = [
          ...Array.from({ length: n }, (_, i): SimSchedulerConfig => ({ name: `batch-${i}`, role: 'batch', thinkTimes: { batch: DEFAULT_THINK } })),
          { name: 'service-0', role: 'service', thinkTimes: { service: DEFAULT_THINK } },
        ];
        points.push({
          id: `${workload} ${n} batch schedulers load x${load}`,
          arm: `${n} batch scheduler${n === 1 ? '' : 's'}`,
          workload,
          x: { batchLoad: load, batchSchedulers: n },
          config: base(options, workload, duration, schedulers, { batchRateFactor: load }),
        });
      }
    }
  }
  return { id: 'E2', title: 'E2: batch load x number of batch schedulers', xKey: 'batchLoad', xLabel: 'batch arrival rate (x W)', xLog: false, points };
}

export const E3_ARMS: readonly { readonly conflictMode: ConflictMode; readonly transactionMode: TransactionMode }[] = [
  { conflictMode: 'resource-fit', transactionMode: 'incremental' },
  { conflictMode: 'resource-fit', transactionMode: 'all-or-nothing' },
  { conflictMode: 'sequence-numbers', transactionMode: 'incremental' },
  { conflictMode: 'sequence-numbers', transactionMode: 'all-or-nothing' },
];

/** The arm name of a mode pair, as E3's tables and checks call it. */
export function modeArm(conflictMode: ConflictMode, transactionMode: TransactionMode): string {
  return `${conflictMode} / ${transactionMode}`;
}

/** E3: conflict detection x transaction mode vs t_job(service). */
export function e3(options: SimExperimentOptions): SimExperiment {
  const tJobs = options.quick ? [0.1, 1, 10, 100] : [0.1, 1, 10, 100];
  const duration = options.quick ? 1 * HOUR : 24 * HOUR;
  const points: SimPoint[] = [];
  for (const t of tJobs) {
    for (const { conflictMode, transactionMode } of E3_ARMS) {
      const arm = modeArm(conflictMode, transactionMode);
      points.push({
        id: `W-omega-like ${arm} t_job(service)=${seconds(t)}`,
        arm,
        workload: 'W-omega-like',
        x: { tJobServiceS: t },
        config: base(options, 'W-omega-like', duration, omegaPair(DEFAULT_THINK, think(t), conflictMode, transactionMode)),
      });
    }
  }
  return { id: 'E3', title: 'E3: conflict detection x transaction mode vs t_job(service)', xKey: 'tJobServiceS', xLabel: 't_job(service) [s]', xLog: true, points };
}

/** E4: service decision time under heavy batch load. */
export function e4(options: SimExperimentOptions): SimExperiment {
  // Quick: only the heavy batch load, where the paper's statements are about.
  const loads = options.quick ? [4] : [1, 2, 4];
  const tJobs = options.quick ? [0.1, 1, 10, 60] : [0.1, 0.3, 1, 3, 10, 30, 60];
  const tTasks = options.quick ? [0.005, 1] : [0.005, 0.01, 0.1, 1];
  const duration = options.quick ? 0.5 * HOUR : 6 * HOUR;
  const points: SimPoint[] = [];
  for (const load of loads) {
    for (const tTask of tTasks) {
      for (const t of tJobs) {
        const arm = `batch x${load}, t_task(service)=${seconds(tTask)}`;
        points.push({
          id: `W-omega-like ${arm} t_job(service)=${seconds(t)}`,
          arm,
          workload: 'W-omega-like',
          x: { tJobServiceS: t, tTaskServiceS: tTask, batchLoad: load },
          config: base(options, 'W-omega-like', duration, omegaPair(DEFAULT_THINK, think(t, tTask)), { batchRateFactor: load }),
        });
      }
    }
  }
  return { id: 'E4', title: 'E4: service decision time under heavy batch load', xKey: 'tJobServiceS', xLabel: 't_job(service) [s]', xLog: true, points };
}

export function simExperiment(id: SimExperimentId, options: SimExperimentOptions): SimExperiment {
  switch (id) {
    case 'E1':
      return e1(options);
    case 'E2':
      return e2(options);
    case 'E3':
      return e3(options);
    case 'E4':
      return e4(options);
  }
}
