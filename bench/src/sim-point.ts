#!/usr/bin/env node
/**
 * One simulation point of an experiment, alone: the simulator's speed check and its "same seed,
 * same result" check across code changes.
 *
 *   node bench/dist/sim-point.js --experiment E3 --point "W-omega-like resource-fit / incremental t_job(service)=10s"
 *        [--hours 24] [--seed 1] [--machines N] [--out FILE.json] [--compare FILE.json]
 *
 * Runs the point as `omega bench sim` does (a worker thread with the runner's heap settings, one
 * core), prints its wall time, the wall time per simulated day and its main figures; `--out`
 * writes the whole result; `--compare` checks every number of the result (all but the wall time)
 * against one written before and exits 1 when any differs. Without `--point` it lists the points.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { FlagError } from '@omega/cell-state';
import type { SimulationResult } from '@omega/simulator';
import { ms } from './markdown.js';
import { resultDifferences } from './sim-compare.js';
import { SIM_EXPERIMENTS, simExperiment, type SimExperimentId } from './sim-experiments.js';
import { wallPerSimulatedDayMs } from './sim-report.js';
import { runSimExperiment } from './sim-runner.js';

function positive(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0) throw new FlagError(flag, `must be a positive number, got ${JSON.stringify(raw)}`);
  return v;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { experiment: { type: 'string' }, point: { type: 'string' }, hours: { type: 'string' }, seed: { type: 'string' }, machines: { type: 'string' }, out: { type: 'string' }, compare: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const id = values.experiment as SimExperimentId | undefined;
  if (id === undefined || !SIM_EXPERIMENTS.includes(id)) throw new FlagError('--experiment', `must be one of ${SIM_EXPERIMENTS.join(', ')}, got ${JSON.stringify(values.experiment)}`);
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new FlagError('--seed', `must be an integer from 0 to 4294967295, got ${JSON.stringify(values.seed)}`);
  const hours = positive('--hours', values.hours);
  const machines = positive('--machines', values.machines);
  if (machines !== undefined && !Number.isSafeInteger(machines)) throw new FlagError('--machines', `must be a positive integer, got ${JSON.stringify(values.machines)}`);
  const experiment = simExperiment(id, {
    quick: false,
    seed,
    ...(hours === undefined ? {} : { durationMs: Math.round(hours * 3600_000) }),
    ...(machines === undefined ? {} : { machines }),
  });
  const point = experiment.points.find((p) => p.id === values.point);
  if (point === undefined) {
    if (values.point !== undefined) process.stderr.write(`sim-point: --point: no point ${JSON.stringify(values.point)} in ${id}; its points are:\n`);
    for (const p of experiment.points) process.stdout.write(`${p.id}\n`);
    return values.point === undefined ? 0 : 2;
  }
  const before = values.compare === undefined ? undefined : (JSON.parse(await readFile(values.compare, 'utf8')) as SimulationResult);
  const [done] = await runSimExperiment({ ...experiment, points: [point] }, { jobs: 1 });
  if (done === undefined) throw new Error('the point returned no result');
  const r = done.result;
  const lines = [
    `${point.id}, seed ${seed}: ${ms(r.simulatedMs)} simulated on ${point.config.cell.machines} machines in ${ms(r.wallMs)} wall: ${ms(wallPerSimulatedDayMs(done))} per simulated day`,
    ...r.schedulers.map((s) => `  ${s.name}: busyness ${s.metrics.busyness.toFixed(4)}, conflict fraction ${s.metrics.conflictFraction.toFixed(4)} (${s.metrics.transactionsFailed}/${s.metrics.transactionsOk}), claims ${s.metrics.claimsCommitted}`),
    `  store: revision ${r.store.revision}, ${r.store.requests} requests, ${r.store.bytesWritten} bytes written; tasks ended ${r.tasksEnded}; CPU utilization ${r.utilization.cpuMean.toFixed(4)}`,
  ];
  for (const line of lines) process.stdout.write(`${line}\n`);
  if (values.out !== undefined) await writeFile(values.out, `${JSON.stringify(r, null, 1)}\n`);
  if (before === undefined) return 0;
  const differences = resultDifferences(before, r);
  if (differences.length === 0) {
    process.stdout.write(`same result as ${values.compare} (every number but the wall time: ${ms(before.wallMs)} then, ${ms(r.wallMs)} now)\n`);
    return 0;
  }
  process.stdout.write(`DIFFERENT from ${values.compare} in ${differences.length} numbers:\n${differences.slice(0, 40).map((d) => `  ${d}`).join('\n')}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`sim-point: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
