#!/usr/bin/env node
// The `omega` command as npm links it. A committed file (not under dist/) so that `npm ci` links
// `node_modules/.bin/omega` before anything is built; it runs the built program, or says how to
// build it. Without it, `npx omega` on a fresh clone would look for a package named "omega" on
// the registry.
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
