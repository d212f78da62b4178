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
export function apiMessageType(fullName: string): protobuf.Type {
  return apiRoot().lookupType(fullName);
}

/** One method as a client calls it: its path, and its request's encoder and response's decoder. */
export interface MethodCodec {
  readonly path: string;
  readonly serialize: (request: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
}

const methodRoots = new Map<string, protobuf.Root>();

/**
 * `method`'s codec, encoding and decoding as {@link grpcServiceDefinition}'s does, but built from
 * a root of only the types its request and response reach ({@link reachableDescriptor}): a
 * command that makes one call pays for a third of the API's types, not all of them (protobufjs
 * resolves every type of a root when it builds one).
 */
export function methodCodec(method: MethodDescriptor): MethodCodec {
  const key = `${method.requestType} ${method.responseType}`;
  let root = methodRoots.get(key);
  if (root === undefined) {
    root = (require('protobufjs/light.js') as typeof protobuf).Root.fromJSON(reachableDescriptor(apiDescriptor(), [method.requestType, method.responseType]));
    methodRoots.set(key, root);
  }
  return { path: method.path, serialize: serializer(root.lookupType(method.requestType)), deserialize: deserializer(root.lookupType(method.responseType)) };
}

/** A descriptor of the named types, the types their fields refer to, and so on; with each message whole. */
export function reachableDescriptor(descriptor: protobuf.INamespace, fullNames: readonly string[]): protobuf.INamespace {
  const definitions = new Map<string, AnyDefinition>();
  const index = (nested: Record<string, AnyDefinition> | undefined, prefix: string): void => {
    for (const [name, definition] of Object.entries(nested ?? {})) {
      const fullName = `${prefix}${name}`;
      definitions.set(fullName, definition);
      index(definition.nested, `${fullName}.`);
    }
  };
  index(descriptor.nested as Record<string, AnyDefinition> | undefined, '');
  // A definition is kept whole from its outermost enclosing message or enum down (what is not a
  // plain namespace), so nested types come along with their parents.
  const outermost = (fullName: string): string => {
    const parts = fullName.split('.');
    for (let length = 1; length <= parts.length; length++) {
      const prefix = parts.slice(0, length).join('.');
      if (!isNamespace(definitions.get(prefix))) return prefix;
    }
    return fullName;
  };
  const kept = new Set<string>();
  const pending = fullNames.map((fullName) => {
    if (!definitions.has(fullName)) throw new Error(`the API descriptor lacks ${fullName}`);
    return outermost(fullName);
  });
  while (pending.length > 0) {
    const top = pending.pop() as string;
    if (kept.has(top)) continue;
    kept.add(top);
    const visit = (definition: AnyDefinition, scope: string): void => {
      for (const field of Object.values(definition.fields ?? {})) {
        const target = resolveTypeName(field.type, scope, definitions);
        if (target !== undefined) pending.push(outermost(target));
      }
      for (const [name, inner] of Object.entries(definition.nested ?? {})) visit(inner, `${scope}.${name}`);
    };
    visit(definitions.get(top) as AnyDefinition, top);
  }
  const pruned: AnyDefinition = {};
  for (const fullName of kept) {
    let into = pruned;
    const parts = fullName.split('.');
    parts.slice(0, -1).forEach((part, i) => {
      const namespace = definitions.get(parts.slice(0, i + 1).join('.')) as AnyDefinition;
      into.nested ??= {};
      into = into.nested[part] ??= namespace.options === undefined ? {} : { options: namespace.options };
    });
    (into.nested ??= {})[parts[parts.length - 1] as string] = definitions.get(fullName) as AnyDefinition;
  }
  return { ...(descriptor.options === undefined ? {} : { options: descriptor.options }), nested: pruned.nested ?? {} } as protobuf.INamespace;
}

/** A protobufjs JSON definition of any kind (namespace, message, enum, service), as far as pruning reads it. */
interface AnyDefinition {
  options?: Record<string, unknown>;
  nested?: Record<string, AnyDefinition>;
  fields?: Record<string, { type: string }>;
  values?: Record<string, number>;
  methods?: Record<string, unknown>;
}

function isNamespace(definition: AnyDefinition | undefined): boolean {
  return definition !== undefined && definition.fields === undefined && definition.values === undefined && definition.methods === undefined;
}

/** A field's type name as protobuf scopes it (innermost enclosing scope first); undefined for a scalar. */
function resolveTypeName(type: string, scope: string, definitions: ReadonlyMap<string, AnyDefinition>): string | undefined {
  if (type.startsWith('.')) return definitions.has(type.slice(1)) ? type.slice(1) : undefined;
  for (let at = scope; ; at = at.slice(0, Math.max(0, at.lastIndexOf('.')))) {
    const candidate = at === '' ? type : `${at}.${type}`;
    if (definitions.has(candidate)) return candidate;
    if (at === '') return undefined;
  }
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
