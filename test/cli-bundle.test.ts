// The bundled `omega` (packages/cli/scripts/bundle.mjs: dist/bundle/omega.cjs and its code cache, run by
// packages/cli/bin/omega.cjs) against an API server: it does what the unbundled build does,
// reaches the commands left outside the bundle, and is not run once a file it was built from
// changes.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '@omega/api/testing';
import { repoPath, runNode } from './support/processes.js';

const BIN = repoPath('packages/cli/bin/omega.cjs');
const BUNDLE_DIR = repoPath('packages/cli/dist/bundle');
const RUN_BUNDLE = repoPath('packages/cli/bin/run-bundle.cjs');

const unbundled = { ...process.env, OMEGA_CLI_UNBUNDLED: '1' };
const bundled = { ...process.env, OMEGA_CLI_UNBUNDLED: '' };

/** `bundleIsFresh()` of run-bundle.cjs, asked in a fresh process. */
async function bundleIsFresh(): Promise<boolean> {
  const run = await runNode('--input-type=module', ['-e', `import { bundleIsFresh } from ${JSON.stringify(RUN_BUNDLE)}; process.stdout.write(String(bundleIsFresh()));`]);
  expect(run.stderr).toBe('');
  return run.stdout === 'true';
}

describe('the bundled omega command', () => {
  let api: TestApi;
  let dir: string;

  beforeAll(async () => {
    if (!existsSync(join(BUNDLE_DIR, 'omega.cjs'))) throw new Error('the CLI bundle is not built: run `node packages/cli/scripts/bundle.mjs` (npm run build does)');
    api = await startTestApi();
    dir = mkdtempSync(join(tmpdir(), 'omega-cli-bundle-'));
    writeFileSync(join(dir, 'job.yaml'), 'name: bundled\nkind: batch\ninstances: 2\ncommand: [/bin/true]\ncpu: 1\nmemory: 64Mi\n');
  });

  afterAll(async () => {
    await api?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('is fresh after the build, so the bin runs it, with a code cache beside it', async () => {
    expect(await bundleIsFresh()).toBe(true);
    expect(statSync(join(BUNDLE_DIR, 'omega.cache')).size).toBeGreaterThan(0);
  });

  it('prints the same help as the unbundled build', async () => {
    const [mine, theirs] = await Promise.all([runNode(BIN, ['--help'], 60_000, bundled), runNode(BIN, ['--help'], 60_000, unbundled)]);
    expect(mine).toEqual({ code: 0, stdout: theirs.stdout, stderr: '' });
    expect(mine.stdout).toContain('submit');
  });

  it('submits a job file and lists it as the unbundled build does', async () => {
    const flags = ['--api', api.server.address, '--insecure'];
    const submitted = await runNode(BIN, ['submit', '-f', join(dir, 'job.yaml'), ...flags], 60_000, bundled);
    expect(submitted.stderr).toBe('');
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim();
    const [mine, theirs] = await Promise.all([runNode(BIN, ['jobs', '--json', ...flags], 60_000, bundled), runNode(BIN, ['jobs', '--json', ...flags], 60_000, unbundled)]);
    expect(mine).toEqual({ code: 0, stdout: theirs.stdout, stderr: '' });
    const listed = JSON.parse(mine.stdout) as { id: string; name: string }[];
    expect(listed.map((job) => [job.id, job.name])).toEqual([[id, 'bundled']]);
    // The table too (cli-table3 measures its cells through the bundle's own string-width), its
    // AGE column aside, which may tick between the two runs.
    const [myTable, theirTable] = await Promise.all([runNode(BIN, ['jobs', ...flags], 60_000, bundled), runNode(BIN, ['jobs', ...flags], 60_000, unbundled)]);
    const ageless = (text: string): string => text.replace(/\b\d+s\b/g, 'Ns');
    expect(myTable.code).toBe(0);
    expect(ageless(myTable.stdout)).toBe(ageless(theirTable.stdout));
    expect(myTable.stdout).toContain(id);
  });

  it('says which address it could not reach, as the unbundled build does', async () => {
    const flags = ['jobs', '--api', '127.0.0.1:1', '--insecure'];
    const [mine, theirs] = await Promise.all([runNode(BIN, flags, 60_000, bundled), runNode(BIN, flags, 60_000, unbundled)]);
    expect(mine.code).not.toBe(0);
    expect(mine).toEqual(theirs);
    expect(mine.stderr).toContain('127.0.0.1:1');
  });

  it('reaches the commands kept outside the bundle (the cell commands, imported from the unbundled build)', async () => {
    const run = await runNode(BIN, ['pki', 'init', '--help'], 60_000, bundled);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: omega pki init');
  });

  it('is stale, and not run, once a file it was built from is newer than the build', async () => {
    const { inputs } = JSON.parse(readFileSync(join(BUNDLE_DIR, 'inputs.json'), 'utf8')) as { inputs: string[] };
    const file = repoPath('packages/cli/dist/output.js');
    expect(inputs.map((input) => join(BUNDLE_DIR, input))).toContain(file);
    const before = statSync(file);
    try {
      utimesSync(file, before.atime, new Date(Date.now() + 60_000));
      expect(await bundleIsFresh()).toBe(false);
    } finally {
      utimesSync(file, before.atime, before.mtime);
    }
    expect(await bundleIsFresh()).toBe(true);
  });
});
