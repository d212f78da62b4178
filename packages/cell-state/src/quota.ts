/**
 * What a namespace uses, and whether a quota allows more: the one rule, used by the API's
 * admission (Cell.submitJob), by SetQuota (a quota below use is refused) and by the views
 * (GetQuota, ListNamespaces), so all of them count the same way.
 *
 * ```
 *   job of the namespace ──► ended? ──yes──► holds nothing
 *                              │no
 *                              ▼
 *   each instance 0..n-1: never placed / placed / running  ──► counts (resources, 1 task)
 *                         ended, and will be placed again  ──► counts (restart, replacement)
 *                         ended for good                   ──► does not count
 * ```
 *
 * A job has ended when its desired state is `killed` and none of its tasks is still live
 * (killed-and-stopped), or when its scheduler said it ended (status succeeded, failed or
 * killed) and none is live. A task waiting in its restart backoff, a lost or a preempted one is
 * terminal but will be placed again without another admission, so it keeps counting: counting
 * it out would let another job in that the restart then pushes over the quota. The rule errs on
 * the side of counting: a task that will not restart because its `maxRestarts` ran out counts
 * until the scheduler marks the job failed.
 *
 * Pure functions of one {@link CellSnapshot}; nothing here reads the store.
 */
import type { CellSnapshot } from './cell-snapshot.js';
import { formatBytes } from './quantity.js';
import { isReplacedTask, isTerminal, type Job, type JobSpec, type Quota, type RestartPolicyKind, type Task } from './types.js';

/** What a namespace (or one job) holds: the same three resources as a {@link Quota}. */
export type Usage = Quota;

export const NO_USAGE: Usage = Object.freeze({ cpuMillis: 0, memoryBytes: 0, tasks: 0 });

/** The quota's resources, as named in errors and views. */
export type QuotaResource = 'cpu' | 'memory' | 'tasks';
export const QUOTA_RESOURCES: readonly QuotaResource[] = ['cpu', 'memory', 'tasks'];

const FIELD: Readonly<Record<QuotaResource, keyof Quota>> = { cpu: 'cpuMillis', memory: 'memoryBytes', tasks: 'tasks' };

/** One resource's amount in a quota or use. */
export function amountOf(q: Quota, resource: QuotaResource): number {
  return q[FIELD[resource]];
}

/** Whether a quota limits nothing (every field 0): such a quota is no quota. */
export function isUnlimited(quota: Quota): boolean {
  return quota.cpuMillis === 0 && quota.memoryBytes === 0 && quota.tasks === 0;
}

function effectiveRestart(job: Job): Exclude<RestartPolicyKind, 'default'> {
  const kind = job.spec.restartPolicy.kind;
  if (kind !== 'default') return kind;
  return job.spec.kind === 'service' ? 'always' : 'never';
}

/**
 * Whether a terminal task of a job that has not ended will stay as it is (the scheduler's
 * restart table, without `maxRestarts`: see this file's header).
 */
function endedForGood(task: Task, job: Job): boolean {
  const policy = effectiveRestart(job);
  if (task.state === 'succeeded') return policy !== 'always';
  // Stopped by its scheduler to be placed again (a rolling update, a drain, a scale back up): live.
  if (isReplacedTask(task)) return false;
  // Lost or preempted: not the task's fault; replaced unless the job's policy says never itself.
  if (task.state === 'lost' || (task.state === 'killed' && task.reason === 'preempted')) return job.spec.kind === 'batch' && job.spec.restartPolicy.kind === 'never';
  return policy === 'never';
}

/** How many instances of a job count against its namespace in `snapshot` (see this file's header). */
export function countedTasks(snapshot: CellSnapshot, job: Job): number {
  // A cron job's template runs nothing itself: each run is a job of its own, admitted and counted apart.
  if (job.spec.schedule !== undefined) return 0;
  const byIndex = new Map<number, Task>();
  for (const task of snapshot.tasksOf(job.id)) if (task.index >= 0 && task.index < job.spec.instances) byIndex.set(task.index, task);
  let live = 0;
  for (const task of byIndex.values()) if (!isTerminal(task.state)) live++;
  if (job.desired === 'killed') return live;
  const status = snapshot.status(job.id)?.state;
  if (live === 0 && (status === 'succeeded' || status === 'failed' || status === 'killed')) return 0;
  let counted = 0;
  for (let index = 0; index < job.spec.instances; index++) {
    const task = byIndex.get(index);
    if (task === undefined || !isTerminal(task.state) || !endedForGood(task, job)) counted++;
  }
  return counted;
}

