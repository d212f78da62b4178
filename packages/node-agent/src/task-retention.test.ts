import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TASK_FILES } from './task-files.js';
import { removeExpiredTasks, removeOldAttempts, sweepIntervalMs } from './task-retention.js';

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

  it('keeps only the newest attempts of a task when a new one starts, and never one not yet reported', async () => {
    root = mkdtempSync(join(tmpdir(), 'omega-attempts-'));
    const now = Date.now();
    for (let a = 1; a <= 9; a++) attempt(`loop~0~${a}`, a === 2 ? undefined : now);
    const sibling = attempt('loop~1~1', now);
    const other = attempt('loopy~0~1', now);
    const fresh = attempt('loop~0~10');
    // Attempt 10 starts: with 3 kept, it and attempts 9 and 8 stay.
    expect(await removeOldAttempts(root, 'loop/0', 10, 3, pino({ level: 'silent' }))).toBe(6);
    const left = [1, 2, 3, 4, 5, 6, 7, 8, 9].filter((a) => existsSync(join(root, `loop~0~${a}`)));
    // Attempt 2 never reported its end: left for its report (and for recovery).
    expect(left).toEqual([2, 8, 9]);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(sibling)).toBe(true);
    expect(existsSync(other)).toBe(true);
  });

  it('keeps a crash loop at a bounded number of directories however many attempts it makes', async () => {
    root = mkdtempSync(join(tmpdir(), 'omega-attempts-'));
    for (let a = 1; a <= 50; a++) {
      attempt(`crash~0~${a}`);
      await removeOldAttempts(root, 'crash/0', a, 3, pino({ level: 'silent' }));
      // The attempt ends and is reported before the next one starts.
      writeFileSync(join(root, `crash~0~${a}`, TASK_FILES.reported), JSON.stringify({ state: 'failed', outcome: 'updated', atMs: Date.now() }));
    }
    expect(readdirSync(root).sort()).toEqual(['crash~0~48', 'crash~0~49', 'crash~0~50']);
  });
});
