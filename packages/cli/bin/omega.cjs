#!/usr/bin/env node
// The `omega` command as npm links it. A committed file (not under dist/) so that `npm ci` links
// `node_modules/.bin/omega` before anything is built; it runs the built program, or says how to
// build it. Without it, `npx omega` on a fresh clone would look for a package named "omega" on
// the registry.
//
// It runs the bundled build (run-bundle.cjs: one file and a code cache start faster than the
// ~150 modules of the unbundled one) when that bundle is at least as new as every file it was
// built from, and the unbundled dist/main.js otherwise: after a `tsc -b` alone, or with
// OMEGA_CLI_UNBUNDLED=1. CommonJS, like the bundle: an ES module here would start Node's ES
// module loader, whose view of node:fs alone loads the stream and readline modules.
'use strict';
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { bundleIsFresh, loadBundle } = require('./run-bundle.cjs');

const notBuilt = (error, entry) => error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes(entry);

if (process.env.OMEGA_CLI_UNBUNDLED !== '1' && bundleIsFresh()) {
  loadBundle().exports.main().catch(crash);
} else {
  const entry = path.join(__dirname, '../dist/main.js');
  import(pathToFileURL(entry).href).catch((error) => {
    if (!notBuilt(error, entry)) return crash(error);
    process.stderr.write('omega: not built yet: run `npm run build` at the repository root\n');
    process.exitCode = 1;
  });
}

/** What an uncaught error does in an ES module entry: the stack on stderr, exit status 1. */
function crash(error) {
  process.exitCode = 1;
  console.error(error);
}
