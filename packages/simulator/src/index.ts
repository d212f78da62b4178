/**
 * @omega/simulator: Omega's schedulers simulated. The real scheduling loop, policies and commit
 * code run against the in-memory cell store on a virtual clock, with the Omega paper's workloads,
 * measured as shared/BENCH.md defines it. See README.md.
 */
export { VirtualClock } from './virtual-clock.js';
export {
  PAPER_CELL,
  WORKLOADS,
  W_OMEGA_LIKE,
  W_SIM_EXAMPLE,
  arrivalJobSpec,
  arrivals,
  exponential,
  merge,
  scaledTo,
  type Arrival,
  type CellShape,
  type JobClass,
  type Workload,
} from './workload.js';
export { analyticBusyness, analyticTolerance, arrivalRatePerMs, expectedTasks, realizedDemand, saturationJobMs, type ThinkTime, type ThinkTimes } from './analytic.js';
export { PREFILL_JOB, SIM_STORE_HISTORY, buildSimCell, prefillCell, prefillTaskCount, sequentialClaimIds, simMachineIds, type SimCell } from './sim-cell.js';
export { SimAgent } from './sim-agent.js';
export { SimJanitor } from './sim-janitor.js';
export { AttemptLog, SERVICE_PLACEMENTS, monolithicPolicy, probePolicy, simServicePolicy, type KindAttempts, type ServicePlacement } from './policies.js';
export { TransactionLog, type SizeSummary, type TransactionCounts, type TransactionSummary } from './transaction-log.js';
export { WorkloadMetrics, utilization, type UtilizationSummary, type WorkloadSummary } from './workload-metrics.js';
export {
  SIM_EPOCH_MS,
  SimulationConfigError,
  runSimulation,
  type SchedulerRole,
  type SimSchedulerConfig,
  type SimSchedulerResult,
  type SimulationConfig,
  type SimulationResult,
} from './simulation.js';
