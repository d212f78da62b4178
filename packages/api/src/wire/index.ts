/**
 * `@omega/api/wire`: the API's wire types and descriptors, generated from protos/ by
 * scripts/gen-wire.mjs, and what every TypeScript client shares with the server: the mapping of
 * enum names to @omega/cell-state's vocabulary, the stored JobSpec → wire conversion and grpc-js
 * definitions of the services. Light to import (protobufjs' light build and plain data; no
 * grpc-js, no proto-loader, no server code), so a CLI starts fast.
 */
export * from './generated/api-types.js';
export { apiDescriptor } from './generated/api-descriptor.js';
export { DECODE_OPTIONS, grpcServiceDefinition, methodCodec, type MethodCodec } from './definitions.js';
export {
  COMMIT_MODE_NAMES,
  COMMIT_MODE_WIRE,
  CONSTRAINT_OPERATOR_NAMES,
  CONSTRAINT_OPERATOR_WIRE,
  CRON_CONCURRENCY_NAMES,
  CRON_CONCURRENCY_WIRE,
  JOB_KIND_NAMES,
  JOB_KIND_WIRE,
  JOB_VIEW_STATE_NAMES,
  JOB_VIEW_STATE_WIRE,
  RESTART_POLICY_KIND_NAMES,
  RESTART_POLICY_KIND_WIRE,
  ROLE_WIRE,
  TASK_VIEW_STATE_WIRE,
} from '../wire.js';
export { jobSpecToWire } from '../job-spec-to-wire.js';
