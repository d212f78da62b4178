/**
 * `@omega/api/client`: what a TypeScript client of the API shares with the server, so the two
 * cannot drift: the proto-loader options and file, the wire shapes, and the stored JobSpec → wire
 * conversion. Loads no server code. Clients in other languages need none of it: the .proto files
 * are the contract.
 */
export { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from './proto.js';
export { jobSpecToWire } from './job-spec-wire.js';
export type * from './wire.js';
export { ROLE_WIRE } from './wire.js';
