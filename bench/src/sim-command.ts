/**
 * `omega bench sim`: runs one simulated experiment, checks it, writes result.json, result.md and
 * the chart, and prints progress and the PASS/FAIL lines.
 */
import { Progress } from '@omega/cell-state';
import { join } from 'node:path';
import { renderSvg } from './charts.js';
import { describeHostSpeed, measureHostSpeed } from './host-speed.js';
import { checkLine, configHash, hostInfo, writeResult, type BenchResult } from './result.js';
import { simChecks } from './sim-checks.js';
import { simExperiment, type SimExperimentId, type SimExperimentOptions } from './sim-experiments.js';
import { simChart, simMarkdown, paperReferences, wallPerSimulatedDayMs } from './sim-report.js';
import { runSimExperiment, type SimPointResult } from './sim-runner.js';
import { ms } from './markdown.js';

export interface SimCommandOptions extends SimExperimentOptions {
  readonly experiment: SimExperimentId;
  readonly out: string;
  /** Simulations at once (worker threads). */
  readonly jobs: number;
}

/** Where output lines go (stdout by default; tests collect them). */
export type Print = (line: string) => void;

/** Notes that belong with every simulated result. */
function notesFor(options: SimCommandOptions): string[] {
  const notes = [
    'Think time is virtual (t_job + t_task x tasks still to place, per job kind); store operations and placement code take no virtual time.',
    `Service jobs are placed by ${options.servicePlacement === 'careful' ? 'the careful service policy (constraints, spread scoring)' : "randomized first fit (the paper simulator's placement for every scheduler; --service-placement careful uses the service policy)"}.`,
    'Jobs stay with the scheduler their id hashes to (rendezvous over live instances, no work stealing); a job that committed nothing is retried after 1 s; abandoned after 1,000 attempts or 100 without progress.',
  ];
  if (options.experiment === 'E2') notes.push("E2 uses W-sim-example in the quick sweep: W-omega-like's batch load fills the cell near 3x (its tasks hold 0.5 CPU for 300 s on a cell 60% prefilled), which makes high loads an experiment about a full cell.");
  return notes;
}

/** Runs the experiment; returns the exit code (0: all checks passed, 1: some failed). */
export async function runSimCommand(options: SimCommandOptions, print: Print): Promise<number> {
  const experiment = simExperiment(options.experiment, options);
  const startedAt = new Date();
  const speed = measureHostSpeed();
  print(`omega bench sim ${experiment.id}${options.quick ? ' --quick' : ''}: ${experiment.points.length} simulations, ${options.jobs} at a time, seed ${options.seed}; ${describeHostSpeed(speed)}`);
  const progress = new Progress(experiment.points.length);
  const points = await runSimExperiment(experiment, {
    jobs: options.jobs,
    onPoint: (_done, _total, p) => {
      progress.step();
      const s = p.result.schedulers.map((x) => `${x.name} busy ${x.metrics.busyness.toFixed(3)} cf ${x.metrics.conflictFraction.toFixed(3)}`).join(', ');
      print(`  ${progress.finished()} ${p.id}: ${s} (${ms(p.result.wallMs)} wall, ${ms(wallPerSimulatedDayMs(p))} per simulated day)`);
    },
  });
  const checks = simChecks(experiment, points);
  const config = {
    experiment: experiment.id,
    quick: options.quick,
    seed: options.seed,
    machines: options.machines ?? null,
    durationMs: options.durationMs ?? null,
    servicePlacement: options.servicePlacement ?? 'first-fit',
    mirror: options.mirror ?? 'shared',
    points: experiment.points.map((p) => ({ id: p.id, arm: p.arm, workload: p.workload, x: p.x, config: p.config })),
  };
  const finishedAt = new Date();
  const result: BenchResult<SimPointResult> = {
    schema: 'omega-bench/1',
    mode: 'sim',
    experiment: experiment.id,
    title: experiment.title,
    quick: options.quick,
    seed: options.seed,
    config,
    configSha256: configHash(config),
    host: hostInfo(undefined, speed),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    points,
    checks,
    paper: paperReferences(experiment, points),
    notes: notesFor(options),
  };
  const chartFile = `${experiment.id.toLowerCase()}-sim.svg`;
  const svg = await renderSvg(simChart(experiment, points));
  const written = await writeResult(options.out, result, simMarkdown(result, experiment, chartFile), new Map([[chartFile, svg]]));
  for (const c of checks) print(checkLine(c));
  for (const r of result.paper) print(`paper: ${r.what}: ${r.paper} | ours: ${r.ours}`);
  print(`wrote ${written.map((w) => w.replace(`${options.out}/`, `${join(options.out)}/`)).join(', ')} (${ms(result.wallSeconds * 1000)})`);
  return checks.every((c) => c.pass) ? 0 : 1;
}
