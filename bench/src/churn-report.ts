/**
 * The churn benchmark's verdicts, result.md body and chart: whether each series (every process's
 * RSS, etcd's database in use, the cell's keys) levelled off, judged by comparing the mean of the
 * last third of the samples with the mean of the middle third.
 */
import type { ChartSpec } from './charts.js';
import type { ChurnSample } from './churn.js';
import { CHURN_PROCESSES } from './churn.js';
import { int, table } from './markdown.js';
import type { CheckResult } from './result.js';

/** A series levelled off when its last third is at most this much above its middle third... */
export const LEVEL_TOLERANCE = 0.2;

/** ...or at most this much in absolute terms (GC and allocator noise on small numbers). */
export const LEVEL_SLACK = { rssBytes: 16 * 1024 ** 2, dbBytes: 2 * 1024 ** 2, keys: 200 } as const;

export interface Series {
  readonly name: string;
  readonly unit: 'bytes' | 'keys';
  readonly values: readonly number[];
}

export interface Levelling {
  readonly name: string;
  readonly middleMean: number;
  readonly lastMean: number;
  /** lastMean / middleMean - 1. */
  readonly growth: number;
  readonly levelled: boolean;
  readonly samples: number;
}

function mean(xs: readonly number[]): number {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length === 0 ? NaN : ok.reduce((a, b) => a + b, 0) / ok.length;
}

/**
 * Compares the last third of `values` with the middle third. Fewer than 6 values cannot show a
 * trend: they count as not levelled.
 */
export function levelling(series: Series, slack: number): Levelling {
  const n = series.values.length;
  const third = Math.floor(n / 3);
  const middle = series.values.slice(third, 2 * third);
  const last = series.values.slice(n - third);
  const middleMean = mean(middle);
  const lastMean = mean(last);
  const growth = middleMean > 0 ? lastMean / middleMean - 1 : lastMean > 0 ? Infinity : 0;
  const levelled = n >= 6 && Number.isFinite(lastMean) && Number.isFinite(middleMean) && (growth <= LEVEL_TOLERANCE || lastMean - middleMean <= slack);
  return { name: series.name, middleMean, lastMean, growth, levelled, samples: n };
}

/** The series a run is judged on: every process's RSS, etcd's db in use, the cell's keys. */
export function churnSeries(samples: readonly ChurnSample[]): { series: Series; slack: number }[] {
  return [
    ...CHURN_PROCESSES.map((p) => ({ series: { name: `RSS ${p}`, unit: 'bytes' as const, values: samples.map((s) => s.rssBytes[p]) }, slack: LEVEL_SLACK.rssBytes })),
    { series: { name: 'etcd db in use', unit: 'bytes', values: samples.map((s) => s.etcdDbInUseBytes) }, slack: LEVEL_SLACK.dbBytes },
    { series: { name: 'keys in the cell', unit: 'keys', values: samples.map((s) => s.totalKeys) }, slack: LEVEL_SLACK.keys },
  ];
}

const fmt = (unit: Series['unit'], v: number): string => (unit === 'bytes' ? `${(v / 1024 ** 2).toFixed(1)} MiB` : int(v));

/** The levelling of every series, and (given the run's end state) that no claim outlived its task. */
export function churnChecks(samples: readonly ChurnSample[], end?: { readonly orphanClaims: number; readonly claims: number }): CheckResult[] {
  const orphans: CheckResult[] =
    end === undefined ? [] : [{ name: 'no claim points at a deleted task', pass: end.orphanClaims === 0, detail: `${end.orphanClaims} of the ${end.claims} claims left on machine records at the end have no task record` }];
  return [...orphans, ...levelled(samples)];
}

function levelled(samples: readonly ChurnSample[]): CheckResult[] {
  return churnSeries(samples).map(({ series, slack }) => {
    const l = levelling(series, slack);
    return {
      name: `${series.name} levels off`,
      pass: l.levelled,
      detail: `last third ${fmt(series.unit, l.lastMean)} vs middle third ${fmt(series.unit, l.middleMean)} (${l.growth >= 0 ? '+' : ''}${(l.growth * 100).toFixed(0)}%; levelled: at most +${LEVEL_TOLERANCE * 100}% or +${fmt(series.unit, slack)}; ${l.samples} samples)`,
    };
  });
}

export function churnMarkdown(samples: readonly ChurnSample[]): string {
  const mib = (b: number): string => (b / 1024 ** 2).toFixed(1);
  const rows = samples.map((s) => [
    int(s.jobsDone),
    s.elapsedS.toFixed(0),
    ...CHURN_PROCESSES.map((p) => mib(s.rssBytes[p])),
    mib(s.etcdDbInUseBytes),
    mib(s.etcdDbTotalBytes),
    int(s.totalKeys),
    `${int(s.keys.job ?? 0)} / ${int(s.keys.task ?? 0)} / ${int(s.keys.status ?? 0)} / ${int(s.keys.request ?? 0)}`,
  ]);
  return table(['jobs done', 's', ...CHURN_PROCESSES.map((p) => `RSS ${p} MiB`), 'etcd db in use MiB', 'etcd db file MiB', 'keys', 'jobs / tasks / status / requests'], rows);
}

export function churnChart(samples: readonly ChurnSample[]): ChartSpec {
  return {
    title: 'Churn: state while jobs keep coming and going (live)',
    xLabel: 'jobs done',
    xLog: false,
    columns: 3,
    panels: [
      { title: 'Resident memory', yLabel: 'MiB', points: samples.flatMap((s) => CHURN_PROCESSES.map((p) => ({ x: s.jobsDone, y: s.rssBytes[p] / 1024 ** 2, series: p }))) },
      {
        title: 'etcd database',
        yLabel: 'MiB',
        points: samples.flatMap((s) => [
          { x: s.jobsDone, y: s.etcdDbInUseBytes / 1024 ** 2, series: 'in use' },
          { x: s.jobsDone, y: s.etcdDbTotalBytes / 1024 ** 2, series: 'file (no defragmentation)' },
        ]),
      },
      { title: 'Keys in the cell', yLabel: 'keys', points: samples.map((s) => ({ x: s.jobsDone, y: s.totalKeys, series: 'keys' })) },
    ],
  };
}
