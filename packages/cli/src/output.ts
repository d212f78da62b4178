/**
 * What the CLI prints: borderless tables for people (cli-table3), and `--json` as the camelCase
 * objects of `wire.ts` (pretty for single answers, one object per line for `watch`). Pure
 * functions of their input (and of `now`, for ages), so they are tested without a server.
 */
import { formatBytes, formatCpu } from '@omega/cell-state/vocabulary';
import type Table from 'cli-table3';
import { tableConstructor } from './lazy-require.js';
import type { DeploymentOutput, HealthCheckOutput, JobOutput, MachineOutput, NamespaceOutput, QuotaOutput, SchedulerOutput, TaskOutput, TaskState, TokenOutput, VersionOutput } from './wire.js';

/** A table without borders, columns two spaces apart, like `ps` or `kubectl get`. */
function table(head: string[]): InstanceType<typeof Table> {
  return new (tableConstructor())({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  });
}

/** A table's text with trailing spaces removed from every line. */
function render(t: InstanceType<typeof Table>): string {
  return t.toString().split('\n').map((line) => line.trimEnd()).join('\n');
}

/** A borderless table of plain rows (for `omega dev`'s process list). */
export function formatTable(head: string[], rows: readonly string[][]): string {
  const t = table(head);
  for (const row of rows) t.push([...row]);
  return render(t);
}

/** `3s`, `5m`, `2h`, `4d`: how long ago `ms` was, for people. */
export function age(ms: number, now: number): string {
  if (ms <= 0) return '-';
  return span(now - ms);
}

