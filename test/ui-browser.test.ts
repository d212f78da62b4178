// The web UI in a real browser: headless Chromium (Debian's `chromium`, driven by
// puppeteer-core) against a live, secure `omega dev` cell (etcd, the API with its UI, two
// agents, a batch and a service scheduler, each its own process). It logs in through the link
// `omega dev` prints, checks that the overview lists the machines and a job submitted with the
// CLI, and that a job's state change (a kill) appears on its page without a reload.
//
// Skipped, loudly, when no Chromium is installed or the packages are not built.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@omega/cell-state';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium } from './support/chromium.js';
import { eventually, repoPath, runNode, startNode, stopAll, type Started } from './support/processes.js';

// What the callbacks given to page.evaluate use of the browser's globals: they run in the page,
// and this program (Node's) has no DOM types.
declare const window: unknown;
declare const document: { querySelector(selector: string): unknown; getElementById(id: string): { textContent: string | null } | null };
interface HTMLAnchorElement {
  click(): void;
}
type HTMLButtonElement = HTMLAnchorElement;

const CLI = repoPath('packages/cli/dist/main.js');
const chromium = findChromium();
const built = existsSync(CLI) && existsSync(repoPath('packages/api/dist/ui/ui-server.js'));
const runnable = chromium !== undefined && built;
if (chromium === undefined) {
  console.warn(
    '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
      '!!! SKIPPING the web UI browser test (test/ui-browser.test.ts): no Chromium found.\n' +
      '!!! Install Debian\'s chromium (`apt-get install chromium`; `npm test` does it as root), or\n' +
      '!!! point OMEGA_CHROMIUM at a Chromium or Chrome binary.\n' +
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n',
  );
} else if (!built) {
  console.warn('\n!!! SKIPPING the web UI browser test: packages/cli and packages/api are not built (run `npm run build`).\n');
}

let dataDir: string;
let dev: Started | undefined;
let browser: Browser | undefined;
let uiUrl = '';
let loginLink = '';

const clientConfig = (): string => join(dataDir, 'client.yaml');
const omega = (...args: string[]) => runNode(CLI, ['--config', clientConfig(), ...args], 120_000);

async function submit(name: string, text: string): Promise<string> {
  const path = join(dataDir, 'jobs', `${name}.yaml`);
  await writeFile(path, text);
  const result = await omega('submit', '-f', path);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.stdout.trim();
}

/** The page's text of every element matching `selector`. */
function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent ?? ''));
}

beforeAll(async () => {
  if (!runnable) return;
  dataDir = await mkdtemp(join(tmpdir(), 'omega-ui-'));
  // Tasks run as nobody when the agents are root: they must be able to enter the data directory.
  await chmod(dataDir, 0o755);
  await mkdir(join(dataDir, 'jobs'));
  // A free port can be taken by another process between freePort() and omega dev's bind (an
  // outgoing connection's local port, another test's server): omega dev then starts nothing and
  // says so, and the start is tried again on another port.
  for (let attempt = 1; ; attempt++) {
    const api = `127.0.0.1:${await freePort()}`;
    try {
      ({ started: dev } = await startNode(
        CLI,
        ['dev', '--data-dir', dataDir, '--listen', api, '--machines', '2', '--machine-cpu', '1', '--machine-memory', '1Gi', '--batch-schedulers', '1', '--service-schedulers', '1'],
        /is up[\s\S]*?Ctrl-C/,
        120_000,
      ));
      break;
    } catch (error) {
      if (attempt >= 3 || !/is already in use by another process/.test(String(error))) throw error;
    }
  }
  const started = dev;
  uiUrl = /^UI: (https:\/\/127\.0\.0\.1:\d+\/)$/m.exec(started.output())?.[1] ?? '';
  loginLink = /Log in as admin.*?private\): (https:\/\/\S+)$/m.exec(started.output())?.[1] ?? '';
  expect(uiUrl, started.output()).not.toBe('');
  expect(loginLink.startsWith(`${uiUrl}login#token=omg1.`)).toBe(true);
  browser = await launchChromium(chromium as string);
}, 240_000);

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await dev?.stop();
  await stopAll();
  if (dataDir !== undefined && process.env.OMEGA_E2E_KEEP === undefined) await rm(dataDir, { recursive: true, force: true });
}, 120_000);

describe.sequential('the web UI in headless Chromium against omega dev', () => {
  it.skipIf(!runnable)('sends a browser without a session to the login page, which refuses a wrong token', async () => {
    const page = await (browser as Browser).newPage();
    try {
      await page.goto(uiUrl, { waitUntil: 'load' });
      await page.waitForSelector('#token');
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.type('#token', 'omg1.nobody.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      await page.click('#login-form button[type=submit]');
      await page.waitForSelector('#login-error:not([hidden])');
      expect(await page.$eval('#login-error', (n) => n.textContent)).toBe('token "nobody" is not valid (unknown, revoked, or not its secret)');
    } finally {
      await page.close();
    }
  });

  it.skipIf(!runnable)("lists the cell's machines and a job submitted with the CLI, and shows the job's kill on its page without a reload", async () => {
    const page = await (browser as Browser).newPage();
    try {
      // The link omega dev prints: the page posts the token from the fragment once and drops it.
      await page.goto(loginLink, { waitUntil: 'load' });
      await page.waitForSelector('#machines');
      expect(page.url()).toBe(uiUrl);
      const cookies = await page.cookies();
      expect(cookies.find((c) => c.name === 'omega_session')).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
      await eventually('both machines to be listed alive', async () => (await texts(page, '#machines tr[data-machine] .badge.alive')).length === 2, 60_000);
      expect((await page.$$('#machines tr[data-machine]')).length).toBe(2);

      // Submitted after the page loaded: it must appear through the live updates.
      const marker = await page.evaluate(() => {
        (window as unknown as { marker: string }).marker = 'no reload';
        return 'no reload';
      });
      const id = await submit('ui', "name: ui-sleeper\nkind: batch\ninstances: 2\ncommand: [sh, -c, 'echo hello from the ui test; sleep 600']\ncpu: 100m\nmemory: 32Mi\n");
      await page.waitForSelector(`#jobs tr[data-job="${id}"]`, { timeout: 60_000 });
      await eventually('the job to be running on the overview', async () => (await texts(page, `#jobs tr[data-job="${id}"] .badge[data-state]`))[0] === 'running', 60_000);

      await page.evaluate((jobId) => (document.querySelector(`#jobs tr[data-job="${jobId}"] a`) as HTMLAnchorElement | null)?.click(), id);
      await page.waitForSelector('#job-state[data-state="running"]', { timeout: 60_000 });
      await page.evaluate(() => {
        (window as unknown as { marker: string }).marker = 'no reload';
      });
      // The task's output, through the API's log path.
      await eventually('both tasks to run', async () => (await texts(page, '#tasks tr[data-task] .badge[data-state="running"]')).length === 2, 60_000);
      // Clicked in the page: the table is redrawn on every update, so a handle could go stale.
      await page.evaluate(() => (document.querySelector('#tasks tr[data-task="0"] button') as HTMLButtonElement | null)?.click());
      await page.waitForFunction(() => (document.getElementById('log')?.textContent ?? '').includes('hello from the ui test'), { timeout: 30_000 });

      const killed = await omega('kill', id);
      expect(killed.code).toBe(0);
      await page.waitForSelector('#job-state[data-state="killed"]', { timeout: 60_000 });
      expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe(marker);
      expect(await texts(page, '#tasks tr[data-task] .badge[data-state]')).toEqual(['killed', 'killed']);
    } finally {
      await page.close();
    }
  });
});
