// Every file of protos/ compiles together, as Go and Python users generate them: all at once, into
// one package. Checked two ways: protobufjs (always) loads every file into ONE Root, which refuses
// a name defined twice, and checks that each file imports what it uses (as protoc demands); then,
// when `protoc` is on PATH, protoc itself over every file in one invocation (`npm test` tries to
// install it first: scripts/ensure-tools.mjs).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';

const PROTOS = fileURLToPath(new URL('../protos/', import.meta.url));

/** Every .proto under protos/, relative to it (the names protoc and imports use), sorted. */
function protoFiles(dir = PROTOS): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.proto'))
    .map((entry) => path.relative(PROTOS, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

function loadAll(files: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS, target);
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

/** Every message, enum and service below a namespace, with its full name. */
function definitions(ns: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  const out: protobuf.ReflectionObject[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type || child instanceof protobuf.Enum || child instanceof protobuf.Service) out.push(child);
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type || child instanceof protobuf.Service) out.push(...definitions(child));
  }
  return out;
}

function relativeFile(object: protobuf.ReflectionObject): string {
  return path.relative(PROTOS, object.filename ?? '?').split(path.sep).join('/');
}

function findProtoc(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'protoc');
    if (spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

const files = protoFiles();
const protoc = findProtoc();
if (protoc === undefined) {
  console.warn('SKIPPED: compiling protos/ with protoc because protoc is not on PATH (Debian/Ubuntu: apt-get install protobuf-compiler; `npm test` installs it when it runs as root)');
}

describe('protos/', () => {
  it('holds the API, the stored records and the types they share', () => {
    expect(files).toEqual(expect.arrayContaining(['omega/v1/api.proto', 'omega/v1/records.proto', 'omega/v1/types.proto']));
  });

  it('loads every file into one protobufjs Root, with each message, enum and service defined once', () => {
    // protobufjs throws "duplicate name" when a second file defines a name again.
    const root = loadAll(files);
    const seen = new Map<string, string>();
    const duplicates: string[] = [];
    for (const definition of definitions(root)) {
      const previous = seen.get(definition.fullName);
      if (previous !== undefined) duplicates.push(`${definition.fullName} in ${previous} and ${relativeFile(definition)}`);
      seen.set(definition.fullName, relativeFile(definition));
    }
    expect(duplicates).toEqual([]);
    expect(seen.get('.omega.v1.FilterCount')).toBe('omega/v1/types.proto');
    expect(seen.has('.omega.v1.JobService')).toBe(true);
  });

  it('has every file import each file whose types it uses, as protoc requires', () => {
    const root = loadAll(files);
    const imports = new Map(
      files.map((file) => {
        const parsed = protobuf.parse(readFileSync(path.join(PROTOS, file), 'utf8'), { keepCase: true });
        return [file, new Set([file, ...(parsed.imports ?? []), ...(parsed.weakImports ?? [])])];
      }),
    );
    const missing: string[] = [];
    const check = (user: protobuf.ReflectionObject, used: protobuf.ReflectionObject | null, what: string): void => {
      if (used === null) return;
      const userFile = relativeFile(user);
      if (!(imports.get(userFile)?.has(relativeFile(used)) ?? false)) missing.push(`${userFile}: ${what} uses ${used.fullName} from ${relativeFile(used)} without importing it`);
    };
    for (const definition of definitions(root)) {
      if (definition instanceof protobuf.Type) {
        for (const field of definition.fieldsArray) check(definition, field.resolvedType, `${definition.fullName}.${field.name}`);
      } else if (definition instanceof protobuf.Service) {
        for (const method of definition.methodsArray) {
          check(definition, method.resolvedRequestType, `${definition.fullName}.${method.name}`);
          check(definition, method.resolvedResponseType, `${definition.fullName}.${method.name}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it.skipIf(protoc === undefined)('compiles with protoc in one invocation over every file', () => {
    const result = spawnSync(protoc ?? 'protoc', ['--proto_path=protos', '--descriptor_set_out=/dev/null', ...files], {
      cwd: path.join(PROTOS, '..'),
      encoding: 'utf8',
    });
    expect(result.error).toBeUndefined();
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
