import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PARENT_PID_ENV, exitWithParent } from './parent-watch.js';

afterEach(() => {
  vi.useRealTimers();
});

function setup(env: NodeJS.ProcessEnv, parent = 4242) {
  let ppid = parent;
  const stdin = new PassThrough();
  const deaths: number[] = [];
  const watch = exitWithParent({ env, ppid: () => ppid, stdin, pollMs: 100, onParentDeath: () => deaths.push(Date.now()) });
  return { watch, stdin, deaths, reparent: (pid: number) => (ppid = pid) };
}

describe('exitWithParent', () => {
  it('does nothing without OMEGA_PARENT_PID, or with a malformed one, and removes the variable', () => {
    expect(setup({}).watch).toBeUndefined();
    const env = { [PARENT_PID_ENV]: 'abc' };
    expect(setup(env).watch).toBeUndefined();
    expect(env).toEqual({});
  });

  it('ignores a variable inherited from a grandparent (its parent is another process)', () => {
    const env = { [PARENT_PID_ENV]: '17' };
    expect(setup(env, 4242).watch).toBeUndefined();
    expect(PARENT_PID_ENV in env).toBe(false);
  });

  it('reports the parent death once when the pipe from the parent reaches its end', async () => {
    const { watch, stdin, deaths } = setup({ [PARENT_PID_ENV]: '4242' });
    expect(watch?.parentPid).toBe(4242);
    stdin.end();
    await new Promise((resolve) => setImmediate(resolve));
    stdin.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(deaths).toHaveLength(1);
  });

  it('reports the parent death when the process is re-parented', () => {
    vi.useFakeTimers();
    const { deaths, reparent } = setup({ [PARENT_PID_ENV]: '4242' });
    vi.advanceTimersByTime(500);
    expect(deaths).toHaveLength(0);
    reparent(1);
    vi.advanceTimersByTime(100);
    vi.advanceTimersByTime(1_000);
    expect(deaths).toHaveLength(1);
  });

  it('reports nothing after stop()', () => {
    vi.useFakeTimers();
    const { watch, deaths, reparent, stdin } = setup({ [PARENT_PID_ENV]: '4242' });
    watch?.stop();
    reparent(1);
    stdin.end();
    vi.advanceTimersByTime(1_000);
    expect(deaths).toHaveLength(0);
  });
});
