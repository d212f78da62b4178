#!/usr/bin/env node
// Makes sure the system tools a command needs are there before it runs:
//   node scripts/ensure-tools.mjs etcd          (npm run demo)
//   node scripts/ensure-tools.mjs etcd protoc chromium   (npm test)
//
// For each tool named:
// - found: nothing is printed.
// - missing, running as root where apt-get exists: installs its Debian package (one
//   `apt-get update` first, for all of them).
// - still missing: prints how to install it. A required tool (etcd: every integration test and the
//   demo need it) then makes the script exit 1; an optional one (protoc: only test/protos.test.ts
//   uses it, and says SKIPPED without it; chromium: only the web UI's browser test,
//   test/ui-browser.test.ts, which says SKIPPED loudly without it) never fails the run.
//
// Plain Node, no dependencies: it runs before `npm install`ed TypeScript is built.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const TOOLS = {
  etcd: {
    required: true,
    debianPackage: 'etcd-server',
    // The same search as packages/cell-state/src/etcd-launcher.ts's findEtcd.
    candidates: () => [process.env.OMEGA_ETCD, ...onPath('etcd'), '/usr/bin/etcd', '/usr/local/bin/etcd'],
    // Keep in step with ETCD_INSTALL_HINT in packages/cell-state/src/etcd-launcher.ts.
    hint: 'etcd was not found: on Debian/Ubuntu run `apt-get install etcd-server`; elsewhere install etcd 3.4+ from https://etcd.io and put it on PATH or set OMEGA_ETCD',
    // The package may start a system etcd on 2379; ours start on free ports and want it gone.
    afterInstall: () => {
      if (commandWorks('systemctl', ['--version'])) spawnSync('systemctl', ['disable', '--now', 'etcd'], { stdio: 'ignore' });
    },
  },
  protoc: {
    required: false,
    debianPackage: 'protobuf-compiler',
    candidates: () => onPath('protoc'),
    hint:
      'protoc was not found, so the test that compiles protos/ with it will say SKIPPED. To run it: on Debian/Ubuntu ' +
      '`sudo apt-get install protobuf-compiler`; on macOS `brew install protobuf`; elsewhere a release from ' +
      'https://github.com/protocolbuffers/protobuf/releases on PATH',
    afterInstall: () => {},
  },
  chromium: {
    required: false,
    debianPackage: 'chromium',
    // The same search as test/support/chromium.ts's findChromium.
    candidates: () => [process.env.OMEGA_CHROMIUM, ...onPath('chromium'), ...onPath('chromium-browser'), '/usr/bin/chromium', '/usr/bin/chromium-browser'],
    hint:
      'chromium was not found, so the web UI\'s browser test (test/ui-browser.test.ts) will say SKIPPED. To run it: on Debian ' +
      '`sudo apt-get install chromium` (Ubuntu: a chromium build that is not a snap, or Google Chrome); elsewhere any ' +
      'Chromium or Chrome, with OMEGA_CHROMIUM=/path/to/it',
    afterInstall: () => {},
  },
};

function onPath(name) {
  return (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function found(tool) {
  return tool.candidates().some((path) => path !== undefined && path !== '' && isExecutable(path));
}

function commandWorks(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

/** Runs a command with its output shown; true when it exited 0. */
function run(command, args) {
  const result = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.error === undefined && result.status === 0) return true;
  console.error(`\`${command} ${args.join(' ')}\` failed${result.error ? `: ${result.error.message}` : ` (exit ${result.status})`}`);
  return false;
}

const names = process.argv.slice(2);
for (const name of names) {
  if (!(name in TOOLS)) {
    console.error(`ensure-tools: unknown tool ${JSON.stringify(name)} (known: ${Object.keys(TOOLS).join(', ')})`);
    process.exit(2);
  }
}
const missing = names.filter((name) => !found(TOOLS[name]));
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && commandWorks('apt-get', ['--version'])) {
  const packages = missing.map((name) => TOOLS[name].debianPackage);
  console.log(`${missing.join(', ')} not found: installing Debian's ${packages.join(', ')}`);
  if (run('apt-get', ['update'])) {
    // One package at a time, so one that cannot be had does not keep the others out.
    for (const name of missing) if (run('apt-get', ['install', '-y', TOOLS[name].debianPackage])) TOOLS[name].afterInstall();
  }
} else if (!isRoot) {
  console.error(`${missing.join(', ')} not found and not running as root: not installing`);
}

let status = 0;
for (const name of missing) {
  const tool = TOOLS[name];
  if (found(tool)) continue;
  console.error(tool.hint);
  if (tool.required) status = 1;
}
process.exit(status);
