import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runReportCommand } from './report-command.js';
import type { BenchResult } from './result.js';

/** A committed run of the agent experiment (bench/figures), as the fixture: the report must take what a real run wrote. */
const AGENT_RUN = join(dirname(fileURLToPath(import.meta.url)), '..', 'figures', 'agent-live-warm', 'result.json');

describe('omega bench report', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('re-judges an agent run with the agent checks and rewrites its result.md and chart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-bench-report-'));
    await copyFile(AGENT_RUN, join(dir, 'result.json'));
    const stored = JSON.parse(await readFile(AGENT_RUN, 'utf8')) as BenchResult<{ phase: string; tasksPerSecond: number }>;
    const lines: string[] = [];
    const code = await runReportCommand(dir, (l) => lines.push(l));
    const rewritten = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as BenchResult;
    expect(rewritten.points).toEqual(stored.points);
    expect(rewritten.checks.map((c) => c.name)).toContain('agent jobs: ≥ 120 tasks/s end to end');
    expect(rewritten.checks.some((c) => c.name.startsWith('agent warm-up') && c.name.includes('tasks/s'))).toBe(false);
    // The exit code follows the checks: this run's `jobs` missed 120 tasks/s.
    const jobs = stored.points.find((p) => p.phase === 'jobs');
    expect(code).toBe(rewritten.checks.every((c) => c.pass) ? 0 : 1);
    expect(rewritten.checks.find((c) => c.name === 'agent jobs: ≥ 120 tasks/s end to end')?.pass).toBe((jobs?.tasksPerSecond ?? 0) >= 120);
    expect(await readFile(join(dir, 'result.md'), 'utf8')).toContain('| warm-up |');
    expect(await readFile(join(dir, 'agent-live.svg'), 'utf8')).toContain('1 warm-up, 2 jobs, 3 instances, 4 hold');
    expect(lines.at(-1)).toMatch(/^rewrote /);
  });
});
