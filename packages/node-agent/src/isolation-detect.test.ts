import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectIsolation, isolationAttributes } from './isolation-detect.js';

let dir: string;
/** A stand-in for the supervisor's probe mode that prints `json`. */
async function probe(name: string, json: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n[ "$1" = --probe ] || exit 2\necho '${json}'\n`);
  await chmod(path, 0o755);
  return path;
}
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omega-isolation-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('isolation detection at agent start', () => {
  it('uses everything the probe found, and pid only with mount', async () => {
    const all = await detectIsolation({ supervisorPath: await probe('all', '{"pid":true,"mount":true,"network":true}'), mode: 'auto', isRoot: true });
    expect(all).toEqual({ found: { pid: true, mount: true, network: true }, use: { pid: true, networkNone: true } });
    const noMount = await detectIsolation({ supervisorPath: await probe('nomount', '{"pid":true,"mount":false,"network":false}'), mode: 'auto', isRoot: true });
    expect(noMount.use).toEqual({ pid: false, networkNone: false });
    expect(noMount.problem).toBe('the host refused: pid+mount namespaces, network namespace');
  });

  it('uses nothing with --isolation none, as a non-root agent, or when the probe cannot run, and says why', async () => {
    const path = await probe('all2', '{"pid":true,"mount":true,"network":true}');
    expect(await detectIsolation({ supervisorPath: path, mode: 'none', isRoot: true })).toMatchObject({ use: { pid: false, networkNone: false }, problem: 'disabled by --isolation none' });
    expect(await detectIsolation({ supervisorPath: path, mode: 'auto', isRoot: false })).toMatchObject({ use: { pid: false, networkNone: false }, problem: 'the agent does not run as root' });
    const broken = await detectIsolation({ supervisorPath: join(dir, 'missing'), mode: 'auto', isRoot: true });
    expect(broken.use).toEqual({ pid: false, networkNone: false });
    expect(broken.problem).toMatch(/^the supervisor's probe failed: /);
  });

  it('advertises what tasks get as omega.isolation.* machine attributes', () => {
    expect(isolationAttributes({ pid: true, networkNone: false })).toEqual({ 'omega.isolation.pid': 'true', 'omega.isolation.network-none': 'false' });
  });
});
