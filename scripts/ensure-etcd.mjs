#!/usr/bin/env node
// Makes sure an etcd binary is available before the tests run (`npm test` calls this first).
//
// - etcd found (OMEGA_ETCD, then `etcd` on PATH, then /usr/bin/etcd, /usr/local/bin/etcd, the same
//   search as packages/cell-state/src/etcd-launcher.ts): prints nothing, exits 0.
// - not found, running as root where apt-get exists: installs Debian's etcd-server, then stops and
//   disables the system service it may start, so it does not hold port 2379 (tests start their own
//   members on free ports).
// - otherwise: prints how to install etcd and exits 1.
//
// Plain Node, no dependencies: it runs before `npm install`ed TypeScript is built.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// Keep in step with ETCD_INSTALL_HINT in packages/cell-state/src/etcd-launcher.ts.
const NOT_FOUND =
  'etcd was not found: on Debian/Ubuntu run `apt-get install etcd-server`; elsewhere install etcd 3.4+ from https://etcd.io and put it on PATH or set OMEGA_ETCD';

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findEtcd() {
  const candidates = [];
  if (process.env.OMEGA_ETCD) candidates.push(process.env.OMEGA_ETCD);
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, 'etcd'));
  candidates.push('/usr/bin/etcd', '/usr/local/bin/etcd');
  return candidates.find(isExecutable);
}

function commandWorks(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

function run(command, args) {
  const result = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error !== undefined || result.status !== 0) {
    console.error(`\`${command} ${args.join(' ')}\` failed${result.error ? `: ${result.error.message}` : ` (exit ${result.status})`}`);
    process.exit(1);
  }
}

if (findEtcd() !== undefined) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && commandWorks('apt-get', ['--version'])) {
  console.log("etcd not found: installing Debian's etcd-server");
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', 'etcd-server']);
  // The package may start a system etcd on 2379; ours start on free ports and want it gone.
  if (commandWorks('systemctl', ['--version'])) {
    spawnSync('systemctl', ['disable', '--now', 'etcd'], { stdio: 'ignore' });
  }
  if (findEtcd() !== undefined) process.exit(0);
  console.error('etcd-server was installed but no etcd binary was found afterwards');
}

console.error(NOT_FOUND);
process.exit(1);
