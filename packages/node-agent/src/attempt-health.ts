/**
 * Glue between a real task attempt (task-runner.ts) and its health check: picks the probe for
 * the check's kind (health-probes.ts) and starts its {@link HealthWatch}. What the attempt
 * needs to resume the check after an agent restart (the check, its environment) is kept in
 * the attempt's `meta.json`, so an adopted attempt runs the check of the spec it was started
 * with, whatever the job's record says now.
 */
import type { Logger } from 'pino';
import { resolveHealthCheck, type HealthCheck, type HealthState } from '@omega/cell-state';
import { HealthWatch, type CheckSlots } from './health-checks.js';
import { commandProbe, httpProbe, tcpProbe } from './health-probes.js';

export interface AttemptHealthOptions {
  readonly check: HealthCheck;
  /** The command check's environment (the task's, without secret values). */
  readonly env: Readonly<Record<string, string>>;
  /** The task's work dir. */
  readonly cwd: string;
  readonly uid?: number;
  readonly gid?: number;
  readonly procsFiles: readonly string[];
  /** The task's pid on the host (with isolation: its namespace init). */
  readonly pid: () => number | undefined;
  readonly startedAtMs: number;
  /** What the attempt's record says already (an adopted attempt). */
  readonly initial?: HealthState;
  readonly report: (patch: { readonly health: HealthState; readonly healthSinceMs: number }) => void;
  readonly onThreshold: () => void;
  readonly slots: CheckSlots;
  readonly logger: Logger;
}

/** Starts the attempt's health watch; the caller stops it when the attempt stops or ends. */
export function watchAttemptHealth(o: AttemptHealthOptions): HealthWatch {
  const check = resolveHealthCheck(o.check);
  const probe =
    check.kind === 'http'
      ? httpProbe(check.port, check.path)
      : check.kind === 'tcp'
        ? tcpProbe(check.port)
        : commandProbe({ argv: check.command, env: o.env, cwd: o.cwd, ...(o.uid === undefined || o.gid === undefined ? {} : { uid: o.uid, gid: o.gid }), procsFiles: o.procsFiles, pid: o.pid });
  const watch = new HealthWatch({
    check,
    probe,
    startedAtMs: o.startedAtMs,
    ...(o.initial === undefined ? {} : { initial: o.initial }),
    report: o.report,
    onThreshold: o.onThreshold,
    slots: o.slots,
    logger: o.logger.child({ check: check.kind }),
  });
  watch.start();
  return watch;
}
