/**
 * A stored JobSpec of @omega/cell-state → its wire form (for job views, and for clients that
 * submit a spec they parsed): the inverse of `jobSpecFromWire` (job-spec-wire.ts). Apart from
 * it so that clients get it without the server's validation code: this file imports only types
 * and the enum tables.
 */
import type { HealthCheck, JobSpec } from '@omega/cell-state';
import { COMMIT_MODE_WIRE, CONSTRAINT_OPERATOR_WIRE, CRON_CONCURRENCY_WIRE, JOB_KIND_WIRE, RESTART_POLICY_KIND_WIRE, type WireHealthCheck, type WireJobSpec } from './wire.js';

function healthCheckToWire(c: HealthCheck): WireHealthCheck {
  return {
    command: [...(c.command ?? [])],
    http: c.http === undefined ? null : { port: c.http.port, path: c.http.path },
    tcp: c.tcp === undefined ? null : { port: c.tcp.port },
    interval_ms: c.intervalMs ?? 0,
    timeout_ms: c.timeoutMs ?? 0,
    grace_period_ms: c.gracePeriodMs ?? 0,
    failure_threshold: c.failureThreshold ?? 0,
    hollow_failing: c.hollowFailing === true,
  };
}

/** A stored JobSpec in wire form: every field set (absent parts as their defaults or null). */
export function jobSpecToWire(spec: JobSpec): WireJobSpec {
  return {
    name: spec.name,
    kind: JOB_KIND_WIRE[spec.kind] ?? 'JOB_KIND_UNSPECIFIED',
    priority: spec.priority,
    instances: spec.instances,
    commit_mode: COMMIT_MODE_WIRE[spec.commitMode] ?? 'COMMIT_MODE_UNSPECIFIED',
    task: {
      command: [...spec.task.command],
      env: { ...spec.task.env },
      resources: { cpu_millis: spec.task.resources.cpuMillis, memory_bytes: spec.task.resources.memoryBytes },
      run_duration_ms: spec.task.runDurationMs,
      hollow_fail: spec.task.hollowFail,
      pids_limit: spec.task.pidsLimit,
      log_limit_bytes: spec.task.logLimitBytes ?? 0,
      disk_limit_bytes: spec.task.diskLimitBytes ?? 0,
      network: spec.task.network ?? '',
      user: spec.task.user ?? '',
      // The values never leave the cell's secret store through a read: names only.
      secret_env: {},
      secret_env_names: [...(spec.task.secretEnvNames ?? [])],
      health_check: spec.task.healthCheck === undefined ? null : healthCheckToWire(spec.task.healthCheck),
    },
    constraints: spec.constraints.map((c) => ({
      attribute: c.attribute,
      operator: CONSTRAINT_OPERATOR_WIRE[c.operator] ?? 'CONSTRAINT_OPERATOR_UNSPECIFIED',
      values: [...c.values],
      limit: c.limit,
    })),
    restart_policy: {
      kind: RESTART_POLICY_KIND_WIRE[spec.restartPolicy.kind] ?? 'RESTART_POLICY_KIND_UNSPECIFIED',
      max_restarts: spec.restartPolicy.maxRestarts,
      initial_backoff_ms: spec.restartPolicy.initialBackoffMs,
      max_backoff_ms: spec.restartPolicy.maxBackoffMs,
    },
    retention_ms: spec.retentionMs ?? 0,
    namespace: spec.namespace,
    update:
      spec.update === undefined
        ? null
        : {
            max_unavailable: spec.update.maxUnavailable,
            max_surge: spec.update.maxSurge,
            min_healthy_time_ms: spec.update.minHealthyTimeMs,
            healthy_deadline_ms: spec.update.healthyDeadlineMs,
            auto_rollback: spec.update.autoRollback,
          },
    schedule:
      spec.schedule === undefined
        ? null
        : {
            cron: spec.schedule.cron,
            time_zone: spec.schedule.timeZone,
            concurrency: CRON_CONCURRENCY_WIRE[spec.schedule.concurrency] ?? 'CRON_CONCURRENCY_UNSPECIFIED',
            starting_deadline_ms: spec.schedule.startingDeadlineMs,
          },
  };
}
