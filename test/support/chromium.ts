// Finding a Chromium for the browser tests and launching it headless through puppeteer-core
// (which downloads nothing: it drives the browser installed on the machine, Debian's
// `chromium`, which `npm test` installs with scripts/ensure-tools.mjs when it can).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Browser } from 'puppeteer-core';

/** The same search as scripts/ensure-tools.mjs's chromium. */
export function findChromium(): string | undefined {
  const onPath = (name: string): string[] => (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  const candidates = [process.env.OMEGA_CHROMIUM, ...onPath('chromium'), ...onPath('chromium-browser'), '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const path of candidates) {
    if (path === undefined || path === '') continue;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // the next one
    }
  }
  return undefined;
}

/**
 * A headless Chromium. `acceptInsecureCerts`: the cell's certificates come from its own CA,
 * which this throwaway browser profile does not trust (a user's browser would import ca.crt).
 */
export async function launchChromium(executablePath: string): Promise<Browser> {
  const { launch } = await import('puppeteer-core');
  return launch({
    executablePath,
    headless: true,
    acceptInsecureCerts: true,
    // Root (as the tests run) cannot use Chromium's sandbox; /dev/shm may be small in containers.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check'],
  });
}
