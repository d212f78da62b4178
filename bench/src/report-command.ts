/**
 * `omega bench report --out DIR`: rewrites DIR/result.md, the chart and the checks of a finished
 * run from DIR/result.json, without running anything again (after a change of the report code,
 * or to re-judge a result). The measurements are kept as they are; checks, paper references and
 * notes are recomputed by the current code.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentChecks } from './agent-report.js';
import type { AgentPhase } from './agent-throughput.js';
import { renderSvg } from './charts.js';
import type { ChurnSample } from './churn.js';
import { churnChecks } from './churn-report.js';
import { e3AgreementChecks, liveReport, t1Checks } from './live-command.js';
import type { LiveE3Point } from './live-e3.js';
import type { T1Point } from './live-t1.js';
import { checkLine, writeResult, type BenchResult } from './result.js';
import type { Print } from './sim-command.js';
import { simChecks } from './sim-checks.js';
import { simExperiment, type SimExperimentId } from './sim-experiments.js';
import { paperReferences, simChart, simMarkdown } from './sim-report.js';
import type { SimPointResult } from './sim-runner.js';

/** Re-renders a result directory; returns the exit code (0: all checks pass). */
export async function runReportCommand(dir: string, print: Print): Promise<number> {
  const stored = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as BenchResult;
  let result: BenchResult;
  let markdown: string;
  let chartFile: string;
  let svg: string;
  if (stored.mode === 'sim') {
    const config = stored.config as { quick: boolean; seed: number };
    // Only the experiment's shape (title, axes) is needed; the points come from the result.
    const experiment = simExperiment(stored.experiment as SimExperimentId, { quick: config.quick, seed: config.seed });
    const points = stored.points as SimPointResult[];
    result = { ...stored, checks: simChecks(experiment, points), paper: paperReferences(experiment, points) };
    chartFile = `${experiment.id.toLowerCase()}-sim.svg`;
    markdown = simMarkdown(result as BenchResult<SimPointResult>, experiment, chartFile);
    svg = await renderSvg(simChart(experiment, points));
  } else {
    const checks =
      stored.experiment === 'T1'
        ? t1Checks(stored.points as T1Point[])
        : stored.experiment === 'churn'
          ? // The end-state check needs the run itself: kept as measured; the levelling is re-judged.
            [...stored.checks.filter((c) => !c.name.endsWith(' levels off')), ...churnChecks(stored.points as ChurnSample[])]
          : stored.experiment === 'agent'
            ? agentChecks(stored.points as AgentPhase[])
            : e3AgreementChecks(stored.points as LiveE3Point[]);
    result = { ...stored, checks };
    const report = liveReport(result);
    chartFile = report.chartFile;
    markdown = report.markdown;
    svg = await renderSvg(report.chart);
  }
  await writeResult(dir, result, markdown, new Map([[chartFile, svg]]));
  for (const c of result.checks) print(checkLine(c));
  print(`rewrote ${join(dir, 'result.md')}, ${join(dir, chartFile)} and the checks in ${join(dir, 'result.json')}`);
  return result.checks.every((c) => c.pass) ? 0 : 1;
}
