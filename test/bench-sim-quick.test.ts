/**
 * `omega bench sim` end to end at a tiny scale: E1's quick sweep on a 500-machine cell (rates
 * scaled to it), through the same entry point the CLI calls. Checks what a run must leave behind
 * (result.json with every point and check, result.md, the SVG chart) and that the built-in
 * checks hold. No etcd needed.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBench, type BenchResult } from '@omega/bench';

describe('omega bench sim (quick, tiny)', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('runs E1 end to end, writes result.json, result.md and the chart, and its checks pass', async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-bench-sim-'));
    const out = join(dir, 'e1');
    const lines: string[] = [];
    const code = await runBench(['sim', '--experiment', 'E1', '--quick', '--machines', '500', '--hours', '2', '--seed', '5', '--jobs', '1', '--out', out], (l) => lines.push(l), (l) => lines.push(`stderr: ${l}`));
    expect(lines.filter((l) => l.startsWith('FAIL') || l.startsWith('stderr'))).toEqual([]);
    expect(code).toBe(0);

    const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8')) as BenchResult<{ arm: string; result: { schedulers: { metrics: { busyness: number } }[] } }>;
    expect(result.mode).toBe('sim');
    expect(result.experiment).toBe('E1');
    expect(result.seed).toBe(5);
    expect(result.configSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(result.host.node).toBe(process.version);
    // 4 t_job(service) values x 3 arms, every scheduler measured.
    expect(result.points).toHaveLength(12);
    expect(new Set(result.points.map((p) => p.arm))).toEqual(new Set(['monolithic', 'monolithic-fast-path', 'omega']));
    expect(result.points.every((p) => p.result.schedulers.every((s) => s.metrics.busyness >= 0))).toBe(true);
    const names = result.checks.map((c) => c.name);
    expect(names.some((n) => n.includes('metrics add up'))).toBe(true);
    expect(names.filter((n) => n.includes('monolithic busyness'))).toHaveLength(2);
    expect(result.checks.every((c) => c.pass)).toBe(true);
    // Every check is printed as a PASS line too.
    expect(lines.filter((l) => l.startsWith('PASS'))).toHaveLength(result.checks.length);

    const md = await readFile(join(out, 'result.md'), 'utf8');
    expect(md).toContain('# E1: architectures vs t_job(service)');
    expect(md).toContain('## The paper beside ours');
    expect(md).toContain('![E1](e1-sim.svg)');
    const svg = await readFile(join(out, 'e1-sim.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect((await stat(join(out, 'e1-sim.svg'))).size).toBeGreaterThan(5_000);
  });
});
