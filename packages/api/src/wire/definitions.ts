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
import type { MethodDescriptor, ServiceDescriptor } from './generated/api-types.js';

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
function apiMessageType(fullName: string): protobuf.Type {
  return apiRoot().lookupType(fullName);
}

/** One method as a client calls it: its path, and its request's encoder and response's decoder. */
export interface MethodCodec {
  readonly path: string;
  readonly serialize: (request: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
}

/** A message's static codec in packages/api/generated/api-codecs.cjs (what pbjs writes for each). */
interface StaticMessage {
  encode(message: object): { finish(): Uint8Array };
  decode(bytes: Uint8Array): object;
  fromObject(object: object): object;
  toObject(message: object, options: protobuf.IConversionOptions): unknown;
}

let staticCodecs: Record<string, unknown> | undefined;

/** A message's static codec by full name (`omega.v1.JobSpec`); throws if the generated module lacks it. */
function staticMessage(fullName: string): StaticMessage {
  // Two levels up from src/wire/ and from dist/wire/ alike; loaded on first use.
  staticCodecs ??= require('../../generated/api-codecs.cjs') as Record<string, unknown>;
  let found: unknown = staticCodecs;
  for (const part of fullName.split('.')) found = (found as Record<string, unknown> | undefined)?.[part];
  if (typeof (found as StaticMessage | undefined)?.decode !== 'function') throw new Error(`the generated API codecs lack ${fullName}`);
  return found as StaticMessage;
}

/**
 * `method`'s codec, encoding and decoding as {@link grpcServiceDefinition}'s does, with the
 * generated static code (packages/api/generated/api-codecs.cjs) instead of reflected types: no
 * descriptor to resolve and no functions generated at run time, so a command that makes one call
 * starts faster (a test checks it byte for byte against the reflected definitions).
 */
export function methodCodec(method: MethodDescriptor): MethodCodec {
  const request = staticMessage(method.requestType);
  const response = staticMessage(method.responseType);
  return {
    path: method.path,
    serialize: (value) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${method.requestType} structure`);
      const bytes = request.encode(request.fromObject(value)).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize: (bytes) => response.toObject(response.decode(bytes), DECODE_OPTIONS),
  };
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
