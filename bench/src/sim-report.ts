/**
 * What a simulated experiment shows people: result.md (the paper's statements beside our
 * numbers, the checks, and per-point tables of every scheduler and workload) and the chart of its
 * sweep. Numbers are rounded here; result.json keeps them whole.
 */
import { saturationJobMs } from '@omega/simulator';
import type { ChartPoint, ChartSpec, Panel } from './charts.js';
import { frac, int, ms, pct, table } from './markdown.js';
import type { BenchResult, PaperReference } from './result.js';
import { hostSpeedSentence } from './host-speed.js';
import { UNSATURATED, meanBusyness, meanConflictFraction, pooledConflictFraction } from './sim-checks.js';
import { E3_ARMS, modeArm, type SimExperiment } from './sim-experiments.js';
import type { SimPointResult } from './sim-runner.js';

const WAIT_TARGET_MS = 30_000;

/** The x coordinate of a point for its experiment. */
function xOf(experiment: SimExperiment, p: SimPointResult): number {
  return p.x[experiment.xKey] as number;
}

function firstWhere(points: readonly SimPointResult[], experiment: SimExperiment, test: (p: SimPointResult) => boolean): string {
  const hit = [...points].sort((a, b) => xOf(experiment, a) - xOf(experiment, b)).find(test);
  return hit === undefined ? 'not reached in the sweep' : `${xOf(experiment, hit)}`;
}

