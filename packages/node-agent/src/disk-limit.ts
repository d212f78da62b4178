/**
 * The bound on a task's work dir: how many bytes its files may have allocated on disk and how
 * many entries (inodes) it may hold, and how often that is measured.
 *
 * The supervisor enforces it (native/omega-supervisor.c, "the work dir's disk use"): every
 * check interval it walks the work dir descriptor-relative without following links or crossing
 * mounts, adds up `st_blocks` (a sparse file counts what it uses) and the entries, and past a
 * limit kills the task; `exit.json` then says `reason: disk-exceeded` and the attempt ends
 * `failed` with reason {@link DISK_EXCEEDED}. The agent only chooses the numbers.
 */

/** Default most bytes a task's work dir may have allocated (`--disk-limit`): 10 GiB. */
export const DEFAULT_DISK_LIMIT_BYTES = 10 * 1024 ** 3;
/** Default most entries (files, directories, links) a task's work dir may hold (`--disk-inodes`). */
export const DEFAULT_DISK_MAX_ENTRIES = 1_000_000;
/** Default time between two measurements of a work dir (`--disk-check-ms`); none at start. */
export const DEFAULT_DISK_CHECK_MS = 5_000;
/** The shortest check interval the supervisor accepts. */
export const MIN_DISK_CHECK_MS = 10;

/** The failure reason of a task whose work dir went past its bound (the supervisor killed it). */
export const DISK_EXCEEDED = 'disk-exceeded';

/** What one task's supervisor enforces on its work dir; a limit of 0 is none. */
export interface DiskBound {
  readonly limitBytes: number;
  readonly maxEntries: number;
  readonly checkIntervalMs: number;
}

/**
 * A task's work-dir byte limit: the job's `diskLimitBytes` when it sets one, but never more than
 * the agent's `--disk-limit` (as a job's `logLimitBytes` is held to `--log-cap`); the agent's
 * when the job sets none. An agent limit of 0 (none) leaves the job's own as the only one.
 */
export function taskDiskLimit(jobLimitBytes: number | undefined, agentLimitBytes: number): number {
  if (jobLimitBytes === undefined || jobLimitBytes <= 0) return agentLimitBytes;
  return agentLimitBytes <= 0 ? jobLimitBytes : Math.min(jobLimitBytes, agentLimitBytes);
}

/** The bound of one task, or undefined when nothing is limited (the supervisor then never walks). */
export function taskDiskBound(jobLimitBytes: number | undefined, agent: DiskBound): DiskBound | undefined {
  const limitBytes = taskDiskLimit(jobLimitBytes, agent.limitBytes);
  if (limitBytes <= 0 && agent.maxEntries <= 0) return undefined;
  return { limitBytes, maxEntries: agent.maxEntries, checkIntervalMs: agent.checkIntervalMs };
}
