import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findLeftovers, killLeftovers, processStartTicks } from './leftovers.js';

let dir: string;
let child: ChildProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omega-leftovers-'));
});

afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function sleeper(): Promise<number> {
  child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  await new Promise((resolve) => child?.once('spawn', resolve));
  return child.pid as number;
}

async function statusFile(owner: number, processes: unknown[]): Promise<string> {
  const file = join(dir, 'dev-status.json');
  await writeFile(file, JSON.stringify({ pid: owner, processes }));
  return file;
}

describe('leftovers of a killed omega dev', () => {
  it('finds a listed process that still runs with its recorded start time, and kills it', async () => {
    const pid = await sleeper();
    const ticks = processStartTicks(pid);
    expect(ticks).toMatch(/^\d+$/);
    const file = await statusFile(999_999, [{ name: 'batch-0', pid, startTicks: ticks }, { name: 'etcd', pid: null, startTicks: null }]);
    const found = await findLeftovers(file);
    expect(found).toEqual([{ name: 'batch-0', pid }]);
    expect(await killLeftovers(found)).toEqual([]);
    expect(processStartTicks(pid)).toBeUndefined();
  });

  it('never touches a pid whose start time differs (a recycled pid), nor anything of its own file', async () => {
    const pid = await sleeper();
    expect(await findLeftovers(await statusFile(999_999, [{ name: 'api', pid, startTicks: '1' }]))).toEqual([]);
    expect(await findLeftovers(await statusFile(process.pid, [{ name: 'api', pid, startTicks: processStartTicks(pid) }]))).toEqual([]);
    expect(await findLeftovers(join(dir, 'missing.json'))).toEqual([]);
    expect(processStartTicks(pid)).toBeDefined();
  });
});