/** The paper's statements and figures with ours beside them. */
export function paperReferences(experiment: SimExperiment, points: readonly SimPointResult[]): PaperReference[] {
  const refs: PaperReference[] = [];
  const service = (p: SimPointResult): (typeof p.result.schedulers)[number] | undefined => p.result.schedulers.find((s) => s.role === 'service');
  switch (experiment.id) {
    case 'E1': {
      for (const workload of [...new Set(points.map((p) => p.workload))]) {
        const w = points.filter((p) => p.workload === workload);
        const mono = w.filter((p) => p.arm === 'monolithic');
        const omega = w.filter((p) => p.arm === 'omega');
        const fast = w.filter((p) => p.arm === 'monolithic-fast-path');
        refs.push({
          what: `${workload}: monolithic (single path) saturates`,
          paper: workload === 'W-omega-like' ? 'busyness grows linearly with t_job; saturates near t_job = 3.3 s (analytic)' : 'busyness grows linearly with t_job until saturation',
          ours: `analytic saturation at t_job = ${mono[0] === undefined ? '?' : (saturationJobMs(mono[0].config.workload, 5) / 1000).toFixed(2)} s; measured busyness ${mono
            .slice()
            .sort((a, b) => xOf(experiment, a) - xOf(experiment, b))
            .map((p) => `${frac(p.result.schedulers[0]?.metrics.busyness ?? 0)} at ${xOf(experiment, p)} s`)
            .join(', ')}`,
        });
        const maxX = Math.max(...w.map((p) => xOf(experiment, p)));
        const at = (arr: SimPointResult[]): SimPointResult | undefined => arr.find((p) => xOf(experiment, p) === maxX);
        refs.push({
          what: `${workload}: batch wait (mean to first attempt) at t_job(service) = ${maxX} s`,
          paper: "Omega's wait times match the fast-path monolithic scheduler's; batch is independent of service",
          ours: `omega ${ms(at(omega)?.result.workloads.batch.waitFirstAttempt.meanMs ?? NaN)}, fast path ${ms(at(fast)?.result.workloads.batch.waitFirstAttempt.meanMs ?? NaN)}, single path ${ms(at(mono)?.result.workloads.batch.waitFirstAttempt.meanMs ?? NaN)}`,
        });
        const abandoned = omega.reduce((a, p) => a + p.result.workloads.batch.jobsAbandoned + p.result.workloads.service.jobsAbandoned, 0);
        refs.push({
          what: `${workload}: Omega schedules all jobs; conflicts are rare`,
          paper: 'all jobs get scheduled, conflict fraction low',
          ours: `abandoned ${abandoned}; conflict fraction max batch ${frac(Math.max(...omega.map((p) => meanConflictFraction(p, 'batch'))))}, service ${frac(Math.max(...omega.map((p) => meanConflictFraction(p, 'service'))))}`,
        });
      }
      break;
    }
    case 'E2': {
      for (const workload of [...new Set(points.map((p) => p.workload))]) {
        const w = points.filter((p) => p.workload === workload);
        const one = w.filter((p) => p.x.batchSchedulers === 1);
        const maxN = Math.max(...w.map((p) => p.x.batchSchedulers as number));
        const many = w.filter((p) => p.x.batchSchedulers === maxN);
        const maxLoad = Math.max(...w.map((p) => p.x.batchLoad as number));
        const top = (arr: SimPointResult[]): SimPointResult | undefined => arr.find((p) => p.x.batchLoad === maxLoad);
        refs.push({
          what: `${workload}: one batch scheduler saturates (busyness ≥ 0.95)`,
          paper: 'at 2.5x / 6x / 9.5x the batch load on the three clusters',
          ours: (() => {
            const at1 = one.find((p) => p.x.batchLoad === 1)?.result.schedulers.find((s) => s.role === 'batch');
            const analytic = at1 === undefined ? NaN : 1 / at1.analyticBusyness;
            const measured = firstWhere(one, experiment, (p) => meanBusyness(p, 'batch') >= 0.95);
            const top = one.find((p) => p.x.batchLoad === Math.max(...one.map((q) => q.x.batchLoad as number)));
            return `analytic x${analytic.toFixed(1)}; busyness ≥ 0.95 ${measured === 'not reached in the sweep' ? `not reached (${frac(top === undefined ? 0 : meanBusyness(top, 'batch'))} at x${top?.x.batchLoad ?? '?'})` : `from x${measured}`}`;
          })(),
        });
        refs.push({
          what: `${workload}: at batch load x${maxLoad}, 1 vs ${maxN} batch schedulers`,
          paper: 'conflict fraction rises with N, lower busyness per scheduler makes up for it (up to 32)',
          ours: `conflict fraction ${frac(meanConflictFraction(top(one) as SimPointResult, 'batch'))} → ${frac(meanConflictFraction(top(many) as SimPointResult, 'batch'))}; busyness per scheduler ${frac(meanBusyness(top(one) as SimPointResult, 'batch'))} → ${frac(meanBusyness(top(many) as SimPointResult, 'batch'))}`,
        });
      }
      break;
    }
    case 'E3': {
      const cf = (arm: string, role: string): number => pooledConflictFraction(points.filter((p) => p.arm === arm), role);
      const busy = (arm: string): number => {
        const arr = points.filter((p) => p.arm === arm);
        return arr.reduce((a, p) => a + meanBusyness(p, 'service'), 0) / Math.max(1, arr.length);
      };
      const rfInc = modeArm('resource-fit', 'incremental');
      const rfAon = modeArm('resource-fit', 'all-or-nothing');
      const seqInc = modeArm('sequence-numbers', 'incremental');
      const seqAon = modeArm('sequence-numbers', 'all-or-nothing');
      const ratio = (a: string, b: string): string =>
        `conflict fraction x${(cf(a, 'service') / Math.max(1e-9, cf(b, 'service'))).toFixed(2)} (${frac(cf(b, 'service'))} → ${frac(cf(a, 'service'))}); busyness x${(busy(a) / Math.max(1e-9, busy(b))).toFixed(2)}`;
      refs.push({ what: 'all-or-nothing vs incremental, resource-fit (service scheduler, pooled over the sweep)', paper: 'roughly doubles the conflict fraction, minor rise in busyness', ours: ratio(rfAon, rfInc) });
      refs.push({ what: 'all-or-nothing vs incremental, sequence-numbers (service scheduler)', paper: 'roughly doubles the conflict fraction, minor rise in busyness', ours: ratio(seqAon, seqInc) });
      refs.push({ what: 'sequence-numbers vs resource-fit, incremental (service scheduler)', paper: 'raises conflicts and busyness 2-3x', ours: ratio(seqInc, rfInc) });
      break;
    }
    case 'E4': {
      for (const load of [...new Set(points.map((p) => p.x.batchLoad as number))]) {
        const base = points.filter((p) => p.x.batchLoad === load && p.x.tTaskServiceS === 0.005);
        const slowTask = points.filter((p) => p.x.batchLoad === load && p.x.tTaskServiceS === 1);
        const sorted = [...base].sort((a, b) => xOf(experiment, a) - xOf(experiment, b));
        const atOne = sorted.find((p) => (service(p)?.metrics.conflictFraction ?? 0) >= 1);
        // Busyness against the no-conflict estimate where the conflict fraction is nearest 1.0
        // among unsaturated points (a saturated scheduler's busyness is capped at 1).
        const near = sorted
          .filter((p) => (service(p)?.analyticBusyness ?? 1) < UNSATURATED)
          .sort((a, b) => Math.abs((service(a)?.metrics.conflictFraction ?? 0) - 1) - Math.abs((service(b)?.metrics.conflictFraction ?? 0) - 1))[0];
        const ns = near === undefined ? undefined : service(near);
        refs.push({
          what: `batch x${load}: service conflict fraction passes 1.0`,
          paper: 'near t_job(service) = 10 s',
          ours: `${atOne === undefined ? 'not reached in the sweep' : `first ≥ 1.0 at t_job(service) = ${xOf(experiment, atOne)} s`}; ${sorted.map((p) => `${frac(service(p)?.metrics.conflictFraction ?? 0)} at ${xOf(experiment, p)} s`).join(', ')}`,
        });
        if (near !== undefined && ns !== undefined) {
          refs.push({
            what: `batch x${load}: service busyness vs the no-conflict estimate`,
            paper: 'about 40% above it (near conflict fraction 1.0)',
            ours: `${pct(ns.metrics.busyness / ns.analyticBusyness - 1)} above at t_job(service) = ${xOf(experiment, near)} s (conflict fraction ${frac(ns.metrics.conflictFraction)}, busyness ${frac(ns.metrics.busyness)} vs ${frac(ns.analyticBusyness)})`,
          });
        }
        refs.push({
          what: `batch x${load}: the 30 s service wait target (mean to first attempt) is missed`,
          paper: 'about where the conflict fraction passes 1.0',
          ours: `at t_job(service) = ${firstWhere(base, experiment, (p) => p.result.workloads.service.waitFirstAttempt.meanMs > WAIT_TARGET_MS)} s`,
        });
        if (slowTask.length > 0) {
          refs.push({
            what: `batch x${load}: t_task(service) = 1 s`,
            paper: 'keeps the conflict fraction ≤ 0.2',
            ours: `max service conflict fraction ${frac(Math.max(...slowTask.map((p) => service(p)?.metrics.conflictFraction ?? 0)))}`,
          });
        }
      }
      break;
    }
  }
  return refs;
}

