import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DISK_EXCEEDED, taskDiskBound, taskDiskLimit } from './disk-limit.js';
import { defaultSupervisorPath, encodeSupervisorEnv, supervisorArgs } from './supervisor-command.js';
import type { ExitRecord } from './task-files.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('taskDiskLimit', () => {
  it("is the job's limit within the agent's, the agent's when the job sets none, and the job's when the agent has none", () => {
    expect(taskDiskLimit(undefined, 10 * GiB)).toBe(10 * GiB);
    expect(taskDiskLimit(0, 10 * GiB)).toBe(10 * GiB);
    expect(taskDiskLimit(MiB, 10 * GiB)).toBe(MiB);
    expect(taskDiskLimit(20 * GiB, 10 * GiB)).toBe(10 * GiB);
    expect(taskDiskLimit(MiB, 0)).toBe(MiB);
    expect(taskDiskLimit(undefined, 0)).toBe(0);
  });

  it('gives no bound at all only when neither bytes nor entries are limited', () => {
    const agent = { limitBytes: 0, maxEntries: 0, checkIntervalMs: 5000 };
    expect(taskDiskBound(undefined, agent)).toBeUndefined();
    expect(taskDiskBound(MiB, agent)).toEqual({ limitBytes: MiB, maxEntries: 0, checkIntervalMs: 5000 });
    expect(taskDiskBound(undefined, { ...agent, maxEntries: 10 })).toEqual({ limitBytes: 0, maxEntries: 10, checkIntervalMs: 5000 });
  });
});

describe('supervisorArgs with a disk bound', () => {
  it('passes the byte limit, the entry limit and the interval, and leaves out a limit of 0', () => {
    const base = { dir: '/d/t', argv: ['true'], cwd: '/w', procsFiles: [], logCapBytes: 4096 };
    expect(supervisorArgs({ ...base, disk: { limitBytes: MiB, maxEntries: 100, checkIntervalMs: 250 } })).toEqual(['-c', '4096', '-d', String(MiB), '-e', '100', '-s', '250', '-w', '/w', '/d/t', '--', 'true']);
    expect(supervisorArgs({ ...base, disk: { limitBytes: 0, maxEntries: 100, checkIntervalMs: 250 } })).toEqual(['-c', '4096', '-e', '100', '-s', '250', '-w', '/w', '/d/t', '--', 'true']);
    expect(supervisorArgs({ ...base, disk: { limitBytes: 0, maxEntries: 0, checkIntervalMs: 250 } })).toEqual(['-c', '4096', '-w', '/w', '/d/t', '--', 'true']);
  });
});

describe("the supervisor's bound on the work dir", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-sv-disk-'));
    await mkdir(join(dir, 'work'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs `script` under the supervisor with a disk bound; resolves with exit.json and stderr.log. */
  async function supervise(script: string, bound: string[]): Promise<{ exit: ExitRecord; stderr: string; stdout: string }> {
    const child = spawn(defaultSupervisorPath(), [...bound, '-w', join(dir, 'work'), dir, '--', 'sh', '-c', script], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.stdin.end(encodeSupervisorEnv({ PATH: '/usr/bin:/bin' }));
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', () => resolve());
    });
    const exit = JSON.parse(await readFile(join(dir, 'exit.json'), 'utf8')) as ExitRecord;
    return { exit, stderr: await readFile(join(dir, 'stderr.log'), 'utf8'), stdout: await readFile(join(dir, 'stdout.log'), 'utf8') };
  }

  it('kills a task whose work dir passes its byte limit, counting what a sparse file has allocated, not its length', async () => {
    // 4 MiB of data at the end of a 10 GiB sparse file: 4 MiB allocated.
    const { exit, stderr, stdout } = await supervise('dd if=/dev/zero of=sparse bs=1M count=4 seek=10240 2>/dev/null; sleep 5; echo survived', ['-d', String(MiB), '-s', '50']);
    expect(exit).toMatchObject({ exitCode: null, signal: 'SIGKILL', reason: DISK_EXCEEDED });
    const used = Number(/at least (\d+) bytes of disk, over its limit of (\d+) bytes/.exec(exit.reasonMessage ?? '')?.[1]);
    expect(exit.reasonMessage).toContain(`over its limit of ${MiB} bytes`);
    expect(used).toBeGreaterThan(MiB);
    expect(used).toBeLessThan(GiB);
    expect(stderr).toContain(`omega-supervisor: task killed: ${exit.reasonMessage}`);
    expect(stdout).not.toContain('survived');
  });

  it('charges a planted link to / or to a big host directory as one entry, never walks out of the work dir, and a sparse file by its blocks', async () => {
    // Followed, /usr alone would pass 50 entries at once; the 10 GiB hole would pass 1 MiB.
    const { exit, stdout } = await supervise('ln -s / root && ln -s /usr usr && mkdir d && ln -s /usr/share d/share && truncate -s 10G hole && sleep 0.6 && echo done', ['-d', String(MiB), '-e', '50', '-s', '50']);
    expect(exit).toMatchObject({ exitCode: 0, signal: null });
    expect(exit.reason).toBeUndefined();
    expect(stdout).toBe('done\n');
  });

  it.skipIf(process.getuid?.() !== 0)('does not charge what another filesystem mounted inside the work dir holds', async () => {
    const mnt = join(dir, 'work', 'mnt');
    await mkdir(mnt);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]).status).toBe(0);
    try {
      await writeFile(join(mnt, 'big'), Buffer.alloc(4 * MiB, 1));
      const { exit } = await supervise('sleep 0.4', ['-d', String(MiB), '-s', '50']);
      expect(exit).toMatchObject({ exitCode: 0, signal: null });
      expect(exit.reason).toBeUndefined();
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('kills a task whose work dir holds more entries than its limit, empty files and all', async () => {
    const { exit } = await supervise('i=0; while [ $i -lt 200 ]; do : > f$i; i=$((i+1)); done; sleep 5', ['-e', '100', '-s', '50']);
    expect(exit).toMatchObject({ signal: 'SIGKILL', reason: DISK_EXCEEDED, reasonMessage: 'the work dir holds more than 100 entries (files, directories, links), its limit' });
  });

  it('counts nesting deeper than the walk follows as over the limit, so depth is no hiding place', async () => {
    const { exit } = await supervise('i=0; while [ $i -lt 140 ]; do mkdir d && cd d; i=$((i+1)); done; sleep 5', ['-d', String(GiB), '-s', '50']);
    expect(exit).toMatchObject({ signal: 'SIGKILL', reason: DISK_EXCEEDED });
    expect(exit.reasonMessage).toMatch(/more than 128 levels deep/);
  });

  it('does not measure at start or at exit: a task over its limit that ends before the first interval ends as it exits', async () => {
    const { exit } = await supervise('head -c 4194304 /dev/zero > big', ['-d', String(MiB), '-s', '60000']);
    expect(exit).toMatchObject({ exitCode: 0, signal: null });
    expect(exit.reason).toBeUndefined();
  });
});
