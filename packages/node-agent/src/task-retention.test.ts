import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TASK_FILES } from './task-files.js';
import { removeExpiredTasks, sweepIntervalMs } from './task-retention.js';

const HOUR = 3600_000;
let root = '';
afterEach(() => {
  if (root !== '') rmSync(root, { recursive: true, force: true });
});

/** A task attempt directory with a log and, when `reportedAtMs` is given, the reported marker. */
function attempt(name: string, reportedAtMs?: number): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, TASK_FILES.stdout), 'output\n');
  if (reportedAtMs !== undefined) writeFileSync(join(dir, TASK_FILES.reported), JSON.stringify({ state: 'succeeded', outcome: 'written', atMs: reportedAtMs }));
  return dir;
}

describe('task retention', () => {
  it('removes only directories whose end was reported longer ago than the retention', async () => {
    root = mkdtempSync(join(tmpdir(), 'omega-retention-'));
    const now = 100 * HOUR;
    const expired = attempt('old~0~1', now - 25 * HOUR);
    const exactly = attempt('edge~0~1', now - 24 * HOUR);
    const recent = attempt('recent~0~1', now - 1 * HOUR);
    const running = attempt('running~0~1');
    const foreign = attempt('not a task', now - 100 * HOUR);
    expect(await removeExpiredTasks(root, 24 * HOUR, now, pino({ level: 'silent' }))).toBe(2);
    expect(existsSync(expired)).toBe(false);
    expect(existsSync(exactly)).toBe(false);
    expect(existsSync(recent)).toBe(true);
    expect(existsSync(running)).toBe(true);
    expect(existsSync(foreign)).toBe(true);
  });

  it('does nothing when the tasks directory does not exist yet', async () => {
    expect(await removeExpiredTasks(join(tmpdir(), 'omega-retention-missing-dir'), HOUR, Date.now(), pino({ level: 'silent' }))).toBe(0);
  });

  it('sweeps four times per retention, between once a second and every ten minutes', () => {
    expect(sweepIntervalMs(100)).toBe(1_000);
    expect(sweepIntervalMs(60_000)).toBe(15_000);
    expect(sweepIntervalMs(24 * HOUR)).toBe(600_000);
  });
});
