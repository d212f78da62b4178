#!/usr/bin/env node
/**
 * Bundles the `omega` command's client side into one file with a code cache, so that a command
 * loads one script, most of it already compiled, instead of ~150 ES and CommonJS modules: the
 * module loader's per-file cost and V8's compiling were most of `omega jobs`' start.
 *
 *   packages/cli/dist/entry.js ──esbuild──► dist/bundle/omega.cjs    what the bin runs (run-bundle.cjs)
 *                                           dist/bundle/inputs.json   the files it was built from
 *   warm-up: --help, jobs, submit, ... ──► dist/bundle/omega.cache  V8's code cache after them
 *
 * esbuild runs as WebAssembly (esbuild-wasm): nothing native is downloaded at install.
 *
 * What stays outside the bundle, imported from the unbundled build at run time: `omega dev`,
 * `omega bench` and the cell commands (`omega pki|cell ...`). They start servers from paths
 * relative to their own files and load etcd3 and grpc-js; bundled, they would be large and those
 * paths would move. Their `import()` calls become `__omegaImport()`, which run-bundle.cjs provides
 * (a script run through node:vm has no import() of its own).
 *
 * Packages loaded on first use with `createRequire(import.meta.url)` (yaml, cli-table3,
 * protobufjs) become the bundler's own lazy `require` here: bundled, and still evaluated only
 * when a command first asks for them.
 *
 * The warm-up runs commands against a closed loopback port (each fails at connecting): what they
 * compile up to there (flag parsing, the client config, job files, the wire types, the HTTP/2
 * client) is what the cache holds. The bin runs the bundle only while it is at least as new as
 * every file in inputs.json, so a stale bundle never runs after a `tsc -b` alone. The build and
 * the test command run this script after tsc.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild-wasm';
import { bundleIsFresh } from '../bin/run-bundle.cjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const CLI_DIST = path.join(REPO, 'packages/cli/dist');
const OUT = path.join(CLI_DIST, 'bundle');

/** Imports of the CLI that stay unbundled (see above), as the CLI's dist files spell them. */
const UNBUNDLED = new Set(['./dev/dev-cell.js', './cell-commands.js', '@omega/bench']);

/** The lazy-require idiom the sources use, exactly; any other use of createRequire is left alone. */
const LAZY_REQUIRE = /^const require = createRequire\(import\.meta\.url\);$/m;

const unbundled = {
  name: 'omega-unbundled',
  setup(build) {
    build.onResolve({ filter: /./ }, (args) => {
      if (!UNBUNDLED.has(args.path) || !args.importer.startsWith(CLI_DIST)) return undefined;
      if (args.path.startsWith('.')) {
        const target = path.resolve(path.dirname(args.importer), args.path);
        return { path: path.relative(OUT, target), external: true };
      }
      return { path: args.path, external: true };
    });
  },
};

const bundledRequire = {
  name: 'omega-bundled-require',
  setup(build) {
    build.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/].*\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!LAZY_REQUIRE.test(text)) return undefined;
      return { contents: text.replace(LAZY_REQUIRE, '').replace(/^import \{ createRequire \} from 'node:module';$/m, ''), loader: 'js' };
    });
  },
};

/**
 * commander requires node:child_process when it loads, for executable subcommands, which omega
 * has none of; loading it (and dgram, which it loads) costs milliseconds of every start. In the
 * bundle commander gets it on first use instead.
 */
const lazyChildProcess = {
  name: 'omega-lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (args.importer.includes(`${path.sep}node_modules${path.sep}commander${path.sep}`) ? { path: 'child_process', namespace: 'omega-lazy' } : undefined));
    build.onLoad({ filter: /^child_process$/, namespace: 'omega-lazy' }, () => ({
      contents: "let loaded; module.exports = new Proxy({}, { get: (_target, key) => (loaded ??= require('node:child_process'))[key] });",
      loader: 'js',
    }));
  },
};

/**
 * cli-table3 measures every cell with string-width, whose first call compiles emoji-regex's
 * giant expression (a regular expression is compiled at run time, never in a code cache): ~8 ms
 * of drawing the first table. In the bundle it gets a string-width that answers printable ASCII
 * (whose width is its length: no escapes, emoji or wide characters) without it, and asks the real
 * one for anything else.
 */
