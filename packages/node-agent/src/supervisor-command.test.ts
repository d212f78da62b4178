import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BadEnvEntryError, defaultSupervisorPath, encodeSupervisorEnv, supervisorArgs, SUPERVISOR_OVERHEAD_BYTES, taskLogCap, taskMemoryLimit } from './supervisor-command.js';

const MiB = 1024 ** 2;

describe('encodeSupervisorEnv', () => {
  it('frames each entry as NAME=value and a NUL, then ends with an empty record', () => {
    expect(encodeSupervisorEnv({ A: '1', B: 'x=y z' }).toString('utf8')).toBe('A=1\0B=x=y z\0\0');
    expect(encodeSupervisorEnv({}).toString('utf8')).toBe('\0');
  });

  it('refuses a value holding NUL without putting the value in the message', () => {
    expect(() => encodeSupervisorEnv({ SECRET: 'top\0secret' })).toThrow(BadEnvEntryError);
    expect(() => encodeSupervisorEnv({ SECRET: 'top\0secret' })).toThrow(/env SECRET: the value holds a NUL byte/);
    expect(() => encodeSupervisorEnv({ SECRET: 'top\0secret' })).not.toThrow(/top/);
    expect(() => encodeSupervisorEnv({ 'A=B': '1' })).toThrow(/name must be non-empty/);
  });
});

describe('supervisorArgs', () => {
  it('puts the ids, procs files, cap and work dir before the task dir, and the argv after --', () => {
    expect(supervisorArgs({ dir: '/d/t', argv: ['sh', '-c', 'echo -- hi'], cwd: '/d/t/work', uid: 65534, gid: 65533, procsFiles: ['/cg/a/cgroup.procs', '/cg/b/cgroup.procs'], logCapBytes: 4096 })).toEqual([
      '-u', '65534', '-g', '65533', '-p', '/cg/a/cgroup.procs', '-p', '/cg/b/cgroup.procs', '-c', '4096', '-w', '/d/t/work', '/d/t', '--', 'sh', '-c', 'echo -- hi',
    ]);
    expect(supervisorArgs({ dir: '/d/t', argv: ['true'], cwd: '/w', procsFiles: [], logCapBytes: 8192 })).toEqual(['-c', '8192', '-w', '/w', '/d/t', '--', 'true']);
  });
});

describe('taskLogCap', () => {
  it("is the job's limit within the agent's cap, and the agent's cap when the job sets none", () => {
    expect(taskLogCap(undefined, 64 * MiB)).toBe(64 * MiB);
    expect(taskLogCap(0, 64 * MiB)).toBe(64 * MiB);
    expect(taskLogCap(MiB, 64 * MiB)).toBe(MiB);
    expect(taskLogCap(128 * MiB, 64 * MiB)).toBe(64 * MiB);
    expect(taskLogCap(10, 64 * MiB)).toBe(4096);
  });
});

describe('taskMemoryLimit', () => {
  it("is the claim minus the supervisor's overhead, half the claim for tiny claims, and 0 for none", () => {
    expect(taskMemoryLimit(32 * MiB)).toBe(32 * MiB - SUPERVISOR_OVERHEAD_BYTES);
    expect(taskMemoryLimit(SUPERVISOR_OVERHEAD_BYTES)).toBe(SUPERVISOR_OVERHEAD_BYTES / 2);
    expect(taskMemoryLimit(0)).toBe(0);
  });
});

