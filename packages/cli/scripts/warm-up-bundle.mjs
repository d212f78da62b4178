#!/usr/bin/env node
/**
 * The warm-up of the bundled CLI (run by bundle.mjs after it writes the bundle): runs the common
 * commands through dist/bundle/omega.cjs against an API server of its own (in this process, on
 * 127.0.0.1, over an in-memory store), then writes V8's code cache of the bundle, which then
 * holds compiled what they ran: flag parsing, the client config, job files, the wire types, the
 * HTTP/2 client, the replies' decoding and the tables.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { startTestApi } from '@omega/api/testing';
import { loadBundle, writeCodeCache } from '../bin/run-bundle.cjs';

/** A stream that keeps what is written to it. */
function collector() {
  const chunks = [];
  const stream = new Writable({ write: (chunk, _encoding, done) => done(undefined, chunks.push(String(chunk))) });
  return { stream, text: () => chunks.join('') };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'omega-bundle-warm-up-'));
const api = await startTestApi();
try {
  writeFileSync(path.join(dir, 'client.yaml'), `api: ${api.server.address}\ninsecure: true\n`);
  writeFileSync(path.join(dir, 'job.yaml'), 'name: warm-up\nkind: batch\ninstances: 2\ncommand: [/bin/true]\ncpu: 1\nmemory: 64Mi\n');
  const { exports, script } = loadBundle({ useCache: false });
  /** Runs `omega ...args` through the bundle; with `ok`, fails the warm-up unless it exits 0. */
  const run = async (ok, ...args) => {
    const [stdout, stderr] = [collector(), collector()];
    const code = await exports.runCli(['node', 'omega', ...args], { stdout: stdout.stream, stderr: stderr.stream, env: { OMEGA_CONFIG: path.join(dir, 'client.yaml') }, now: Date.now, cwd: dir });
    if (ok && code !== 0) throw new Error(`warm-up: omega ${args.join(' ')} exited ${code}: ${stderr.text()}`);
    return stdout.text().trim();
  };
  await run(true, '--help');
  await run(true, 'submit', '--help');
  const first = await run(true, 'submit', '-f', 'job.yaml');
  await run(true, 'submit', '-f', 'job.yaml', '--json');
  for (const args of [['jobs'], ['jobs', '--json'], ['job', first], ['machines'], ['kill', first]]) await run(true, ...args);
  // Failures too: their messages are part of what a user sees.
  for (const args of [['logs', `${first}/0`], ['job', 'no-such-job']]) await run(false, ...args);
  writeCodeCache(script);
} finally {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
}
