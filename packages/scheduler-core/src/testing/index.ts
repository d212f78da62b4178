/**
 * Test support for @omega/scheduler-core and the policies built on it: a fake clock, a harness
 * that runs scheduler instances over an in-memory cell, a store that makes commits conflict on
 * purpose, a plain first-fit policy, and checks of the stored cell.
 */
export { FakeClock, flushAsync } from './fake-clock.js';
export { SchedulerHarness, type AddSchedulerOptions, type HarnessInstance, type HarnessOptions, type RunOptions } from './harness.js';
export { interferingKv, type InterferenceCounters, type InterferenceOptions } from './interfering-kv.js';
export { describePlacementProperties, satisfiesConstraint, type PlacementPropertyOptions } from './placement-properties.js';
export { PlacementHarness, type OccupyingClaim, type PlaceOptions } from './placement-harness.js';
export { firstFitPolicy, type TestPolicyOptions } from './test-policy.js';
export { jobAnswers, lostJobs, placementViolations, readStoredCell, type JobAnswer } from './cell-checks.js';
export { jobSpec, machine } from '@omega/cell-state/testing';
