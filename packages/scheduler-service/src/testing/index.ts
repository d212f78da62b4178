/**
 * Test support for @omega/scheduler-service: the placement harness over an in-memory cell (from
 * @omega/scheduler-core/testing, shared with the batch policy), under the name this package's
 * tests and the bench know it by.
 */
export { PlacementHarness as ServiceHarness, type OccupyingClaim, type PlaceOptions } from '@omega/scheduler-core/testing';
