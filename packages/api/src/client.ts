/**
 * `@omega/api/client`: what a TypeScript client of the API shares with the server, so the two
 * cannot drift: the wire types, descriptors and service tables generated from protos/
 * (`@omega/api/wire`, which a client that must start fast imports alone), the stored JobSpec →
 * wire conversion, and the proto-loader options and file for clients that load the .proto files
 * themselves. Loads no server code. Clients in other languages need none of it: the .proto files
 * are the contract.
 */
import type { JobSpecInput } from './wire/index.js';

export { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from './proto.js';
export * from './wire/index.js';

/** A job spec as a client sends it in SubmitJob, UpdateJob or PlanJob: any field may be left out. */
export type WireJobSpec = JobSpecInput;
