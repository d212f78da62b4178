import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlagError } from '@omega/cell-state';
import { parseAgentArgs, type ConfigEnvironment } from './config.js';

/** Most cases are about other flags: run them with --insecure. */
const parseInsecure = (argv: string[], env?: ConfigEnvironment): ReturnType<typeof parseAgentArgs> => parseAgentArgs(['--insecure', ...argv], env);

let dir: string;
let root: ConfigEnvironment;
const user: ConfigEnvironment = { isRoot: false, cwd: '/home/u' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omega-config-'));
  const passwd = join(dir, 'passwd');
  await writeFile(passwd, 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nsvc:x:1001:1002::/home/svc:/bin/sh\n');
  root = { isRoot: true, cwd: '/', passwdPath: passwd };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The flag a FlagError names, or the error itself when something else was thrown. */
function flagOf(argv: string[], env: ConfigEnvironment = user): string {
  try {
    parseInsecure(argv, env);
  } catch (error) {
    if (error instanceof FlagError) return error.flag;
    throw error;
  }
  return 'no error';
}

describe('the agent flags', () => {
  it('need the certificate files or --insecure, except for --help', () => {
    const flag = (argv: string[]): string => {
      try {
        parseAgentArgs(argv, user);
      } catch (error) {
        if (error instanceof FlagError) return error.flag;
        throw error;
      }
      return 'no error';
    };
    expect(flag(['--machine-id', 'm1'])).toBe('--ca');
    expect(flag(['--insecure', '--cert', 'a.crt'])).toBe('--insecure');
    expect(flag(['--help'])).toBe('no error');
    expect(parseInsecure([], user).security).toEqual({ mode: 'insecure' });
  });

  it('parse into a typed configuration with quantities, attributes and defaults', () => {
    const config = parseInsecure(['--etcd', 'http://10.0.0.1:2379,http://10.0.0.2:2379', '--cell', 'prod', '--machine-id', 'm-17', '--cpu', '2500m', '--memory', '4Gi', '--attr', 'rack=r1', '--attr', 'zone=z2', '--kill-grace-ms', '500'], root);
    expect(config).toMatchObject({
      etcdEndpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
      cell: 'prod',
      machineId: 'm-17',
      capacity: { cpuMillis: 2500, memoryBytes: 4 * 1024 ** 3 },
      attributes: { rack: 'r1', zone: 'z2' },
      dataDir: '/var/lib/omega-agent',
      cgroupRoot: '/sys/fs/cgroup',
      cgroupParent: 'omega/m-17',
      fenceAfterMs: 12_000,
      enforcement: true,
      taskUids: { first: 100_000, last: 165_535 },
      killGraceMs: 500,
      taskRetentionMs: 86_400_000,
      keepAttempts: 3,
      logCapBytes: 64 * 1024 ** 2,
      diskLimitBytes: 10 * 1024 ** 3,
      diskMaxEntries: 1_000_000,
      diskCheckIntervalMs: 5_000,
      drainOnExit: false,
      hollow: 0,
    });
    expect(parseInsecure(['--log-cap', '1Mi']).logCapBytes).toBe(1024 ** 2);
    expect(parseInsecure(['--disk-limit', '1Gi', '--disk-inodes', '5000', '--disk-check-ms', '250'])).toMatchObject({ diskLimitBytes: 1024 ** 3, diskMaxEntries: 5000, diskCheckIntervalMs: 250 });
    expect(parseInsecure(['--disk-limit', '0', '--disk-inodes', '0']).notes).toContainEqual(expect.stringMatching(/not bounded/));
  });

  it('name the bad flag in every refusal', () => {
    expect(flagOf(['--cpu', 'two'])).toBe('--cpu');
    expect(flagOf(['--cpu', '0'])).toBe('--cpu');
    expect(flagOf(['--memory', '4 lots'])).toBe('--memory');
    expect(flagOf(['--attr', 'norack'])).toBe('--attr');
    expect(flagOf(['--machine-id', '../etc'])).toBe('--machine-id');
    expect(flagOf(['--cell', 'Prod'])).toBe('--cell');
    expect(flagOf(['--etcd', 'localhost:2379'])).toBe('--etcd');
    expect(flagOf(['--hollow', 'many'])).toBe('--hollow');
    expect(flagOf(['--kill-grace-ms', '-1'])).toBe('--kill-grace-ms');
    expect(flagOf(['--task-retention-s', '1h'])).toBe('--task-retention-s');
    expect(flagOf(['--keep-attempts', '0'])).toBe('--keep-attempts');
    expect(flagOf(['--log-cap', 'big'])).toBe('--log-cap');
    expect(flagOf(['--log-cap', '100'])).toBe('--log-cap');
    expect(flagOf(['--disk-limit', 'lots'])).toBe('--disk-limit');
    expect(flagOf(['--disk-inodes', '-1'])).toBe('--disk-inodes');
    expect(flagOf(['--disk-check-ms', '1'])).toBe('--disk-check-ms');
    expect(flagOf(['--cgroup-parent', '../x'])).toBe('--cgroup-parent');
    expect(flagOf(['--fence-after-ms', 'soon'])).toBe('--fence-after-ms');
    expect(flagOf(['--log-level', 'loud'])).toBe('--log-level');
    expect(flagOf(['--frobnicate'])).toBe('--frobnicate');
    expect(flagOf(['--task-user', 'ghost'], root)).toBe('--task-user');
  });

  it('default the cgroup parent to omega/<machine id> and keep an explicit one as given', () => {
    expect(parseInsecure(['--machine-id', 'a'], root).cgroupParent).toBe('omega/a');
    expect(parseInsecure(['--machine-id', 'b'], root).cgroupParent).toBe('omega/b');
    expect(parseInsecure(['--machine-id', 'b', '--cgroup-parent', 'omega-dev-default-0'], root).cgroupParent).toBe('omega-dev-default-0');
  });

  it('note a fence time whose kill can outlast the machine-loss grace, and fencing turned off', () => {
    expect(parseInsecure(['--machine-id', 'a'], root).notes).toEqual([]);
    expect(parseInsecure(['--machine-id', 'a', '--fence-after-ms', '18000'], root).notes).toEqual([expect.stringContaining('for up to 3000 ms')]);
    expect(parseInsecure(['--machine-id', 'a', '--fence-after-ms', '0'], root).notes).toEqual([expect.stringContaining('fencing is off')]);
    expect(parseInsecure(['--machine-id', 'a', '--fence-after-ms', '18000', '--heartbeat-ttl', '13'], root)).toMatchObject({ fenceAfterMs: 18000, notes: [] });
  });

  it('refuse to run tasks as root unless --allow-root-tasks', () => {
    expect(flagOf(['--task-user', 'root'], root)).toBe('--task-user');
    expect(flagOf(['--task-user', '0'], root)).toBe('--task-user');
    expect(parseInsecure(['--task-user', 'root', '--allow-root-tasks'], root).taskUser).toBeUndefined();
    expect(parseInsecure(['--allow-root-tasks'], root).taskUser).toBeUndefined();
    expect(parseInsecure(['--task-user', 'svc'], root).taskUser).toEqual({ name: 'svc', uid: 1001, gid: 1002 });
    expect(parseInsecure(['--task-user', 'svc'], root).taskUids).toBeUndefined();
    expect(parseInsecure(['--allow-root-tasks'], root).taskUids).toBeUndefined();
  });

  it('run each task as its own uid from --task-uids as root, refusing ranges that reach system accounts', () => {
    expect(parseInsecure([], root)).toMatchObject({ taskUser: undefined, taskUids: { first: 100_000, last: 165_535 } });
    expect(parseInsecure(['--task-uids', '200000-200099'], root).taskUids).toEqual({ first: 200_000, last: 200_099 });
    expect(flagOf(['--task-uids', '0-100'], root)).toBe('--task-uids');
    expect(flagOf(['--task-uids', '5000-4000'], root)).toBe('--task-uids');
    expect(flagOf(['--task-uids', 'many'], root)).toBe('--task-uids');
    expect(flagOf(['--task-uids', '200000-200099', '--task-user', 'svc'], root)).toBe('--task-uids');
    expect(parseInsecure(['--task-uids', '200000-200099'], user)).toMatchObject({ taskUids: undefined, notes: [expect.stringContaining('--task-uids 200000-200099 ignored')] });
  });

  it('run tasks as the agent itself when it is not root, and keep data under the working directory', () => {
    const config = parseInsecure(['--machine-id', 'dev', '--task-user', 'svc', '--no-enforcement'], user);
    expect(config.taskUser).toBeUndefined();
    expect(config.enforcement).toBe(false);
    expect(config.dataDir).toBe('/home/u/.omega/agent-dev');
    expect(config.notes).toEqual([expect.stringContaining('--task-user svc ignored')]);
  });
});

describe('the --allow-users flag', () => {
  it('defaults to no user, takes names of users of the machine, sorted, and names itself for root, uid 0, unknown or bad names', () => {
    expect(parseInsecure([], root).allowUsers).toEqual([]);
    expect(parseInsecure(['--allow-users', 'svc,nobody,svc'], root).allowUsers).toEqual(['nobody', 'svc']);
    expect(flagOf(['--allow-users', 'root'], root)).toBe('--allow-users');
    expect(flagOf(['--allow-users', 'svc,ghost'], root)).toBe('--allow-users');
    expect(flagOf(['--allow-users', 'Svc'], root)).toBe('--allow-users');
    expect(flagOf(['--allow-users', ','], root)).toBe('--allow-users');
  });
  it('is ignored with a note by a non-root agent, which cannot switch users', () => {
    const config = parseInsecure(['--machine-id', 'dev', '--allow-users', 'svc'], user);
    expect(config.allowUsers).toEqual([]);
    expect(config.notes).toEqual(expect.arrayContaining([expect.stringContaining('--allow-users svc ignored')]));
  });
});

describe('the --isolation flag', () => {
  it('defaults to auto, takes none, and names itself when given anything else', () => {
    expect(parseInsecure([], user).isolation).toBe('auto');
    expect(parseInsecure(['--isolation', 'none'], user).isolation).toBe('none');
    expect(flagOf(['--isolation', 'full'])).toBe('--isolation');
  });
});
