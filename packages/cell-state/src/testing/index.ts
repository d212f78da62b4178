/**
 * Test support for @omega/cell-state and its users: builders, contract suites, fakes.
 */
export { JobSpecBuilder, MachineBuilder, jobSpec, machine } from './builders.js';
export { cellWithMachines, describeCellContract, freshCellName, plan, withLimits, type OpenedStore } from './cell-contract.js';
export { describeCommitProperties, type PropertyOptions } from './commit-properties.js';
export { describeKvContract, type OpenedKv } from './kv-contract.js';
export { keysWritten, replayingKv, type ReplayCounters, type ReplayOptions, type ReplayedWrite } from './replaying-kv.js';
export { outageKv, type OutageKv } from './outage-kv.js';
export { mirroredCell, type MirroredCell } from './mirrored-cell.js';
/** Record encoders, for benchmarks that fill a store directly in big transactions (bench's cold sync). */
export { encodeAlive, encodeJob, encodeJobStatus, encodeMachine, encodeTask } from '../codec.js';