const asciiWidth = {
  name: 'omega-ascii-width',
  setup(build) {
    build.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (!args.importer.includes(`${path.sep}node_modules${path.sep}cli-table3${path.sep}`)) return undefined;
      const real = await build.resolve('string-width', { resolveDir: args.resolveDir, kind: args.kind, pluginData: 'real' });
      return { path: real.path, namespace: 'omega-ascii-width' };
    });
    build.onLoad({ filter: /.*/, namespace: 'omega-ascii-width' }, (args) => ({
      contents: `const width = require(${JSON.stringify(args.path)});
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const asciiFirst = (string) => (typeof string === 'string' && PRINTABLE_ASCII.test(string) ? string.length : width(string));
module.exports = asciiFirst;
module.exports.default = asciiFirst;
`,
      resolveDir: path.dirname(args.path),
      loader: 'js',
    }));
  },
};

/** A dynamic import of the unbundled build, as esbuild writes it, and what it becomes. */
function handImportsToLoader(code) {
  let count = 0;
  const out = code.replace(/\bimport\((".*?")\)/g, (_call, specifier) => {
    const target = JSON.parse(specifier);
    if (!target.startsWith('../') && !UNBUNDLED.has(target)) throw new Error(`bundle: unexpected dynamic import of ${specifier} in the bundle`);
    count += 1;
    return `__omegaImport(${specifier})`;
  });
  if (count === 0) throw new Error('bundle: found none of the dynamic imports of the unbundled build');
  return out;
}

/** Runs the warm-up (warm-up-bundle.mjs) in a child node, which writes the code cache. */
function warmUp() {
  const run = spawnSync(process.execPath, [path.join(REPO, 'packages/cli/scripts/warm-up-bundle.mjs')], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 });
  if (run.status !== 0) throw new Error(`bundle: the warm-up failed (exit ${run.status ?? run.signal})`);
}

// Inputs changed after this instant make the bundle stale (see the bin).
const startedAtMs = Date.now();
rmSync(OUT, { recursive: true, force: true });
const result = await esbuild.build({
  entryPoints: [path.join(CLI_DIST, 'entry.js')],
  outfile: path.join(OUT, 'omega.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  metafile: true,
  // Names kept (whitespace and syntax only): stack traces stay readable; full minifying measured no faster.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  write: false,
  logLevel: 'error',
  plugins: [unbundled, bundledRequire, lazyChildProcess, asciiWidth],
});
// `import.meta` has no meaning in a CommonJS bundle: a module of the client side that needs its
// own location (a path to a file beside it) cannot be bundled, and must be listed in UNBUNDLED.
const metaWarnings = result.warnings.filter((warning) => warning.text.includes('import.meta'));
if (metaWarnings.length > 0) throw new Error(`bundle: ${metaWarnings.map((w) => `${w.location?.file}: ${w.text}`).join('; ')}`);
mkdirSync(OUT, { recursive: true });
for (const file of result.outputFiles) writeFileSync(file.path, file.path.endsWith('.cjs') ? handImportsToLoader(file.text) : file.contents);
// The files the bin checks: the workspace's own, and for every installed package npm's record of
// the install (npm rewrites node_modules/.package-lock.json on each install, while the packages'
// files keep the tarballs' fixed times).
// (Modules of a plugin's own namespace, `omega-lazy:child_process`, are no files.)
const built = Object.keys(result.metafile.inputs).filter((input) => !/^[a-z-]+:/.test(input)).map((input) => path.resolve(REPO, input));
const own = built.filter((file) => !file.includes(`${path.sep}node_modules${path.sep}`));
const installRecord = path.join(REPO, 'node_modules/.package-lock.json');
const inputs = [...own, ...(existsSync(installRecord) ? [installRecord] : [])].map((file) => path.relative(OUT, file)).sort();
writeFileSync(path.join(OUT, 'inputs.json'), `${JSON.stringify({ builtAtMs: startedAtMs, inputs }, null, 1)}\n`);
warmUp();
// What the bin will judge: a bundle it would not run is a failed build.
if (!bundleIsFresh()) throw new Error('bundle: the bundle is not fresh by its own inputs.json (an input that is no file, or one changed during the build)');
process.stdout.write(`bundle: ${path.relative(REPO, OUT)}/omega.cjs from ${built.length} files, with its code cache\n`);