/** Per-point scheduler rows and workload rows. */
function pointTables(points: readonly SimPointResult[]): string {
  const schedRows: string[][] = [];
  const workRows: string[][] = [];
  for (const p of points) {
    for (const s of p.result.schedulers) {
      const m = s.metrics;
      schedRows.push([
        p.id,
        s.name,
        `${s.conflictMode} / ${s.transactionMode}`,
        frac(m.busyness),
        frac(s.analyticBusyness),
        frac(m.conflictFraction),
        frac(m.taskConflictFraction),
        int(m.transactionsOk),
        int(m.transactionsFailed),
        int(m.noFitAttempts),
        ms(m.busyNoFitMs),
      ]);
    }
    for (const w of [p.result.workloads.batch, p.result.workloads.service]) {
      workRows.push([
        p.id,
        w.kind,
        `${ms(w.waitFirstAttempt.meanMs)} / ${ms(w.waitFirstAttempt.p90Ms)}`,
        `${ms(w.waitFullyScheduled.meanMs)} / ${ms(w.waitFullyScheduled.p90Ms)}`,
        int(w.jobsSubmitted),
        int(w.jobsFullyScheduled),
        int(w.jobsAbandoned),
        int(w.jobsStillQueued),
        w.kind === 'batch' ? `${pct(p.result.utilization.cpuMean)} / ${pct(p.result.utilization.memoryMean)}` : '',
      ]);
    }
  }
  return [
    '### Schedulers\n',
    table(['point', 'scheduler', 'modes', 'busyness', 'no-conflict busyness', 'conflict fraction', 'task conflict fraction', 'tx ok', 'tx failed', 'no-fit attempts', 'no-fit busy'], schedRows),
    '\n### Workloads\n',
    table(['point', 'workload', 'wait to 1st attempt mean / p90', 'wait to fully scheduled mean / p90', 'submitted', 'fully scheduled', 'abandoned', 'still queued', 'CPU / memory util. (mean)'], workRows),
  ].join('\n');
}

const DAY_MS = 86_400_000;

/** Wall time per simulated day of a point (the simulator's speed; the only machine-dependent number). */
export function wallPerSimulatedDayMs(p: SimPointResult): number {
  return (p.result.wallMs / p.result.simulatedMs) * DAY_MS;
}