/** A length of time for people: `3s`, `5m`, `2h`, `4d`. */
function span(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

const TASK_ORDER: readonly TaskState[] = ['running', 'placed', 'pending', 'succeeded', 'failed', 'killed', 'lost'];

/** `2 running, 1 pending`: the non-zero task counts, live ones first. */
export function taskSummary(counts: Readonly<Record<TaskState, number>>): string {
  const parts = TASK_ORDER.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  return parts.length > 0 ? parts.join(', ') : '-';
}

/**
 * The jobs table. With `namespace` (the one namespace listed) the NAMESPACE column is left out,
 * as `kubectl get -n` does; a list over every visible namespace shows it.
 */
export function formatJobs(jobs: readonly JobOutput[], now: number, namespace?: string): string {
  if (jobs.length === 0) return namespace === undefined ? 'No jobs.' : `No jobs in namespace ${namespace}.`;
  const withNamespace = namespace === undefined;
  const t = table([...(withNamespace ? ['NAMESPACE'] : []), 'ID', 'NAME', 'KIND', 'STATE', 'TASKS', 'AGE', 'REASON']);
  for (const j of jobs) {
    const row = [j.id, j.name, j.kind, j.killRequested && j.state === 'running' ? 'killing' : j.state, taskSummary(j.taskCounts), age(j.submittedAtMs, now), j.reason];
    t.push(withNamespace ? [j.namespace, ...row] : row);
  }
  return render(t);
}

function exitText(task: TaskOutput): string {
  if (task.exitCode !== null) return String(task.exitCode);
  return task.signal !== '' ? task.signal : '-';
}

/** `version 3 running: 2/4 healthy, 3/4 updated`, `version 3 rolled-back: task 1 not healthy within 5m`. */
export function formatDeployment(d: DeploymentOutput): string {
  return `version ${d.version} ${d.state}: ${d.healthy}/${d.total} healthy, ${d.updated}/${d.total} updated${d.reason === '' ? '' : ` (${d.reason})`}`;
}

/** `omega history`: one line per version, newest first. */
export function formatHistory(versions: readonly VersionOutput[]): string {
  const t = table(['VERSION', 'WHEN', 'BY', 'CHANGE']);
  for (const v of versions) t.push([`${v.version}${v.current ? ' (current)' : ''}`, v.atMs > 0 ? new Date(v.atMs).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-', v.by === '' ? '-' : v.by, v.change === '' ? '-' : v.change]);
  return render(t);
}

/** `http 127.0.0.1:8080/healthz every 10s (timeout 1s, grace 0s, 3 failures stop it)`. */
export function formatHealthCheck(c: HealthCheckOutput): string {
  const what = c.kind === 'http' ? `http 127.0.0.1:${c.port}${c.path}` : c.kind === 'tcp' ? `tcp 127.0.0.1:${c.port}` : `command ${c.command.map((a) => (/^[\w./:=@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}`;
  const s = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return `${what} every ${s(c.intervalMs)} (timeout ${s(c.timeoutMs)}, grace ${s(c.gracePeriodMs)}, ${c.failureThreshold} failure${c.failureThreshold === 1 ? '' : 's'} in a row stop it)`;
}

export function formatJob(job: JobOutput, now: number): string {
  const lines = [
    `Job:        ${job.id}`,
    `Name:       ${job.name}`,
    `Namespace:  ${job.namespace}`,
    `Kind:       ${job.kind}`,
    `Version:    ${job.version}`,
    `State:      ${job.state}${job.killRequested && job.state === 'running' ? ' (kill requested)' : ''}${job.reason === '' ? '' : ` (${job.reason})`}`,
    `Instances:  ${job.instances}, each ${formatCpu(job.spec.cpuMillis)} CPU, ${formatBytes(job.spec.memoryBytes)} memory`,
    `Command:    ${job.spec.command.length > 0 ? job.spec.command.map((a) => (/^[\w./:=@%+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ') : '-'}`,
    ...(job.spec.secretEnvNames.length > 0 ? [`Secret env: ${job.spec.secretEnvNames.join(', ')} (values are write-only)`] : []),
    `Submitted:  ${job.submittedAtMs > 0 ? `${new Date(job.submittedAtMs).toISOString()} (${age(job.submittedAtMs, now)} ago)` : '-'}`,
    `Scheduler:  ${job.scheduler === '' ? '-' : job.scheduler}`,
  ];
  if (job.spec.healthCheck !== null) lines.push(`Health:     ${formatHealthCheck(job.spec.healthCheck)}`);
  if (job.ruledOut.length > 0) lines.push(`Ruled out:  ${job.ruledOut.map((r) => `${r.filter}: ${r.machines} machine(s)`).join(', ')}`);
  if (job.deployment !== null) lines.push(`Deployment: ${formatDeployment(job.deployment)}`);
  if (job.cron !== null) {
    const c = job.cron;
    lines.push(`Schedule:   ${c.schedule} (${c.timeZone}), concurrency ${c.concurrency}${c.startingDeadlineMs > 0 ? `, starting deadline ${c.startingDeadlineMs / 1000}s` : ''}`);
    lines.push(`Runs:       ${c.runs} made, ${c.skipped} skipped${c.lastSkipReason === '' ? '' : ` (last: ${c.lastSkipReason})`}; next ${c.nextRunAtMs > 0 ? new Date(c.nextRunAtMs).toISOString() : '-'} (omega runs ${job.id})`);
  }
  if (job.cronRun !== null) lines.push(`Run of:     ${job.cronRun.templateId}, scheduled for ${new Date(job.cronRun.scheduledAtMs).toISOString()}`);
  if (job.tasks.length === 0) return lines.join('\n');
  // A HEALTH column only for jobs with a health check (or health on record): `passing 2m`.
  const health = job.spec.healthCheck !== null || job.tasks.some((task) => task.health !== null);
  const t = table(['INDEX', 'STATE', ...(health ? ['HEALTH'] : []), 'MACHINE', 'ATTEMPT', 'VERSION', 'RESTARTS', 'EXIT', 'REASON', 'STARTED', 'CPU-S', 'PEAK-MEM']);
  for (const task of job.tasks) {
    t.push([
      String(task.index),
      task.state,
      ...(health ? [task.health === null ? '-' : task.healthSinceMs > 0 ? `${task.health} ${age(task.healthSinceMs, now)}` : task.health] : []),
      task.machine === '' ? '-' : task.machine,
      task.attempt === 0 ? '-' : String(task.attempt),
      task.version === 0 ? '-' : String(task.version),
      String(task.restarts),
      exitText(task),
      task.reason === '' ? '-' : task.reason,
      task.startedAtMs > 0 ? `${age(task.startedAtMs, now)} ago` : '-',
      task.cpuSeconds > 0 ? task.cpuSeconds.toFixed(2) : '-',
      task.peakMemoryBytes > 0 ? formatBytes(task.peakMemoryBytes) : '-',
    ]);
  }
  // The agents' words on why attempts ended, in full under the table (up to 512 characters each).
  const messages = job.tasks.filter((task) => task.message !== '').map((task) => `  ${task.index}  ${task.reason === '' ? task.state : task.reason}: ${task.message}`);
  return `${lines.join('\n')}\n\n${render(t)}${messages.length === 0 ? '' : `\n\nMessages:\n${messages.join('\n')}`}`;
}

function share(used: number, total: number, format: (n: number) => string): string {
  const pct = total > 0 ? Math.round((used / total) * 100) : 0;
  return `${format(used)}/${format(total)} (${pct}%)`;
}

/** `yes`, `no (agent stopping)`, `cordoned (disk swap)`, `draining until 2026-12-01T18:00:00Z`. */
function schedulability(m: MachineOutput): string {
  if (!m.schedulable) return `no${m.unschedulableReason === '' ? '' : ` (${m.unschedulableReason})`}`;
  if (m.cordon === null) return 'yes';
  const why = m.cordon.reason === '' ? '' : ` (${m.cordon.reason})`;
  if (m.cordon.drainDeadlineMs > 0) return `draining until ${new Date(m.cordon.drainDeadlineMs).toISOString().replace(/\.\d{3}Z$/, 'Z')}${why}`;
  return `cordoned${why}`;
}

export function formatMachines(machines: readonly MachineOutput[]): string {
  if (machines.length === 0) return 'No machines.';
  const t = table(['ID', 'ALIVE', 'SCHEDULABLE', 'CPU', 'MEMORY', 'TASKS', 'ATTRIBUTES']);
  for (const m of machines) {
    const notes = [m.hollow ? 'hollow' : '', m.enforcementDisabled ? 'no-limits' : ''].filter((n) => n !== '');
    const attributes = Object.entries(m.attributes).map(([k, v]) => `${k}=${v}`);
    t.push([
      m.id,
      m.alive ? 'yes' : 'no',
      schedulability(m),
      share(m.allocated.cpuMillis, m.capacity.cpuMillis, formatCpu),
      share(m.allocated.memoryBytes, m.capacity.memoryBytes, formatBytes),
      String(m.tasks),
      [...attributes, ...notes].join(',') || '-',
    ]);
  }
  return render(t);
}

export function formatStats(schedulers: readonly SchedulerOutput[]): string {
  if (schedulers.length === 0) return 'No scheduler has published statistics yet.';
  const t = table(['NAME', 'KIND', 'CONFLICT-MODE', 'TXNS', 'CONFLICTS', 'CONFLICT-FRACTION', 'BUSYNESS', 'PLACED', 'ABANDONED']);
  for (const s of schedulers) {
    t.push([s.name, s.kind, s.conflictMode, String(s.transactions), String(s.conflicts), s.conflictFraction.toFixed(3), `${(s.busyness * 100).toFixed(1)}%`, String(s.jobsPlaced), String(s.jobsAbandoned)]);
  }
  return render(t);
}

/** One watch event as one line: `<time>  <job id>  <state>  <tasks>  [reason]`. */
export function formatWatchEvent(job: JobOutput, at: number): string {
  const time = new Date(at).toISOString().slice(11, 19);
  const state = job.killRequested && job.state === 'running' ? 'killing' : job.state;
  const failed = job.tasks.filter((t) => (t.state === 'failed' || t.state === 'killed' || t.state === 'lost') && t.reason !== '');
  const reasons = [...new Set(failed.map((t) => t.reason))];
  const reason = job.reason !== '' ? job.reason : reasons.join(', ');
  // The job's last rolling update says where it stands.
  const rollout = job.deployment === null ? '' : `  [update ${formatDeployment(job.deployment)}]`;
  return `${time}  ${job.id}  ${state}  ${taskSummary(job.taskCounts)}${reason === '' ? '' : `  (${reason})`}${rollout}`;
}

/** `in 29d`, `expired 2h ago`, `never`: when a token expires, for people. */
export function expiry(ms: number, now: number): string {
  if (ms <= 0) return 'never';
  if (ms <= now) return `expired ${age(ms, now)} ago`;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z (in ${span(ms - now)})`;
}

const roleNamespaces = (t: TokenOutput): string => (t.namespaces.length === 1 && t.namespaces[0] === '*' ? '* (every namespace)' : t.namespaces.join(','));

export function formatTokens(tokens: readonly TokenOutput[], now: number): string {
  if (tokens.length === 0) return 'No tokens.';
  const t = table(['NAME', 'ROLE', 'NAMESPACES', 'EXPIRES', 'AGE']);
  for (const token of tokens) t.push([token.name, token.role, roleNamespaces(token), expiry(token.expiresAtMs, now), age(token.createdAtMs, now)]);
  return render(t);
}

/** `omega whoami`: the caller's own token (never its secret). */
export function formatWhoami(token: TokenOutput, now: number): string {
  return [`Token:      ${token.name}`, `Role:       ${token.role}`, `Namespaces: ${roleNamespaces(token)}`, `Expires:    ${expiry(token.expiresAtMs, now)}`].join('\n');
}

/** `used/limit` of one resource; a limit of 0 (or no quota) is `-`, i.e. unlimited. */
function quotaCell(used: number, limit: number | undefined, format: (n: number) => string): string {
  return `${format(used)}/${limit === undefined || limit === 0 ? '-' : format(limit)}`;
}

export function formatNamespaces(namespaces: readonly NamespaceOutput[], now: number): string {
  if (namespaces.length === 0) return 'No namespaces.';
  const t = table(['NAME', 'CPU', 'MEMORY', 'TASKS', 'AGE']);
  for (const n of namespaces) {
    t.push([
      n.name,
      quotaCell(n.used.cpuMillis, n.quota?.cpuMillis, formatCpu),
      quotaCell(n.used.memoryBytes, n.quota?.memoryBytes, formatBytes),
      quotaCell(n.used.tasks, n.quota?.tasks, String),
      age(n.createdAtMs, now),
    ]);
  }
  return `${render(t)}\n(used/quota; - is no limit)`;
}

/** `omega quota get NS`: one row per resource, what the namespace's live jobs use against its quota. */
export function formatQuota(namespace: NamespaceOutput): string {
  const limit = (q: QuotaOutput | null, field: keyof QuotaOutput, format: (n: number) => string): string => (q === null || q[field] === 0 ? 'no limit' : format(q[field]));
  const t = table(['RESOURCE', 'USED', 'QUOTA']);
  t.push(['cpu', formatCpu(namespace.used.cpuMillis), limit(namespace.quota, 'cpuMillis', formatCpu)]);
  t.push(['memory', formatBytes(namespace.used.memoryBytes), limit(namespace.quota, 'memoryBytes', formatBytes)]);
  t.push(['tasks', String(namespace.used.tasks), limit(namespace.quota, 'tasks', String)]);
  return `Namespace: ${namespace.name}${namespace.quota === null ? ' (no quota)' : ''}\n${render(t)}`;
}

/** `--json`: an answer as indented JSON. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
