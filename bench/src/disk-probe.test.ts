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

  it('times the creates and leaves its files in the directory given, for the caller to remove', async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-probe-test-'));
    const micros = fileCreateMicros(dir, 20);
    expect(micros).toBeGreaterThan(0);
    expect(Number.isFinite(micros)).toBe(true);
    const [probe, ...others] = await readdir(dir);
    expect(others).toEqual([]);
    expect((await readdir(join(dir, probe as string))).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(describeFileCreate(dir)).toMatch(/^a file create there costs \d+ µs now/);
    expect(await readdir(dir)).toHaveLength(2);
  });

  it('fails on a directory it cannot create in, naming it', () => {
    expect(() => fileCreateMicros('/nonexistent/omega-probe')).toThrow(/omega-probe/);
  });
});
