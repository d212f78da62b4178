import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { commandLineDir, readCandidate, supervisorAlive, supervisorsOf, supervisorsUnder, type SupervisorCandidate } from './supervisor-processes.js';

const ROOT = '/data/tasks/';
const a = `${ROOT}a~0~1`;
const b = `${ROOT}b~0~1`;

describe('which processes are supervisors', () => {
  it("reads the attempt directory right before the first '--' of a command line", () => {
    expect(commandLineDir(['omega-supervisor', '-c', '4096', '-w', `${a}/work`, a, '--', 'sh', '-c', 'x -- y'].join('\0'))).toBe(a);
    expect(commandLineDir(['sleep', '30'].join('\0'))).toBeUndefined();
    expect(commandLineDir(['--', 'x'].join('\0'))).toBeUndefined();
    expect(commandLineDir('')).toBeUndefined();
  });

  it("takes, per directory, the process running as the agent's user that is not the child of another naming the same directory", () => {
    const candidates: SupervisorCandidate[] = [
      { pid: 100, ppid: 1, uid: 0, dir: a }, // a's supervisor
      { pid: 101, ppid: 100, uid: 0, dir: a }, // its init (a fork: the same command line)
      { pid: 200, ppid: 50, uid: 230_001, dir: a }, // a task of another job naming a's directory
      { pid: 300, ppid: 1, uid: 0, dir: b }, // b's supervisor
      { pid: 301, ppid: 300, uid: 0, dir: b }, // its task before the exec
    ];
    expect(supervisorsOf(candidates, 0)).toEqual(new Map([[a, 100], [b, 300]]));
    // Run by another user, the agent would find only that user's processes.
    expect(supervisorsOf(candidates, 230_001)).toEqual(new Map([[a, 200]]));
    // Without the supervisor, its init alone still names the attempt (its parent is gone).
    expect(supervisorsOf([{ pid: 101, ppid: 1, uid: 0, dir: a }], 0)).toEqual(new Map([[a, 101]]));
    expect(supervisorsOf([{ pid: 200, ppid: 50, uid: 230_001, dir: a }], 0).size).toBe(0);
  });
});

describe.skipIf(process.getuid?.() !== 0)('supervisors among live processes (as root)', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    // Each in its own process group, killed whole: the shell's sleep must not outlive the test.
    for (const c of children.splice(0)) {
      try {
        process.kill(-(c.pid as number), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });

  /** A shell whose command line names `dir` right before `--`, as a supervisor's does. */
  function impostor(dir: string, uid?: number): ChildProcess {
    const child = spawn('/bin/sh', ['-c', 'sleep 30; :', dir, '--', 'x'], { stdio: 'ignore', detached: true, ...(uid === undefined ? {} : { uid, gid: uid }) });
    children.push(child);
    return child;
  }

  async function until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  }

  it("finds one naming an attempt under the prefix and running as the agent's user, and refuses one running as another uid", async () => {
    const prefix = `/nonexistent/omega-test-${process.pid}/tasks/`;
    const own = impostor(`${prefix}own~0~1`);
    const other = impostor(`${prefix}other~0~1`, 65534);
    await until(() => readCandidate(own.pid as number)?.dir === `${prefix}own~0~1` && readCandidate(other.pid as number)?.uid === 65534);
    expect(readCandidate(other.pid as number)).toMatchObject({ pid: other.pid, uid: 65534, dir: `${prefix}other~0~1` });
    expect(supervisorsUnder(prefix)).toEqual(new Map([[`${prefix}own~0~1`, own.pid]]));
    expect(supervisorAlive(own.pid as number, `${prefix}own~0~1`)).toBe(true);
    expect(supervisorAlive(other.pid as number, `${prefix}other~0~1`)).toBe(false);
    expect(supervisorAlive(own.pid as number, `${prefix}other~0~1`)).toBe(false);
  });
});
