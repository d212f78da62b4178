import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderSvg, vegaLiteSpec } from './charts.js';
import { frac, ms, table } from './markdown.js';
import { canonicalJson, checkLine, configHash, hostInfo, writeResult, type BenchResult } from './result.js';
import { FlagError } from '@omega/cell-state';
import { parseBenchArgs, runBench } from './run-bench.js';
import { spearman } from './sim-checks.js';

describe('result writing', () => {
  it('hashes a config the same whatever the order of its keys, and differently when a value changes', () => {
    const a = { seed: 1, points: [{ x: 1, arm: 'omega' }], quick: true };
    const b = { quick: true, points: [{ arm: 'omega', x: 1 }], seed: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash({ ...a, seed: 2 })).not.toBe(configHash(a));
  });

  it('writes result.json, result.md and the charts into a new directory', async () => {
    const root = await mkdtemp(join(tmpdir(), 'omega-bench-'));
    const dir = join(root, 'nested', 'out');
    try {
      const result: BenchResult = {
        schema: 'omega-bench/1',
        mode: 'sim',
        experiment: 'E9',
        title: 'a test',
        quick: true,
        seed: 3,
        config: { a: 1 },
        configSha256: configHash({ a: 1 }),
        host: hostInfo(),
        startedAt: new Date(0).toISOString(),
        finishedAt: new Date(1000).toISOString(),
        wallSeconds: 1,
        points: [{ x: 1 }],
        checks: [{ name: 'a check', pass: true, detail: '1 = 1' }],
        paper: [],
        notes: [],
      };
      const svg = await renderSvg({ title: 't', xLabel: 'x', xLog: true, panels: [{ title: 'p', yLabel: 'y', points: [{ x: 0.1, y: 0, series: 's' }, { x: 10, y: 2, series: 's' }], rules: [{ y: 1, label: 'one' }] }] });
      const written = await writeResult(dir, result, '# md\n', new Map([['e9.svg', svg]]));
      expect(written.map((p) => p.slice(dir.length + 1))).toEqual(['result.json', 'result.md', 'e9.svg']);
      const json = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as BenchResult;
      expect(json.configSha256).toBe(result.configSha256);
      expect(json.host.cpus).toBeGreaterThan(0);
      expect(json.host.node).toBe(process.version);
      expect(await readFile(join(dir, 'e9.svg'), 'utf8')).toMatch(/^<svg[^>]+>/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('formats checks, tables and numbers for people', () => {
    expect(checkLine({ name: 'n', pass: false, detail: 'd' })).toBe('FAIL n: d');
    expect(table(['a', 'b|c'], [['1', '2']])).toBe('| a | b\\|c |\n|---|---|\n| 1 | 2 |\n');
    expect(frac(0)).toBe('0');
    expect(frac(0.01234)).toBe('0.0123');
    expect(frac(1.5)).toBe('1.500');
    expect(ms(850)).toBe('850 ms');
    expect(ms(12_300)).toBe('12.3 s');
    expect(ms(3 * 3600_000)).toBe('3.0 h');
  });

  it('draws charts with the sweep on the x axis, one panel per metric', () => {
    const spec = vegaLiteSpec({ title: 'E', xLabel: 't_job', xLog: true, columns: 2, panels: [{ title: 'a', yLabel: 'y', points: [] }, { title: 'b', yLabel: 'y', points: [], yLog: true }] });
    expect(spec.columns).toBe(2);
    expect((spec.concat as unknown[]).length).toBe(2);
    expect(JSON.stringify(spec)).toContain('"type":"log"');
  });

  it('ranks correlations for the E2 check', () => {
    expect(spearman([1, 2, 4, 8], [0, 0.1, 0.2, 0.5])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 4, 8], [0.5, 0.2, 0.1, 0])).toBeCloseTo(-1, 12);
    expect(spearman([1, 2, 3], [0, 0, 0])).toBe(0);
  });
});

describe('the command line', () => {
  it('parses a sim run with defaults', () => {
    const parsed = parseBenchArgs(['sim', '--experiment', 'E3', '--quick', '--out', '/tmp/x', '--jobs', '1']);
    expect(parsed).toMatchObject({ command: 'sim', options: { experiment: 'E3', quick: true, seed: 1, jobs: 1, out: '/tmp/x' } });
  });

  it('takes a live run\'s data directory as an absolute path', () => {
    const parsed = parseBenchArgs(['live', '--experiment', 'agent', '--out', '/tmp/x', '--data-dir', '.']);
    expect(parsed).toMatchObject({ command: 'live', options: { experiment: 'agent', dataDir: process.cwd() } });
  });

  it.each([
    [['sim', '--experiment', 'E9', '--out', 'x'], '--experiment'],
    [['sim', '--experiment', 'E1'], '--out'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--seed', '-1'], '--seed'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--hours', 'soon'], '--hours'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--tasks', '5'], '--tasks'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--bogus'], '--bogus'],
    [['live', '--experiment', 'E1', '--out', 'x'], '--experiment'],
    [['live', '--experiment', 'T1', '--out', 'x', '--schedulers', '1,0'], '--schedulers'],
    [['live', '--experiment', 'agent', '--out', 'x', '--data-dir', '/nonexistent/omega-bench'], '--data-dir'],
    [['live', '--experiment', 'agent', '--out', 'x', '--data-dir', '/etc/hostname'], '--data-dir'],
    [['sim', '--experiment', 'E1', '--out', 'x', '--data-dir', '/tmp'], '--data-dir'],
    [['fly'], 'mode'],
    [['report', '--out', 'x', '--quick'], '--quick'],
  ])('refuses %j naming %s', (argv, flag) => {
    expect(() => parseBenchArgs(argv)).toThrow(FlagError);
    try {
      parseBenchArgs(argv);
    } catch (error) {
      expect((error as FlagError).flag).toBe(flag);
    }
  });

  it('returns exit code 2 for a bad flag and prints the flag', async () => {
    const errors: string[] = [];
    const code = await runBench(['sim', '--experiment', 'E5', '--out', 'x'], () => undefined, (l) => errors.push(l));
    expect(code).toBe(2);
    expect(errors[0]).toMatch(/^omega bench: --experiment: must be one of E1, E2, E3, E4/);
  });
});
