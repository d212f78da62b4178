/**
 * The API's services as grpc-js definitions, built from the generated JSON descriptor with
 * protobufjs' light build: no .proto parsing, no @grpc/proto-loader, and no grpc-js either (a
 * definition is plain data; a client hands it to grpc-js' `makeClientConstructor`). What the
 * definitions encode and decode is what proto-loader's `loadSync` of the same files with
 * {@link DECODE_OPTIONS} gives, byte for byte and field for field (generated.test.ts checks it):
 * that is the shape the generated types describe.
 */
import { createRequire } from 'node:module';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type protobuf from 'protobufjs/light.js';
import { apiDescriptor } from './generated/api-descriptor.js';
import type { ServiceDescriptor } from './generated/api-types.js';

// protobufjs on first use only: importing this module (for the types and enum tables beside it)
// must stay free for commands that never encode a message, such as `omega --help`.
const require = createRequire(import.meta.url);

/**
 * How messages become JavaScript objects, on both sides (the toObject half of the API's
 * proto-loader options): 64-bit integers as numbers (our values stay far below 2^53), enums as
 * their names, absent scalars as their defaults, absent messages as null.
 */
export const DECODE_OPTIONS: Readonly<protobuf.IConversionOptions> = Object.freeze({ longs: Number, enums: String, defaults: true, oneofs: true });

let root: protobuf.Root | undefined;

/** The API's reflected types (built once, on first use). */
function apiRoot(): protobuf.Root {
  root ??= (require('protobufjs/light.js') as typeof protobuf).Root.fromJSON(apiDescriptor());
  return root;
}

/** A message type of the API by full name (`omega.v1.JobSpec`); throws if the descriptor lacks it. */
export function apiMessageType(fullName: string): protobuf.Type {
  return apiRoot().lookupType(fullName);
}

/** Encodes `object` as `fullName` the way a gRPC call does (fromObject, then encode). */
export function encodeApiMessage(fullName: string, object: object): Uint8Array {
  const type = apiMessageType(fullName);
  return type.encode(type.fromObject(object)).finish();
}

function serializer(type: protobuf.Type): (value: unknown) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => unknown {
  return (bytes) => type.toObject(type.decode(bytes), DECODE_OPTIONS);
}

/** `service` as a grpc-js ServiceDefinition, keyed by the proto's method names (`ListJobs`). */
export function grpcServiceDefinition(service: ServiceDescriptor<unknown>): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const request = apiMessageType(method.requestType);
    const response = apiMessageType(method.responseType);
    definition[method.name] = {
      path: method.path,
      requestStream: false,
      responseStream: method.responseStream,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: method.key,
    };
  }
  return definition;
}
