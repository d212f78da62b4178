/**
 * Retention of finished task directories. A task attempt's directory keeps its stdout and stderr
 * after it ends, so `omega logs` can serve them; once its end was reported (the `reported` marker)
 * and `retentionMs` has passed since, the directory goes. Directories of attempts still running,
 * or whose end is not reported yet, are never touched, nor entries that are not task attempts.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readJson, TASK_FILES, type ReportedRecord } from './task-files.js';
import { insideRoot, isTaskInstanceName } from './task-paths.js';

/** Default: finished tasks' logs are kept for a day. */
export const DEFAULT_TASK_RETENTION_MS = 24 * 3600_000;

/** Removes the directories under `tasksRoot` reported ended at or before `nowMs - retentionMs`; resolves with how many. */
export async function removeExpiredTasks(tasksRoot: string, retentionMs: number, nowMs: number, logger: Logger): Promise<number> {
  let removed = 0;
  const names = await readdir(tasksRoot).catch(() => [] as string[]);
  for (const name of names) {
    if (!isTaskInstanceName(name)) continue;
    const dir = insideRoot(tasksRoot, name);
    let reported: ReportedRecord | undefined;
    try {
      reported = readJson<ReportedRecord>(join(dir, TASK_FILES.reported));
    } catch {
      reported = undefined;
    }
    if (reported === undefined || !Number.isFinite(reported.atMs) || reported.atMs > nowMs - retentionMs) continue;
    try {
      await rm(dir, { recursive: true, force: true });
      removed++;
    } catch (error) {
      logger.warn({ err: error, entry: name }, 'could not remove an expired task directory');
    }
  }
  if (removed > 0) logger.info({ removed, retentionMs }, 'removed expired task directories');
  return removed;
}

/** How often to sweep for a retention: a quarter of it, between 1 s and 10 min. */
export function sweepIntervalMs(retentionMs: number): number {
  return Math.min(600_000, Math.max(1_000, Math.floor(retentionMs / 4)));
}
