#!/usr/bin/env node
// Regenerates the web UI's screenshots in docs/ (shown in the top-level README) from a real
// `omega dev --demo` cell: three agents running real tasks, the demo's jobs, one job too large
// for any machine (the overview shows it unschedulable), and waves of short batch jobs for the
// two batch schedulers to place (the charts). Drives headless
// Chromium with puppeteer-core (Debian's `chromium`, or OMEGA_CHROMIUM).
//
//   npm run build && node scripts/ui-screenshots.mjs [--out docs]
//
// Everything it starts (the cell in a temporary data directory, the browser) is stopped at the
// end, also when it fails. Binds 127.0.0.1 only.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const CLI = join(REPO, 'packages/cli/dist/main.js');
const outIndex = process.argv.indexOf('--out');
const OUT = resolve(outIndex > 0 ? process.argv[outIndex + 1] : join(REPO, 'docs'));

function findChromium() {
  const onPath = (name) => (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const path of [process.env.OMEGA_CHROMIUM, ...onPath('chromium'), ...onPath('chromium-browser'), '/usr/bin/chromium']) {
    if (!path) continue;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // the next one
    }
  }
  return undefined;
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const chromium = findChromium();
if (chromium === undefined) {
  console.error('ui-screenshots: no Chromium found: `apt-get install chromium`, or set OMEGA_CHROMIUM');
  process.exit(1);
}
const { launch } = await import('puppeteer-core');

const dataDir = mkdtempSync(join(tmpdir(), 'omega-shots-'));
chmodSync(dataDir, 0o755);
const api = `127.0.0.1:${await freePort()}`;
const dev = spawn(process.execPath, [CLI, 'dev', '--demo', '--data-dir', dataDir, '--listen', api, '--machines', '3', '--machine-cpu', '2', '--machine-memory', '2Gi'], { stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
dev.stdout.on('data', (c) => (output += c));
dev.stderr.on('data', (c) => (output += c));
let browser;

async function waitFor(what, test, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await test();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

try {
  await waitFor('omega dev to submit its demo', () => /Demo jobs submitted/.test(output) || dev.exitCode !== null, 180_000);
  if (dev.exitCode !== null) throw new Error(`omega dev exited:\n${output}`);
  const link = /Log in as admin.*?private\): (https:\/\/\S+)$/m.exec(output)?.[1];
  if (link === undefined) throw new Error(`omega dev printed no login link:\n${output}`);
  const ui = link.slice(0, link.indexOf('login#'));
  // One job no machine can hold: its page says why it is pending.
  const jobFile = join(dataDir, 'too-big.yaml');
  writeFileSync(jobFile, 'name: too-big\nkind: batch\ninstances: 1\ncommand: [sleep, "60"]\ncpu: "64"\nmemory: 1Gi\n');
  const submitted = spawnSync(process.execPath, [CLI, '--config', join(dataDir, 'client.yaml'), 'submit', '-f', jobFile], { encoding: 'utf8' });
  if (submitted.status !== 0) throw new Error(`omega submit failed: ${submitted.stderr}`);

  browser = await launch({ executablePath: chromium, headless: true, acceptInsecureCerts: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  const page = await browser.newPage();
  await page.setViewport({ width: 1360, height: 900, deviceScaleFactor: 1 });
  await page.goto(link, { waitUntil: 'load' });
  await page.waitForSelector('#machines tr[data-machine]');
  // Waves of small jobs, so the charts have something to show.
  const waveFile = join(dataDir, 'wave.yaml');
  for (let wave = 0; wave < 8; wave++) {
    writeFileSync(waveFile, `name: wave-${wave}\nkind: batch\ninstances: 20\ncommand: [sleep, "3"]\ncpu: 100m\nmemory: 16Mi\n`);
    const submittedWave = spawnSync(process.execPath, [CLI, '--config', join(dataDir, 'client.yaml'), 'submit', '-f', waveFile], { encoding: 'utf8' });
    if (submittedWave.status !== 0) throw new Error(`omega submit failed: ${submittedWave.stderr}`);
    await sleep(2_500);
  }
  await waitFor('chart samples', () => page.evaluate(() => document.querySelectorAll('#chart-busyness path').length > 0), 90_000);
  await sleep(4_000);
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, 'ui-overview.png'), fullPage: true });

  const web = await page.evaluate(() => [...document.querySelectorAll('#jobs tr[data-job]')].map((r) => r.getAttribute('data-job')).find((id) => id.startsWith('web-')));
  await page.goto(`${ui}jobs/${web}`, { waitUntil: 'load' });
  await page.waitForSelector('#tasks tr[data-task="0"] button');
  await page.evaluate(() => document.querySelector('#tasks tr[data-task="0"] button').click());
  await waitFor('the log', () => page.evaluate(() => (document.getElementById('log')?.textContent ?? '').includes('serving')), 30_000);
  await page.screenshot({ path: join(OUT, 'ui-job.png'), fullPage: true });
  console.log(`wrote ${join(OUT, 'ui-overview.png')} and ${join(OUT, 'ui-job.png')}`);
} catch (error) {
  console.error(`ui-screenshots: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => undefined);
  if (dev.exitCode === null) {
    dev.kill('SIGTERM');
    await new Promise((r) => dev.once('exit', r));
  }
  rmSync(dataDir, { recursive: true, force: true });
}
