/**
 * `omega.v1.CellService`: the cell's machines with what is claimed on them, and the schedulers'
 * published metrics with Omega's derived ratios. The views are pure functions over a snapshot;
 * the service reads them from the mirror brought up to etcd's current revision.
 *
 * Cordon, uncordon and drain (admin) write the machine record's cordon (cell-state
 * `Cell.cordonMachine`): a guarded write of the one record every commit checks, so once the
 * reply is sent no new claim commits on the machine. An unknown machine is NOT_FOUND
 * (`machine_id: unknown machine "m9"`), a bad field INVALID_ARGUMENT naming it; nothing is
 * written then.
 */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { InvalidRecordError, machineId, type CellSnapshot, type Machine, type SchedulerStats } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { CellReader } from './cell-reader.js';
import { invalidArgument, notFound } from './errors.js';
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
    cordoned: machine.cordon !== undefined,
    cordon_reason: machine.cordon?.reason ?? '',
    cordoned_at_ms: machine.cordon?.sinceMs ?? 0,
    drain_deadline_ms: machine.cordon?.drainDeadlineMs ?? 0,
  };
}

/** How long a drain lets batch tasks run when the request gives no deadline (Nomad's default). */
export const DEFAULT_DRAIN_DEADLINE_MS = 60 * 60 * 1000;
const MAX_DRAIN_DEADLINE_MS = 30 * 24 * 60 * 60 * 1000;

interface MachineRequest {
  readonly machine_id?: string;
  readonly reason?: string;
  readonly deadline_ms?: number | string | { toNumber(): number };
}

function requestedMachine(request: MachineRequest): string {
  const id = request.machine_id ?? '';
  if (id === '') throw invalidArgument('machine_id', 'is required');
  return id;
}

function requestedReason(request: MachineRequest): string {
  const reason = request.reason ?? '';
  if (reason.length > 256) throw invalidArgument('reason', 'must be at most 256 characters');
  return reason;
}

/** The drain's deadline from now, in ms: 0 means the default. */
function requestedDeadline(request: MachineRequest): number {
  const raw = request.deadline_ms ?? 0;
  const ms = typeof raw === 'object' ? raw.toNumber() : Number(raw);
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_DRAIN_DEADLINE_MS) throw invalidArgument('deadline_ms', `must be 0 (the default, 1 h) or at most ${MAX_DRAIN_DEADLINE_MS} ms (30 days)`);
  return ms === 0 ? DEFAULT_DRAIN_DEADLINE_MS : ms;
}

/** Runs a machine write; the cell's "unknown machine" becomes NOT_FOUND naming the field. */
async function writeMachine(reader: CellReader, what: string, write: () => Promise<Machine>): Promise<WireMachineView> {
  const deadline = reader.deadline();
  const machine = await reader.store(deadline, what, async () => {
    try {
      return await write();
    } catch (error) {
      if (error instanceof InvalidRecordError && error.field === 'machineId') throw notFound(`machine_id${error.message.slice('machineId'.length)}`);
      throw error;
    }
  });
  return machineView(await reader.atLeast(machine.seq, deadline), machine);
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

/** The service: the reads answer from a fresh snapshot; the writes answer with the machine as written. */
export function cellServiceImplementation(options: { readonly reader: CellReader; readonly logger: Logger; readonly now?: () => number }): UntypedServiceImplementation {
  const { reader, logger } = options;
  const now = options.now ?? Date.now;
  const cell = reader.cell;
  return {
    ListMachines: unary(logger, 'ListMachines', async () => ({ machines: machineViews(await reader.fresh()) })),
    GetSchedulerStats: unary(logger, 'GetSchedulerStats', async () => ({ schedulers: schedulerStatsViews(await reader.fresh()) })),
    CordonMachine: unary(logger, 'CordonMachine', async (request: MachineRequest) => {
      const id = machineId(requestedMachine(request));
      const reason = requestedReason(request);
      return writeMachine(reader, 'cordoning the machine', () => cell.cordonMachine(id, { reason }));
    }),
    UncordonMachine: unary(logger, 'UncordonMachine', async (request: MachineRequest) => {
      const id = machineId(requestedMachine(request));
      return writeMachine(reader, 'uncordoning the machine', () => cell.uncordonMachine(id));
    }),
    DrainMachine: unary(logger, 'DrainMachine', async (request: MachineRequest) => {
      const id = machineId(requestedMachine(request));
      const reason = requestedReason(request);
      const drainDeadlineMs = now() + requestedDeadline(request);
      return writeMachine(reader, 'draining the machine', () => cell.cordonMachine(id, { reason, drainDeadlineMs }));
    }),
  };
}
