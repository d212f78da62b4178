/**
 * `omega.v1.CellService`: the cell's machines with what is claimed on them, and the schedulers'
 * published metrics with Omega's derived ratios. The views are pure functions over a snapshot;
 * the service reads them from the mirror brought up to etcd's current revision.
 */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CellSnapshot, Machine, SchedulerStats } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { CellReader } from './cell-reader.js';
import { unary } from './rpc.js';
import type { WireMachineView, WireSchedulerStatsView } from './wire.js';

/** One machine: capacity, live claims (resources and count), liveness and attributes. */
export function machineView(snapshot: CellSnapshot, machine: Machine): WireMachineView {
  const allocated = snapshot.used(machine.id);
  return {
    id: machine.id,
    capacity: { cpu_millis: machine.capacity.cpuMillis, memory_bytes: machine.capacity.memoryBytes },
    allocated: { cpu_millis: allocated.cpuMillis, memory_bytes: allocated.memoryBytes },
    tasks: machine.claims.filter((claim) => snapshot.isLive(claim)).length,
    alive: snapshot.alive(machine.id) !== undefined,
    schedulable: machine.schedulable,
    unschedulable_reason: machine.unschedulableReason,
    attributes: { ...machine.attributes },
    hollow: machine.hollow,
    enforcement_disabled: machine.enforcementDisabled,
  };
}

/** Every machine of the snapshot, by id. */
export function machineViews(snapshot: CellSnapshot): WireMachineView[] {
  return [...snapshot.machines()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((m) => machineView(snapshot, m));
}

/**
 * Omega's conflict fraction (BENCH.md): failed transactions per successful one; 0 before the
 * first successful transaction (no ratio to report yet).
 */
export function conflictFraction(stats: Pick<SchedulerStats, 'transactionsOk' | 'transactionsFailed'>): number {
  return stats.transactionsOk > 0 ? stats.transactionsFailed / stats.transactionsOk : 0;
}

/** Share of the elapsed time spent thinking, usefully or wastefully (conflicted work); 0 before any time elapsed. */
export function busyness(stats: Pick<SchedulerStats, 'busyUsefulMs' | 'busyWastedMs' | 'elapsedMs'>): number {
  return stats.elapsedMs > 0 ? (stats.busyUsefulMs + stats.busyWastedMs) / stats.elapsedMs : 0;
}

export function schedulerStatsView(stats: SchedulerStats): WireSchedulerStatsView {
  return {
    name: stats.name,
    kind: stats.kind,
    conflict_mode: stats.conflictMode,
    transaction_mode: stats.transactionMode,
    transactions: stats.transactionsOk + stats.transactionsFailed,
    transactions_failed: stats.transactionsFailed,
    claims_committed: stats.claimsCommitted,
    claims_conflicted: stats.claimsConflicted,
    conflict_fraction: conflictFraction(stats),
    busyness: busyness(stats),
    jobs_placed: stats.jobsPlaced,
    jobs_abandoned: stats.jobsAbandoned,
    wait_first_attempt_mean_ms: stats.waitFirstAttemptMeanMs,
    wait_fully_placed_mean_ms: stats.waitFullyPlacedMeanMs,
    spurious_retries: stats.spuriousRetries,
    updated_at_ms: stats.updatedAtMs,
  };
}

/** Every scheduler that published metrics, by name. */
export function schedulerStatsViews(snapshot: CellSnapshot): WireSchedulerStatsView[] {
  return [...snapshot.schedulerStats()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(schedulerStatsView);
}

/** The service: both methods answer from a fresh snapshot. */
export function cellServiceImplementation(options: { readonly reader: CellReader; readonly logger: Logger }): UntypedServiceImplementation {
  const { reader, logger } = options;
  return {
    ListMachines: unary(logger, 'ListMachines', async () => ({ machines: machineViews(await reader.fresh()) })),
    GetSchedulerStats: unary(logger, 'GetSchedulerStats', async () => ({ schedulers: schedulerStatsViews(await reader.fresh()) })),
  };
}
