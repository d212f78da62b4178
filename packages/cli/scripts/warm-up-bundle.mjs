#!/usr/bin/env node
/**
 * The warm-up of the bundled CLI (run by bundle.mjs after it writes the bundle): runs the
 * common commands through dist/bundle/omega.cjs against a closed loopback port, each failing at
 * connecting, then writes V8's code cache of the bundle, which then holds compiled what they ran
 * (flag parsing, the client config, job files, the wire types, the HTTP/2 client).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadBundle, writeCodeCache } from '../bin/run-bundle.js';

const COMMANDS = [['--help'], ['jobs'], ['jobs', '--json'], ['submit', '-f', 'job.yaml'], ['submit', '--help'], ['job', 'j-1'], ['machines'], ['kill', 'j-1'], ['logs', 'j-1/0']];

/** A loopback port nothing listens on (bound, then released). */
const closedPort = await new Promise((resolve, reject) => {
  const server = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

const dir = mkdtempSync(path.join(os.tmpdir(), 'omega-bundle-warm-up-'));
try {
  writeFileSync(path.join(dir, 'client.yaml'), `api: 127.0.0.1:${closedPort}\ninsecure: true\n`);
  writeFileSync(path.join(dir, 'job.yaml'), 'name: warm-up\nkind: batch\ninstances: 1\ncommand: [/bin/true]\ncpu: 1\nmemory: 64Mi\n');
  const sink = () => new Writable({ write: (_chunk, _encoding, done) => done() });
  const io = { stdout: sink(), stderr: sink(), env: { OMEGA_CONFIG: path.join(dir, 'client.yaml') }, now: Date.now, cwd: dir };
  const { exports, script } = loadBundle({ useCache: false });
  for (const args of COMMANDS) await exports.runCli(['node', 'omega', ...args], io);
  writeCodeCache(script);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
