/**
 * A service's rolling update policy (`JobSpec.update`): validation and the defaults applied to
 * fields left 0. The stepping itself is the owning scheduler's (scheduler-core deployment.ts).
 *
 * | field               | 0 / absent means | limits                                 |
 * |---------------------|------------------|----------------------------------------|
 * | `maxUnavailable`    | 1                | at most `instances` is used            |
 * | `maxSurge`          | 0                | only 0: refused otherwise (see below)  |
 * | `minHealthyTimeMs`  | 10 s             | at most 1 h, below the deadline        |
 * | `healthyDeadlineMs` | 5 min            | at most 24 h                           |
 * | `autoRollback`      | false            |                                        |
 *
 * Surge is refused rather than pretended: a task record holds one attempt of its index, so an
 * extra instance started before the one it replaces stops would need a second record per index
 * (or indexes beyond `instances`), which claims, quotas and agents do not know.
 */
import type { SpecProblem } from './job-spec.js';
import { DEFAULT_UPDATE_STRATEGY, type JobSpec, type UpdateStrategy } from './types.js';

/** Longest `minHealthyTimeMs`: an hour. */
export const MAX_MIN_HEALTHY_TIME_MS = 3_600_000;
/** Longest `healthyDeadlineMs`: a day. */
export const MAX_HEALTHY_DEADLINE_MS = 86_400_000;

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Problems of a job's `update` block, each naming its field (`<prefix>update.<field>`). */
export function updateStrategyProblems(update: UpdateStrategy | undefined, prefix = ''): SpecProblem[] {
  if (update === undefined) return [];
  const out: SpecProblem[] = [];
  const bad = (field: string, problem: string): void => {
    out.push({ field: `${prefix}update.${field}`, problem });
  };
  if (!isCount(update.maxUnavailable)) bad('maxUnavailable', 'must be an integer >= 0 (0: 1)');
  if (!isCount(update.maxSurge)) bad('maxSurge', 'must be an integer >= 0');
  else if (update.maxSurge > 0) {
    bad('maxSurge', 'must be 0: surge instances are not supported (a task holds one attempt of its index); use maxUnavailable to go faster');
  }
  if (!isCount(update.minHealthyTimeMs) || update.minHealthyTimeMs > MAX_MIN_HEALTHY_TIME_MS) {
    bad('minHealthyTimeMs', `must be an integer number of ms from 0 (10 s) to ${MAX_MIN_HEALTHY_TIME_MS} (1 h)`);
  }
  if (!isCount(update.healthyDeadlineMs) || update.healthyDeadlineMs > MAX_HEALTHY_DEADLINE_MS) {
    bad('healthyDeadlineMs', `must be an integer number of ms from 0 (5 min) to ${MAX_HEALTHY_DEADLINE_MS} (24 h)`);
  }
  if (typeof update.autoRollback !== 'boolean') bad('autoRollback', 'must be true or false');
  if (out.length === 0) {
    const resolved = resolveUpdateStrategy({ update, instances: Number.MAX_SAFE_INTEGER });
    if (resolved.minHealthyTimeMs >= resolved.healthyDeadlineMs) {
      bad('healthyDeadlineMs', `must be longer than minHealthyTimeMs (${resolved.minHealthyTimeMs} ms): an instance could never become healthy in time`);
    }
  }
  return out;
}

/** The update policy a job effectively uses: its block with 0s replaced by the defaults, `maxUnavailable` at most `instances`. */
export function resolveUpdateStrategy(spec: Pick<JobSpec, 'update' | 'instances'>): UpdateStrategy {
  const u = spec.update;
  const d = DEFAULT_UPDATE_STRATEGY;
  if (u === undefined) return { ...d, maxUnavailable: Math.max(1, Math.min(d.maxUnavailable, spec.instances)) };
  return {
    maxUnavailable: Math.max(1, Math.min(u.maxUnavailable > 0 ? u.maxUnavailable : d.maxUnavailable, spec.instances)),
    maxSurge: 0,
    minHealthyTimeMs: u.minHealthyTimeMs > 0 ? u.minHealthyTimeMs : d.minHealthyTimeMs,
    healthyDeadlineMs: u.healthyDeadlineMs > 0 ? u.healthyDeadlineMs : d.healthyDeadlineMs,
    autoRollback: u.autoRollback,
  };
}
