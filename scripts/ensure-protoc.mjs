#!/usr/bin/env node
// Tries to make `protoc` available before the tests run (`npm test` calls this after
// ensure-etcd.mjs). test/protos.test.ts compiles every file of protos/ with it in one invocation,
// as Go and Python users do; without protoc that check is SKIPPED (loudly), never failed, so this
// script never fails the run either.
//
// - protoc on PATH: prints nothing, exits 0.
// - not found, running as root where apt-get exists: `apt-get update`, then installs Debian's
//   protobuf-compiler. If that fails it says so and exits 0.
// - otherwise: prints how to install protoc and exits 0.
//
// Plain Node, no dependencies: it runs before `npm install`ed TypeScript is built.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const HOW_TO =
  'protoc was not found, so the test that compiles protos/ with it will say SKIPPED. To run it: on Debian/Ubuntu ' +
  '`sudo apt-get install protobuf-compiler`; on macOS `brew install protobuf`; elsewhere a release from ' +
  'https://github.com/protocolbuffers/protobuf/releases on PATH';

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findProtoc() {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'protoc'))) return join(dir, 'protoc');
  }
  return undefined;
}

function commandWorks(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

/** Runs a command with its output shown; true when it exited 0. */
function run(command, args) {
  const result = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error === undefined && result.status === 0) return true;
  console.error(`\`${command} ${args.join(' ')}\` failed${result.error ? `: ${result.error.message}` : ` (exit ${result.status})`}`);
  return false;
}

if (findProtoc() !== undefined) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && commandWorks('apt-get', ['--version'])) {
  console.log("protoc not found: installing Debian's protobuf-compiler");
  if (run('apt-get', ['update']) && run('apt-get', ['install', '-y', 'protobuf-compiler'])) {
    if (findProtoc() !== undefined) process.exit(0);
    console.error('protobuf-compiler was installed but no protoc was found on PATH afterwards');
  }
} else if (!isRoot) {
  console.error('protoc not found and not running as root: not installing it');
}

console.error(HOW_TO);
process.exit(0);