/** What each point cost to simulate. */
function costTable(points: readonly SimPointResult[]): string {
  const rows = points.map((p) => [p.id, ms(p.result.simulatedMs), ms(p.result.wallMs), ms(wallPerSimulatedDayMs(p)), int(p.result.store.revision), int(p.result.tasksEnded)]);
  return table(['point', 'simulated', 'wall', 'wall per simulated day', 'store revisions', 'tasks ended'], rows);
}

const rate = (failed: number, n: number): string => (n === 0 ? '–' : `${frac(failed / n)} (${int(failed)}/${int(n)})`);

/**
 * Per scheduler: its jobs' first transactions and their retries apart (a gang and an incremental
 * job send the same first transaction; they differ in what they send again), the claims and
 * machines a transaction touches, and on how many machines a failed one conflicted.
 */
function transactionTable(points: readonly SimPointResult[]): string {
  const rows: string[][] = [];
  for (const p of points) {
    for (const s of p.result.schedulers) {
      const t = s.transactions as SimPointResult['result']['schedulers'][number]['transactions'] | undefined;
      // Results recorded before the transaction log have none.
      if (t === undefined) continue;
      const firstClaims = t.first.claims;
      rows.push([
        p.id,
        s.name,
        rate(t.first.failed, t.first.transactions),
        rate(t.retry.failed, t.retry.transactions),
        firstClaims === 0 ? '–' : frac(t.first.ownConflicts / firstClaims),
        `${t.claimsPerTransaction.mean.toFixed(1)} / ${t.claimsPerTransaction.p90} / ${t.claimsPerTransaction.max}`,
        `${t.machinesPerTransaction.mean.toFixed(1)} / ${t.machinesPerTransaction.p90}`,
        Object.entries(t.failedByMachines)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', '),
      ]);
    }
  }
  return table(['point', 'scheduler', 'first transactions failed', 'retries failed', 'claims conflicted in first transactions', 'claims per transaction mean / p90 / max', 'machines per transaction mean / p90', 'failed transactions by machines conflicted'], rows);
}

/** result.md of a simulated experiment. */
export function simMarkdown(result: BenchResult<SimPointResult>, experiment: SimExperiment, chartFile: string): string {
  const points = result.points;
  const simulated = points[0]?.config.durationMs ?? 0;
  const cell = points[0]?.config.cell;
  const lines = [
    `# ${experiment.title} (simulated${result.quick ? ', quick' : ''})`,
    '',
    `Seed ${result.seed}; config sha256 \`${result.configSha256.slice(0, 16)}\`; ${points.length} runs of ${ms(simulated)} simulated each on ${int(cell?.machines ?? 0)} machines` +
      ` (${cell === undefined ? '' : `${cell.cpuMillis / 1000} CPU, ${cell.memoryBytes / 1024 ** 3} GiB, prefilled to ${pct(cell.prefillCpuFraction)} CPU`}); wall time ${ms(result.wallSeconds * 1000)} on ${result.host.cpus} x ${result.host.cpuModel}, node ${result.host.node}.${hostSpeedSentence(result.host)}`,
    `Service placement: ${points[0]?.config.servicePlacement ?? 'careful'}; mirror: ${points[0]?.config.mirror ?? 'shared'}.`,
    '',
    `![${experiment.id}](${chartFile})`,
    '',
    '## Checks',
    '',
    ...result.checks.map((c) => `- **${c.pass ? 'PASS' : 'FAIL'}** ${c.name}: ${c.detail}`),
    '',
    '## The paper beside ours',
    '',
    table(['what', 'paper (Omega, EuroSys 2013)', 'ours'], result.paper.map((r) => [r.what, r.paper, r.ours])),
    ...(result.notes.length > 0 ? ['', '## Notes', '', ...result.notes.map((n) => `- ${n}`)] : []),
    '',
    '## Every run',
    '',
    pointTables(points),
    '',
    '### Transactions (first ones and retries apart)',
    '',
    transactionTable(points),
    '',
    '### Simulator cost',
    '',
    costTable(points),
  ];
  return `${lines.join('\n')}\n`;
}

