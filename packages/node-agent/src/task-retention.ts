/**
 * Retention of finished task directories. A task attempt's directory keeps its stdout and stderr
 * after it ends, so `omega logs` can serve them; once its end was reported (the `reported` marker)
 * and `retentionMs` has passed since, the directory goes. Directories of attempts still running,
 * or whose end is not reported yet, are never touched, nor entries that are not task attempts.
 *
 * Besides the retention, a task restarted over and over (a crash loop) keeps only its newest
 * attempts' directories ({@link removeOldAttempts}, `--keep-attempts`).
 */
import { existsSync } from 'node:fs';
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

/** Default number of a task's attempt directories kept on a machine (the newest ones). */
export const DEFAULT_KEEP_ATTEMPTS = 3;

/**
 * Bounds a crash loop's footprint: when attempt `attempt` of `taskId` starts, removes the
 * directories (and logs) of that task's older attempts on this machine except the newest
 * `keep - 1` of them, so at most `keep` attempts of one task are on disk whatever the
 * retention. Only directories whose end was reported (`reported.json`) go: an older attempt
 * still running, stopping or not yet reported is left for its own report and for `recover`.
 * Resolves with how many directories were removed.
 */
export async function removeOldAttempts(tasksRoot: string, taskId: string, attempt: number, keep: number, logger: Logger): Promise<number> {
  const slash = taskId.lastIndexOf('/');
  // Attempts count from 0: fewer than `keep` older ones can exist, so none is over the bound,
  // and the tasks directory (one entry per attempt kept, thousands on a busy machine) is not
  // read at every start.
  if (slash <= 0 || keep < 1 || attempt < keep) return 0;
  // Names are `<job>~<index>~<attempt>` (task-paths.ts); `~` is in no job id.
  const prefix = `${taskId.slice(0, slash)}~${taskId.slice(slash + 1)}~`;
  const names = await readdir(tasksRoot).catch(() => [] as string[]);
  const older = names
    .filter((name) => name.startsWith(prefix) && isTaskInstanceName(name))
    .map((name) => ({ name, attempt: Number(name.slice(prefix.length)) }))
    .filter((a) => a.attempt < attempt)
    .sort((a, b) => b.attempt - a.attempt)
    .slice(keep - 1);
  let removed = 0;
  for (const { name } of older) {
    const dir = insideRoot(tasksRoot, name);
    if (!existsSync(join(dir, TASK_FILES.reported))) continue;
    try {
      await rm(dir, { recursive: true, force: true });
      removed++;
    } catch (error) {
      logger.warn({ err: error, entry: name }, 'could not remove an old attempt directory');
    }
  }
  if (removed > 0) logger.debug({ taskId, attempt, removed, keep }, 'removed old attempt directories');
  return removed;
}

/** How often to sweep for a retention: a quarter of it, between 1 s and 10 min. */
export function sweepIntervalMs(retentionMs: number): number {
  return Math.min(600_000, Math.max(1_000, Math.floor(retentionMs / 4)));
}
