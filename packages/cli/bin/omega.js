#!/usr/bin/env node
// The `omega` command as npm links it. A committed file (not under dist/) so that `npm ci` links
// `node_modules/.bin/omega` before anything is built; it runs the built program, or says how to
// build it. Without it, `npx omega` on a fresh clone would look for a package named "omega" on
// the registry.
//
// It runs the bundled build (run-bundle.js: one file and a code cache start faster than the
// ~150 modules of the unbundled one) when that bundle is at least as new as every file it was
// built from, and the unbundled dist/main.js otherwise: after a `tsc -b` alone, or with
// OMEGA_CLI_UNBUNDLED=1.
import { bundleIsFresh, loadBundle } from './run-bundle.js';

if (process.env.OMEGA_CLI_UNBUNDLED !== '1' && bundleIsFresh()) {
  await loadBundle().exports.main();
} else {
  const entry = new URL('../dist/main.js', import.meta.url);
  try {
    await import(entry.href);
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes(entry.pathname)) {
      process.stderr.write('omega: not built yet: run `npm run build` at the repository root\n');
      process.exit(1);
    }
    throw error;
  }
}
