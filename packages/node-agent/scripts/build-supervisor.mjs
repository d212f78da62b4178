#!/usr/bin/env node
// Builds the task supervisor (native/omega-supervisor.c) into dist/omega-supervisor (linked
// statically when the libc allows), and the launcher that starts supervisors for the agent
// (native/omega-launcher.c) into dist/omega-launcher, with the system C compiler. Run by the
// package's build and prepare steps, by the root `npm run build|test|demo` after `tsc -b`, and by
// the test setup; does nothing when the binary is newer than its source (each binary on its own).
//
// Compiler: $CC, else `cc`, else `gcc`. None found: as root where apt-get exists, installs
// Debian's `gcc` and `libc6-dev` (one apt-get update first); otherwise prints what to install
// and exits 1.
//
// Plain Node, no dependencies: it runs before anything is built.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
// The supervisor is exec'd once per task: linked statically (as a position-independent
// executable, so it keeps address-space randomisation) it skips the dynamic loader's work at
// every start, ~0.4 of its ~3.5 ms of CPU per task measured. The launcher starts once.
const BINARIES = [
  { name: 'omega-supervisor', link: ['-static-pie'] },
  { name: 'omega-launcher', link: [] },
].map(({ name, link }) => ({ source: join(packageDir, 'native', `${name}.c`), output: join(packageDir, 'dist', name), link }));
const FLAGS = ['-std=c99', '-O2', '-Wall', '-Wextra', '-D_FORTIFY_SOURCE=2', '-fstack-protector-strong'];
const HINT = 'no C compiler found to build the task supervisor: on Debian/Ubuntu run `apt-get install gcc libc6-dev`; elsewhere install a C compiler and set CC';

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findCompiler() {
  if (process.env.CC) return process.env.CC;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const name of ['cc', 'gcc']) {
    const found = dirs.map((dir) => join(dir, name)).find(isExecutable);
    if (found !== undefined) return found;
  }
  return undefined;
}

function installCompiler() {
  if (process.getuid?.() !== 0 || !isExecutable('/usr/bin/apt-get')) return false;
  console.error('build-supervisor: no C compiler; installing gcc with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'gcc', 'libc6-dev']]) {
    const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (result.error !== undefined || result.status !== 0) return false;
  }
  return true;
}

const stale = BINARIES.filter(({ source, output }) => {
  const changed = mtime(source);
  if (changed === undefined) {
    console.error(`build-supervisor: ${source} is missing`);
    process.exit(1);
  }
  const built = mtime(output);
  return built === undefined || built < changed;
});
if (stale.length === 0) process.exit(0);

let cc = findCompiler();
if (cc === undefined && installCompiler()) cc = findCompiler();
if (cc === undefined) {
  console.error(`build-supervisor: ${HINT}`);
  process.exit(1);
}
for (const { source, output, link } of stale) {
  mkdirSync(dirname(output), { recursive: true });
  // Into a temporary name, then renamed: a concurrent build or a running agent never sees half a file.
  const tmp = `${output}.${process.pid}.tmp`;
  if (link.length > 0) {
    // Quietly: a libc without its static archive is not an error, only slower starts.
    const result = spawnSync(cc, [...FLAGS, ...link, '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (result.error === undefined && result.status === 0) {
      renameSync(tmp, output);
      continue;
    }
    rmSync(tmp, { force: true });
    console.error(`build-supervisor: could not link ${output} statically (${link.join(' ')}; on Debian/Ubuntu libc6-dev has the static libc), linking it dynamically: each task start then costs ~0.4 ms more CPU`);
  }
  const result = spawnSync(cc, [...FLAGS, '-o', tmp, source], { stdio: 'inherit' });
  if (result.error !== undefined || result.status !== 0) {
    rmSync(tmp, { force: true });
    console.error(`build-supervisor: \`${cc}\` failed${result.error ? `: ${result.error.message}` : ` (exit ${result.status})`}`);
    process.exit(1);
  }
  renameSync(tmp, output);
}