describe('the omega-supervisor binary', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-sv-unit-'));
    await mkdir(join(dir, 'work'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function supervise(argv: string[], input: Buffer | string, extra: string[] = []): { status: number | null; exit: Record<string, unknown> } {
    const result = spawnSync(defaultSupervisorPath(), [...extra, '-w', join(dir, 'work'), dir, '--', ...argv], { input });
    return { status: result.status, exit: JSON.parse(spawnSync('cat', [join(dir, 'exit.json')], { encoding: 'utf8' }).stdout) as Record<string, unknown> };
  }

  it('runs the argv with exactly the environment given, in the work dir, and records the exit code', async () => {
    const { status, exit } = supervise(['sh', '-c', 'echo "$FOO|$PWD"; env | sort | tr "\\n" " "; exit 7'], encodeSupervisorEnv({ PATH: '/usr/bin:/bin', FOO: 'a b' }));
    expect(status).toBe(0);
    expect(exit).toMatchObject({ exitCode: 7, signal: null, stdoutTruncated: false, stderrTruncated: false });
    expect(exit.finishedAtMs).toEqual(expect.any(Number));
    const out = await readFile(join(dir, 'stdout.log'), 'utf8');
    expect(out.split('\n')[0]).toBe(`a b|${join(dir, 'work')}`);
    // sh adds PWD (and may add SHLVL / _); nothing of the supervisor's own environment leaks.
    expect(out).not.toMatch(/HOME=|VITEST/);
    const started = JSON.parse(await readFile(join(dir, 'started.json'), 'utf8')) as { pid: number; startedAtMs: number };
    expect(started.pid).toBeGreaterThan(0);
  });

  it('passes the task no descriptor but stdin, stdout and stderr, even when it was handed more', async () => {
    const result = spawnSync(defaultSupervisorPath(), ['-w', join(dir, 'work'), dir, '--', 'sh', '-c', 'ls /proc/$$/fd'], { input: encodeSupervisorEnv({ PATH: '/bin:/usr/bin' }), stdio: ['pipe', 'ignore', 'ignore', 'pipe', 'pipe'] });
    expect(result.status).toBe(0);
    expect(await readFile(join(dir, 'stdout.log'), 'utf8')).toBe('0\n1\n2\n');
  });

  it('records the signal that ended the task by its name', () => {
    expect(supervise(['sh', '-c', 'kill -TERM $$'], encodeSupervisorEnv({ PATH: '/bin' })).exit).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });

  it('ends a missing program with 127, says why on the task stderr like sh, and records the failed exec as its error', async () => {
    expect(supervise(['no-such-program-omega'], encodeSupervisorEnv({ PATH: '/bin' })).exit).toMatchObject({ exitCode: 127, signal: null, error: 'could not start the task: exec no-such-program-omega: No such file or directory' });
    expect(await readFile(join(dir, 'stderr.log'), 'utf8')).toMatch(/no-such-program-omega: No such file or directory/);
    // A program that ran and exited 127 itself did start: no error.
    expect(supervise(['sh', '-c', 'exit 127'], encodeSupervisorEnv({ PATH: '/bin' })).exit).not.toHaveProperty('error');
  });

  it('does not start the task when the environment is cut short (no end record)', async () => {
    const { exit } = supervise(['sh', '-c', 'touch ran'], 'PATH=/bin\0');
    expect(exit).toMatchObject({ exitCode: null, signal: null, error: expect.stringMatching(/environment did not arrive/) });
    await expect(readFile(join(dir, 'work', 'ran'))).rejects.toThrow();
    await expect(readFile(join(dir, 'started.json'))).rejects.toThrow();
  });

  it('makes supervisor.log only for a complaint of its own: a clean run leaves none', async () => {
    expect(supervise(['sh', '-c', 'echo hi'], encodeSupervisorEnv({ PATH: '/bin' })).exit).toMatchObject({ exitCode: 0 });
    await expect(stat(join(dir, 'supervisor.log'))).rejects.toMatchObject({ code: 'ENOENT' });
    // The task takes its work dir away from the disk walk (-d, every 10 ms): the supervisor says so there.
    const { exit } = supervise(['sh', '-c', 'cd /; rmdir "$0"; sleep 0.3', join(dir, 'work')], encodeSupervisorEnv({ PATH: '/bin' }), ['-d', String(MiB), '-s', '10']);
    expect(exit).toMatchObject({ exitCode: 0 });
    expect(await readFile(join(dir, 'supervisor.log'), 'utf8')).toMatch(/^omega-supervisor: open the work dir .*work to measure it: No such file or directory\n$/);
    expect((await stat(join(dir, 'supervisor.log'))).mode & 0o777).toBe(0o640);
  });

  it("lets go of its caller's stderr once it knows the task dir: a supervisor outliving the agent holds no pipe of it", async () => {
    const child = spawn(defaultSupervisorPath(), ['-w', join(dir, 'work'), dir, '--', 'sleep', '2'], { stdio: ['pipe', 'ignore', 'pipe'] });
    child.stdin.end(encodeSupervisorEnv({ PATH: '/bin:/usr/bin' }));
    const stderrClosedAt = new Promise<number>((resolve) => child.stderr.on('close', () => resolve(Date.now())));
    const exitedAt = new Promise<number>((resolve) => child.on('exit', () => resolve(Date.now())));
    const [closed, exited] = await Promise.all([stderrClosedAt, exitedAt]);
    // The pipe reached EOF while the task still ran (its 2 s sleep), not when the supervisor exited.
    expect(closed).toBeLessThan(exited);
    await expect(readFile(join(dir, 'started.json'), 'utf8')).resolves.toMatch(/"pid"/);
  });

  it('says what is wrong with its arguments on its stderr (no task dir to write to yet)', () => {
    const result = spawnSync(defaultSupervisorPath(), ['-u', '1', dir, '--', 'true'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^usage: omega-supervisor/);
  });

  it('fails the start with an error, running no user code, when a procs file cannot be written', async () => {
    const { exit } = supervise(['sh', '-c', 'touch ran'], encodeSupervisorEnv({ PATH: '/bin' }), ['-p', join(dir, 'no', 'cgroup.procs')]);
    expect(exit).toMatchObject({ exitCode: null, signal: 'SIGKILL', error: expect.stringMatching(/could not put the task into its cgroup/) });
    await expect(readFile(join(dir, 'work', 'ran'))).rejects.toThrow();
  });
});
