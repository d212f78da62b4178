/**
 * The placement policies the simulated schedulers run, all built from the real policy packages:
 *
 * - `batchPolicy({ choice: 'first-fit' })` (randomized first fit, as the paper's simulator) for batch schedulers;
 * - for service schedulers either the careful `servicePolicy()` (constraints, spread scoring; the
 *   production default) or randomized first fit with kind `service` (the placement the Omega
 *   paper's simulator uses for every scheduler);
 * - {@link monolithicPolicy}: one scheduler for both kinds, each job placed by its kind's policy
 *   (the paper's monolithic baselines differ only in think time, set per kind in the loop);
 * - {@link probePolicy}: a transparent wrapper that records, per job kind, when each job was first
 *   attempted. The loop calls `place()` exactly once per attempt, at the attempt's start, so this
 *   is the wait to first attempt without reading the scheduler's internals.
 */
import type { JobId, JobKind } from '@omega/cell-state';
import { placeBatch, batchPolicy } from '@omega/scheduler-batch';
import { LatencyHistogram, type Clock, type PlacementPolicy } from '@omega/scheduler-core';
import { servicePolicy } from '@omega/scheduler-service';

/** How the service scheduler places: the real careful policy, or the paper's randomized first fit. */
export type ServicePlacement = 'careful' | 'first-fit';
export const SERVICE_PLACEMENTS: readonly ServicePlacement[] = ['careful', 'first-fit'];

/** The policy a simulated service scheduler runs. */
export function simServicePolicy(placement: ServicePlacement): PlacementPolicy {
  switch (placement) {
    case 'careful':
      return servicePolicy();
    case 'first-fit':
      return { kind: 'service', defaultTransactionMode: 'incremental', place: (input) => placeBatch(input, 'first-fit') };
  }
}

/**
 * One policy for both job kinds: batch jobs by the batch policy, service jobs by `service`. Its
 * `kind` is `batch` (it only names the instance's stats record); which jobs the instance takes is
 * the loop's `jobKinds` setting.
 */
export function monolithicPolicy(service: PlacementPolicy): PlacementPolicy {
  const batch = batchPolicy({ choice: 'first-fit' });
  return {
    kind: 'batch',
    defaultTransactionMode: 'incremental',
    place: (input) => (input.job.spec.kind === 'service' ? service.place(input) : batch.place(input)),
  };
}

/** What a probe saw, per job kind. */
export interface KindAttempts {
  /** Attempts (calls to `place`). */
  attempts: number;
  /** Distinct jobs attempted at least once. */
  jobs: number;
  /** Submission to the start of the first attempt. */
  readonly waitFirstAttempt: LatencyHistogram;
}

/** Per-kind attempt records shared by every probe of one simulation. */
export class AttemptLog {
  readonly byKind: Record<JobKind, KindAttempts> = {
    batch: { attempts: 0, jobs: 0, waitFirstAttempt: new LatencyHistogram() },
    service: { attempts: 0, jobs: 0, waitFirstAttempt: new LatencyHistogram() },
  };
  private readonly seen = new Set<JobId>();

  record(job: JobId, kind: JobKind, submittedAtMs: number, nowMs: number): void {
    const k = this.byKind[kind];
    k.attempts++;
    if (this.seen.has(job)) return;
    this.seen.add(job);
    k.jobs++;
    k.waitFirstAttempt.add(nowMs - submittedAtMs);
  }

  /** Whether `job` was attempted at least once. */
  attempted(job: JobId): boolean {
    return this.seen.has(job);
  }
}

/** Wraps `policy` so every attempt is recorded in `log` at `clock`'s time. Placement is unchanged. */
export function probePolicy(policy: PlacementPolicy, log: AttemptLog, clock: Clock): PlacementPolicy {
  return {
    kind: policy.kind,
    defaultTransactionMode: policy.defaultTransactionMode,
    place: (input) => {
      log.record(input.job.id, input.job.spec.kind, input.job.submittedAtMs, clock.now());
      return policy.place(input);
    },
  };
}
