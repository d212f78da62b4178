import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeFileCreate, fileCreateMicros } from './disk-probe.js';

describe('the file-create probe', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('times the creates and leaves nothing behind', async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-probe-test-'));
    const micros = fileCreateMicros(dir, 20);
    expect(micros).toBeGreaterThan(0);
    expect(Number.isFinite(micros)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
    expect(describeFileCreate(dir)).toMatch(new RegExp(`^a file create under ${dir} costs \\d+ µs now`));
    expect(await readdir(dir)).toEqual([]);
  });

  it('fails on a directory it cannot create in, naming it', () => {
    expect(() => fileCreateMicros('/nonexistent/omega-probe')).toThrow(/omega-probe/);
  });
});
