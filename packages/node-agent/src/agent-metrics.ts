/**
 * A node agent's figures on the metrics seam (`/metrics` of an agent process, hollow included),
 * read from what the agent keeps at scrape time:
 *
 * | metric | type | what |
 * |---|---|---|
 * | `omega_agent_tasks{state}` | gauge | tasks whose claim is on this agent's machines, by state (ended ones until the next commit there prunes their claim) |
 * | `omega_agent_attempts_local` | gauge | attempts this agent holds now (starting, running, stopping) |
 * | `omega_agent_task_starts_total` | counter | attempts started |
 * | `omega_agent_task_endings_total{reason}` | counter | attempts' ends reported, by reason (`oom-killed`, `disk-exceeded`, `health-check-failed`, `exited`, ...) |
 * | `omega_agent_tasks_fenced_total` | counter | attempts stopped because the machine's lease lapsed |
 * | `omega_agent_status_writes_total{kind="batch"\|"solo"}` | counter | status write requests to etcd |
 * | `omega_agent_status_updates_total` | counter | task updates those requests carried |
 * | `omega_agent_status_write_failures_total` | counter | status flushes that failed and were retried |
 * | `omega_agent_supervision_reserved_bytes` | gauge | memory held back from the tasks' limits for their supervisors |
 * | `omega_mirror_*` | see cell-state's mirror metrics | the agent's part of the cell |
 */
import { exposeMirrorMetrics, type Cell } from '@omega/cell-state';
import type { Metrics } from '@omega/metrics/seam';
import type { Agent } from './agent.js';
import { SUPERVISOR_OVERHEAD_BYTES } from './supervisor-command.js';

/** Registers the agent's metrics; they read nothing until the agent has started. */
export function exposeAgentMetrics(metrics: Metrics, agent: Agent, cell: Cell, options: { readonly hollow: boolean }): void {
  const started = (): boolean => {
    try {
      void agent.mirror;
      return true;
    } catch {
      return false;
    }
  };
  metrics.observed({ name: 'omega_agent_tasks', help: "Task records on this agent's machines, by state.", labelNames: ['state'], type: 'gauge' }, () => {
    if (!started()) return [];
    const snapshot = agent.mirror.snapshot();
    const byState = new Map<string, number>();
    // Through the machines' claims: the mirror holds our machines and their tasks, not every job.
    for (const machine of snapshot.machines()) {
      for (const claim of machine.claims) {
        const task = snapshot.task(claim.taskId);
        if (task !== undefined && task.claimId === claim.id) byState.set(task.state, (byState.get(task.state) ?? 0) + 1);
      }
    }
    return [...byState].map(([state, value]) => ({ labels: { state }, value }));
  });
  metrics.observed({ name: 'omega_agent_attempts_local', help: 'Attempts this agent holds now (starting, running or stopping).', type: 'gauge' }, () => [{ value: agent.attemptCount }]);
  metrics.observed({ name: 'omega_agent_task_starts_total', help: 'Task attempts started by this agent.', type: 'counter' }, () => [{ value: agent.counters.started }]);
  metrics.observed({ name: 'omega_agent_tasks_fenced_total', help: "Attempts stopped because the machine's lease lapsed (reported lost).", type: 'counter' }, () => [{ value: agent.counters.fenced }]);
  metrics.observed({ name: 'omega_agent_task_endings_total', help: 'Ends of attempts reported, by reason.', labelNames: ['reason'], type: 'counter' }, () =>
    started() ? [...agent.reporter.counters.endings].map(([reason, value]) => ({ labels: { reason }, value })) : [],
  );
  metrics.observed({ name: 'omega_agent_status_writes_total', help: 'Status write requests to etcd: batches of updates, and updates written alone.', labelNames: ['kind'], type: 'counter' }, () =>
    started()
      ? [
          { labels: { kind: 'batch' }, value: agent.reporter.counters.batches },
          { labels: { kind: 'solo' }, value: agent.reporter.counters.solo },
        ]
      : [],
  );
  metrics.observed({ name: 'omega_agent_status_updates_total', help: 'Task updates written.', type: 'counter' }, () => (started() ? [{ value: agent.reporter.counters.updates }] : []));
  metrics.observed({ name: 'omega_agent_status_write_failures_total', help: 'Status flushes that failed and were retried.', type: 'counter' }, () => (started() ? [{ value: agent.reporter.counters.failures }] : []));
  metrics.observed({ name: 'omega_agent_supervision_reserved_bytes', help: "Memory held back from running tasks' limits for their supervisors.", type: 'gauge' }, () => [
    { value: options.hollow ? 0 : agent.attemptCount * SUPERVISOR_OVERHEAD_BYTES },
  ]);
  metrics.observed({ name: 'omega_agent_up', help: 'Whether the agent has started (its mirror listed the cell).', type: 'gauge' }, () => [{ value: started() ? 1 : 0 }]);
  exposeMirrorMetrics(metrics, () => (started() ? agent.mirror : undefined), cell.kv, cell.keys);
}
