/**
 * Test support for @omega/scheduler-service and other placement policies: a harness over an
 * in-memory cell.
 */
export { ServiceHarness, type OccupyingClaim, type PlaceOptions } from './harness.js';
