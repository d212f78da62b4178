/**
 * @omega/scheduler-core: the scheduling loop shared by Omega's schedulers. See README.md.
 */
export { systemClock, type Clock } from './clock.js';
export { seededRandom, type Random } from './random.js';
export type { PlaceInput, PlaceOutcome, PlacementPolicy, TaskToPlace } from './policy.js';
export { DEFAULT_SETTINGS, SettingsError, resolveSettings, type SchedulerSettings, type ThinkTime } from './settings.js';
export { MirrorLagError, Scheduler, type AttemptReport, type SchedulerOptions, type Step } from './scheduler.js';
export { NoLeaseError, type LeaseSource } from './lease-keeper.js';
// The store retry lives in cell-state; re-exported for callers that configure a scheduler's.
export { STORE_RETRY_BACKOFF, type BackoffPolicy } from '@omega/cell-state';
export { LatencyHistogram, toSchedulerStats, type LatencySummary, type SchedulerMetrics } from './metrics.js';
export {
  assessJob,
  describeEnding,
  effectiveRestartKind,
  restartDecision,
  type JobOutcome,
  type JobProgress,
  type RestartDecision,
  type RestartDefaults,
} from './job-progress.js';
export {
  ABANDONED_REASON_PREFIXES,
  formatRuledOut,
  isAbandonedStatus,
  isFinished,
  offeredMachines,
  type FilterCount,
  type OfferedMachines,
} from './job-status.js';
export { planJob, type JobPlan, type PlanInput, type PlannedPreemption, type PlannedStop, type PlannedTask } from './plan.js';
export { proposePlacement, type Proposal, type ProposalInput } from './propose.js';
export { hash32, liveMembers, rendezvousOwner } from './rendezvous.js';
export {
  defaultInstanceName,
  parseSchedulerArgs,
  schedulerUsage,
  takeFlags,
  type SchedulerProcessConfig,
} from './flags.js';
export { runSchedulerProcess, type SchedulerProcessOptions } from './process.js';
export { exposeSchedulerMetrics, schedulerHistograms, type SchedulerHistograms } from './scheduler-metrics.js';