function series(points: readonly SimPointResult[], experiment: SimExperiment, name: (p: SimPointResult) => string | undefined, y: (p: SimPointResult) => number): ChartPoint[] {
  const out: ChartPoint[] = [];
  for (const p of points) {
    const s = name(p);
    if (s !== undefined) out.push({ x: xOf(experiment, p), y: y(p), series: s });
  }
  return out.sort((a, b) => a.series.localeCompare(b.series) || a.x - b.x);
}

/** The chart of a simulated experiment: the sweep on the x axis. */
export function simChart(experiment: SimExperiment, points: readonly SimPointResult[]): ChartSpec {
  const multiWorkload = new Set(points.map((p) => p.workload)).size > 1;
  const tag = (p: SimPointResult, s: string): string => (multiWorkload ? `${p.workload}: ${s}` : s);
  const perScheduler = (y: (s: SimPointResult['result']['schedulers'][number]) => number): ChartPoint[] =>
    points.flatMap((p) => p.result.schedulers.map((s) => ({ x: xOf(experiment, p), y: y(s), series: tag(p, `${p.arm}: ${s.role}`) }))).sort((a, b) => a.series.localeCompare(b.series) || a.x - b.x);
  const waitTarget = [{ y: WAIT_TARGET_MS / 1000, label: '30 s target' }];
  let panels: Panel[];
  switch (experiment.id) {
    case 'E1':
      panels = [
        { title: 'Scheduler busyness', yLabel: 'busyness', points: perScheduler((s) => s.metrics.busyness), rules: [{ y: 1, label: 'saturated' }] },
        { title: 'Batch wait to first attempt (mean)', yLabel: 'seconds', yLog: true, points: series(points, experiment, (p) => tag(p, p.arm), (p) => p.result.workloads.batch.waitFirstAttempt.meanMs / 1000), rules: waitTarget },
        { title: 'Service wait to first attempt (mean)', yLabel: 'seconds', yLog: true, points: series(points, experiment, (p) => tag(p, p.arm), (p) => p.result.workloads.service.waitFirstAttempt.meanMs / 1000), rules: waitTarget },
      ];
      break;
    case 'E2':
      panels = [
        { title: 'Batch conflict fraction (mean per scheduler)', yLabel: 'conflict fraction', points: series(points, experiment, (p) => tag(p, p.arm), (p) => meanConflictFraction(p, 'batch')) },
        { title: 'Batch busyness (mean per scheduler)', yLabel: 'busyness', points: series(points, experiment, (p) => tag(p, p.arm), (p) => meanBusyness(p, 'batch')), rules: [{ y: 1, label: 'saturated' }] },
        { title: 'Batch wait to first attempt (mean)', yLabel: 'seconds', yLog: true, points: series(points, experiment, (p) => tag(p, p.arm), (p) => p.result.workloads.batch.waitFirstAttempt.meanMs / 1000), rules: waitTarget },
      ];
      break;
    case 'E3': {
      const arms = E3_ARMS.map((a) => modeArm(a.conflictMode, a.transactionMode));
      panels = [
        { title: 'Service conflict fraction', yLabel: 'conflict fraction', points: series(points, experiment, (p) => (arms.includes(p.arm) ? p.arm : undefined), (p) => meanConflictFraction(p, 'service')) },
        { title: 'Batch conflict fraction', yLabel: 'conflict fraction', points: series(points, experiment, (p) => p.arm, (p) => meanConflictFraction(p, 'batch')) },
        { title: 'Service busyness', yLabel: 'busyness', points: series(points, experiment, (p) => p.arm, (p) => meanBusyness(p, 'service')), rules: [{ y: 1, label: 'saturated' }] },
      ];
      break;
    }
    case 'E4':
      panels = [
        { title: 'Service conflict fraction', yLabel: 'conflict fraction', points: series(points, experiment, (p) => p.arm, (p) => meanConflictFraction(p, 'service')), rules: [{ y: 1, label: '1.0' }] },
        { title: 'Service busyness', yLabel: 'busyness', points: series(points, experiment, (p) => p.arm, (p) => meanBusyness(p, 'service')), rules: [{ y: 1, label: 'saturated' }] },
        { title: 'Service wait to first attempt (mean)', yLabel: 'seconds', yLog: true, points: series(points, experiment, (p) => p.arm, (p) => p.result.workloads.service.waitFirstAttempt.meanMs / 1000), rules: waitTarget },
      ];
      break;
  }
  return { title: experiment.title, xLabel: experiment.xLabel, xLog: experiment.xLog, panels, columns: 3 };
}
