import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessGroup, currentLog, type ChildExit, type ChildSpec, type ManagedChild } from './process-group.js';

const FAST = { initialMs: 20, maxMs: 80, stableAfterMs: 60_000 };

let dir: string;
let group: ProcessGroup | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omega-process-group-'));
});

afterEach(async () => {
  await group?.stop(() => true, 1_000);
  group = undefined;
  await rm(dir, { recursive: true, force: true });
});

function sh(name: string, script: string): ChildSpec {
  return { name, command: '/bin/sh', args: ['-c', script], logFile: join(dir, `${name}.log`), what: name };
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ProcessGroup', () => {
  it('restarts a child that exits on its own, with growing delays, reporting each exit and restart', async () => {
    const exits: [ChildExit, number | undefined][] = [];
    const restarts: number[] = [];
    group = new ProcessGroup({ exited: (_c, exit, delay) => exits.push([exit, delay]), restarted: (c) => restarts.push(c.pid) }, FAST);
    const child = await group.start(sh('flaky', 'echo run; exit 3'));
    const first = child.pid;
    await until('three restarts', () => child.restarts >= 3);
    expect(exits.slice(0, 3).map(([exit, delay]) => [exit.code, delay])).toEqual([
      [3, 20],
      [3, 40],
      [3, 80],
    ]);
    expect(restarts[0]).not.toBe(first);
    expect(new Set(restarts).size).toBe(restarts.length);
  });

  it('restarts a SIGKILLed child under a new pid, and its log shows only the new run from logOffset', async () => {
    group = new ProcessGroup({}, FAST);
    const child = await group.start(sh('sleeper', 'echo started $$; exec sleep 30'));
    const first = child.pid;
    await until('the first line', () => currentLog(child).includes('started'));
    process.kill(first, 'SIGKILL');
    await until('a new run', () => child.restarts === 1 && child.running);
    expect(child.pid).not.toBe(first);
    expect(child.lastExit?.signal).toBe('SIGKILL');
    await until('the new run to write', () => currentLog(child).includes('started'));
    expect(currentLog(child).match(/started/g)).toHaveLength(1);
  });

  it('leaves a child without restart down, and says so', async () => {
    const delays: (number | undefined)[] = [];
    group = new ProcessGroup({ exited: (_c, _e, delay) => delays.push(delay) }, FAST);
    const child = await group.start(sh('once', 'exit 1'), { restart: false });
    await until('its exit', () => child.state === 'stopped');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delays).toEqual([undefined]);
    expect(child.restarts).toBe(0);
  });

  it('restarts nothing once a stop began: a pending restart is dropped and stopped children stay down', async () => {
    const reported: ManagedChild[] = [];
    group = new ProcessGroup({ exited: (c) => reported.push(c) }, { initialMs: 200, maxMs: 200, stableAfterMs: 60_000 });
    const dying = await group.start(sh('dying', 'exit 1'));
    const steady = await group.start(sh('steady', 'exec sleep 30'));
    await until('the first exit', () => dying.state === 'restarting');
    await group.stop(() => true, 1_000);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(dying.state).toBe('stopped');
    expect(dying.restarts).toBe(0);
    expect(steady.state).toBe('stopped');
    expect(alive(steady.pid)).toBe(false);
    expect(reported.map((c) => c.spec.name)).toEqual(['dying']);
  });
});
