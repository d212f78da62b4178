/**
 * @omega/scheduler-service: Omega's careful service placement policy (constraints, spread,
 * scoring, priority preemption) for the shared scheduling loop. See README.md.
 */
export { servicePolicy, placeService } from './policy.js';
export {
  DEFAULT_SERVICE_OPTIONS,
  SCORING_MODES,
  ServiceOptionsError,
  parseServiceArgs,
  resolveServiceOptions,
  type ResolvedServiceOptions,
  type ScoringMode,
  type ServicePolicyOptions,
} from './options.js';
export {
  VictimChoice,
  chooseVictims,
  compareChoices,
  eligibleVictims,
  planPreemption,
  type PreemptionPlan,
  type PreemptionQuestion,
} from './preemption.js';
export { scoreMachine } from './scoring.js';
