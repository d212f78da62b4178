/**
 * @omega/api: the gRPC API server (JobService, CellService) over a cell in etcd. See README.md.
 * The public contract is `protos/omega/v1/api.proto`; this is the server's own library API.
 */
export { startApiServer, type ApiServer, type ApiServerOptions } from './server.js';
export { API_PROTO_FILE, PROTO_LOADER_OPTIONS, loadApiDefinition, type OmegaApiDefinition } from './proto.js';
export { API_LIMITS, jobSpecFromWire, jobSpecToWire, type SpecResult } from './job-spec-wire.js';
export { deriveJob, effectiveRestartPolicy, isFinal, jobView, type DerivedJob, type JobFacts, type TaskSlot } from './job-view.js';
export { busyness, conflictFraction, machineViews, schedulerStatsViews } from './cell-service.js';
export { ApiError, protoFieldPath, toServiceError } from './errors.js';
export { LIST_JOBS_DEFAULT_LIMIT, LIST_JOBS_MAX_LIMIT, LIST_JOBS_MAX_TASKS, newJobId } from './job-service.js';
export { LOG_CHUNK_BYTES, locateTaskLog, streamTaskLog, type LogLocation, type LogStream } from './task-logs.js';
export { parseApiArgs, API_USAGE, type ApiConfig } from './config.js';
export type * from './wire.js';
