/**
 * The public API (`protos/omega/v1/api.proto`) as `@grpc/proto-loader` definitions for the
 * server, built from the JSON descriptor generated from protos/ (wire/generated/api-descriptor.ts,
 * by scripts/gen-wire.mjs): the same definitions as proto-loader's `loadSync` of the .proto files
 * with {@link PROTO_LOADER_OPTIONS}, without parsing them at start.
 *
 * Built once per process and shared by the server and tests.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { PROTOS_DIR } from '@omega/cell-state';
import { apiDescriptor } from './wire/generated/api-descriptor.js';

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

/** The .proto file holding the services, relative to {@link PROTOS_DIR} (for clients that load the .proto files themselves). */
export const API_PROTO_FILE = 'omega/v1/api.proto';

export interface OmegaApiDefinition {
  readonly packageDefinition: protoLoader.PackageDefinition;
  readonly jobService: ServiceDefinition;
  readonly cellService: ServiceDefinition;
  readonly accessService: ServiceDefinition;
  readonly namespaceService: ServiceDefinition;
}

let loaded: OmegaApiDefinition | undefined;

/** The API's service definitions (cached). Throws if the descriptor lacks a service. */
export function loadApiDefinition(): OmegaApiDefinition {
  if (loaded !== undefined) return loaded;
  const packageDefinition = protoLoader.fromJSON(apiDescriptor(), PROTO_LOADER_OPTIONS);
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