/** What `tasks` instances of a spec hold. */
function usageOf(spec: JobSpec, tasks: number): Usage {
  return { cpuMillis: tasks * spec.task.resources.cpuMillis, memoryBytes: tasks * spec.task.resources.memoryBytes, tasks };
}

/** What a new job of this spec asks of its namespace: every instance (a cron job's template: nothing; its runs ask). */
export function jobDemand(spec: JobSpec): Usage {
  return usageOf(spec, spec.schedule === undefined ? spec.instances : 0);
}

/** What one job holds against its namespace in `snapshot`. */
export function jobUsage(snapshot: CellSnapshot, job: Job): Usage {
  return usageOf(job.spec, countedTasks(snapshot, job));
}

export function addUsage(a: Usage, b: Usage): Usage {
  return { cpuMillis: a.cpuMillis + b.cpuMillis, memoryBytes: a.memoryBytes + b.memoryBytes, tasks: a.tasks + b.tasks };
}

/**
 * Every snapshot's uses, computed once: a snapshot is immutable, and finding one namespace's use
 * already walks every job, so the admissions and views judged on one snapshot share one walk.
 */
const usesOfSnapshot = new WeakMap<CellSnapshot, ReadonlyMap<string, Usage>>();

/** What a namespace uses in `snapshot`: the sum of {@link jobUsage} over its jobs. */
export function namespaceUsage(snapshot: CellSnapshot, namespace: string): Usage {
  return usageByNamespace(snapshot).get(namespace) ?? NO_USAGE;
}

/** Every namespace's use in one pass over the jobs (namespaces with no jobs are absent); cached per snapshot. */
export function usageByNamespace(snapshot: CellSnapshot): ReadonlyMap<string, Usage> {
  const cached = usesOfSnapshot.get(snapshot);
  if (cached !== undefined) return cached;
  const out = new Map<string, Usage>();
  for (const job of snapshot.jobs()) out.set(job.spec.namespace, addUsage(out.get(job.spec.namespace) ?? NO_USAGE, jobUsage(snapshot, job)));
  usesOfSnapshot.set(snapshot, out);
  return out;
}

/** One resource over a quota: what was asked, what was in use, and the limit. */
export interface QuotaExcess {
  readonly namespace: string;
  readonly resource: QuotaResource;
  /** What the refused request adds (0 for a quota set below use). */
  readonly requested: number;
  readonly used: number;
  readonly quota: number;
}

/**
 * The first resource (cpu, memory, tasks) for which `used + requested` exceeds a limited
 * (non-zero) field of `quota`; undefined when the quota allows it. With `requested` = nothing,
 * whether a quota is below the current use.
 */
export function quotaExcess(namespace: string, quota: Quota, used: Usage, requested: Usage = NO_USAGE): QuotaExcess | undefined {
  for (const resource of QUOTA_RESOURCES) {
    const limit = amountOf(quota, resource);
    if (limit === 0) continue;
    const want = amountOf(requested, resource);
    const have = amountOf(used, resource);
    if (have + want > limit) return { namespace, resource, requested: want, used: have, quota: limit };
  }
  return undefined;
}

/** An amount in the resource's unit: `3000m`, `512Mi`, `4`. */
export function formatAmount(resource: QuotaResource, amount: number): string {
  switch (resource) {
    case 'cpu':
      return `${amount}m`;
    case 'memory':
      return formatBytes(amount);
    case 'tasks':
      return String(amount);
  }
}

/**
 * The refusal as one line: `namespace "a": cpu 3000m requested + 8000m in use exceeds the quota
 * of 10000m`; for a quota below use: `namespace "a": cpu quota of 2000m is below the 3000m in use`.
 */
export function describeExcess(e: QuotaExcess, kind: 'admission' | 'below-use' = 'admission'): string {
  const f = (n: number): string => formatAmount(e.resource, n);
  if (kind === 'below-use') return `namespace ${JSON.stringify(e.namespace)}: ${e.resource} quota of ${f(e.quota)} is below the ${f(e.used)} in use`;
  return `namespace ${JSON.stringify(e.namespace)}: ${e.resource} ${f(e.requested)} requested + ${f(e.used)} in use exceeds the quota of ${f(e.quota)}`;
}
