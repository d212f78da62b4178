/**
 * Loads the public API (`protos/omega/v1/api.proto`) with `@grpc/proto-loader`, the way any
 * grpc-js client may: no generated code, field names as written in the .proto.
 *
 * Loaded once per process (proto parsing is not free) and shared by the server and tests.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { PROTOS_DIR } from '@omega/cell-state';

/**
 * How the API's messages map to JavaScript objects, on both sides: snake_case field names as in
 * the .proto, 64-bit integers as numbers (our values stay far below 2^53), enums as their names,
 * absent scalar fields as their defaults.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
});

/** The .proto file holding both services, relative to {@link PROTOS_DIR}. */
export const API_PROTO_FILE = 'omega/v1/api.proto';

export interface OmegaApiDefinition {
  readonly packageDefinition: protoLoader.PackageDefinition;
  readonly jobService: ServiceDefinition;
  readonly cellService: ServiceDefinition;
  readonly accessService: ServiceDefinition;
  readonly namespaceService: ServiceDefinition;
}

let loaded: OmegaApiDefinition | undefined;

/** The API's service definitions (cached). Throws if the .proto files are missing or broken. */
export function loadApiDefinition(): OmegaApiDefinition {
  if (loaded !== undefined) return loaded;
  const packageDefinition = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);
  const service = (name: string): ServiceDefinition => {
    const definition = packageDefinition[name];
    if (definition === undefined || !('SubmitJob' in definition || 'ListMachines' in definition || 'WhoAmI' in definition || 'SetQuota' in definition)) {
      throw new Error(`${API_PROTO_FILE} does not define ${name}`);
    }
    return definition as ServiceDefinition;
  };
  loaded = { packageDefinition, jobService: service('omega.v1.JobService'), cellService: service('omega.v1.CellService'), accessService: service('omega.v1.AccessService'), namespaceService: service('omega.v1.NamespaceService') };
  return loaded;
}

/** The encoded size of a SubmitJob request's job spec: what the stored record will roughly be. */
export function encodedJobSpecBytes(job: unknown): number {
  const submit = loadApiDefinition().jobService.SubmitJob;
  if (submit === undefined) throw new Error('SubmitJob is missing from the API definition');
  return submit.requestSerialize({ job, request_id: '' }).length;
}
