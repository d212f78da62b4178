/**
 * The etcd3 client library, loaded the first time a process talks to etcd rather than when
 * cell-state is imported: it (with grpc-js and its protobuf descriptors) is most of what importing
 * cell-state costs (~0.2 s), and the CLI, the simulator and the tests of pure code never use it.
 * Types come from `import type`, which costs nothing.
 */
import { createRequire } from 'node:module';

type Etcd3Module = typeof import('etcd3');

let loaded: Etcd3Module | undefined;

/** The etcd3 module (CommonJS, so it loads synchronously). */
export function etcd3(): Etcd3Module {
  loaded ??= createRequire(import.meta.url)('etcd3') as Etcd3Module;
  return loaded;
}
