// Loads the bundled CLI, dist/bundle/omega.cjs (built by packages/cli/scripts/bundle.mjs), with
// V8's code cache for it, dist/bundle/omega.cache (written by the same script after a warm-up):
// one file instead of ~150 modules, most of its functions already compiled. A committed file
// beside omega.cjs, which uses it; plain JavaScript, so that it runs before anything is built.
//
// The bundle is a CommonJS function run through node:vm (the one way Node 20 can give a script a
// code cache). Its few dynamic imports of the unbundled build (`omega dev`, `omega bench`, the
// cell commands) call the `__omegaImport` it is handed: a script run by node:vm has no import()
// of its own.
'use strict';
const { readFileSync, statSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const vm = require('node:vm');

const DIR = path.join(__dirname, '../dist/bundle');
const BUNDLE = path.join(DIR, 'omega.cjs');
const CACHE = path.join(DIR, 'omega.cache');
const MANIFEST = path.join(DIR, 'inputs.json');

/** The parameters the bundle's function takes: CommonJS' five, then the importer. */
const WRAPPER = ['(function (exports, require, module, __filename, __dirname, __omegaImport) {', '\n})'];

/**
 * Whether the bundle is built and at least as new as the files it was built from (inputs.json:
 * the workspace's own, and npm's record of the last install); a missing or unreadable manifest,
 * or a missing input, counts as stale.
 */
function bundleIsFresh() {
  try {
    const { builtAtMs, inputs } = JSON.parse(readFileSync(MANIFEST, 'utf8'));
    for (const input of inputs) if (statSync(path.join(DIR, input)).mtimeMs > builtAtMs) return false;
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the bundle's top level and returns its exports ({ main, runCli }) and the vm.Script (for
 * createCachedData). A missing or rejected code cache only makes the start slower.
 */
function loadBundle({ useCache = true } = {}) {
  const source = readFileSync(BUNDLE, 'utf8');
  let cachedData;
  if (useCache) {
    try {
      cachedData = readFileSync(CACHE);
    } catch {
      cachedData = undefined;
    }
  }
  const script = new vm.Script(WRAPPER[0] + source + WRAPPER[1], { filename: BUNDLE, cachedData });
  const module = { exports: {} };
  const importer = (specifier) => import(specifier.startsWith('.') ? pathToFileURL(path.join(DIR, specifier)).href : specifier);
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, DIR, importer);
  return { exports: module.exports, script };
}

/** Writes the code cache of `script` (after it has run what it should hold compiled). */
function writeCodeCache(script) {
  writeFileSync(CACHE, script.createCachedData());
}

module.exports = { bundleIsFresh, loadBundle, writeCodeCache };
