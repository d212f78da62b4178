import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedUserAttributes, namedTaskUser, parseAllowUsers, TaskUserRefusedError } from './named-users.js';

let dir: string;
let passwd: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omega-named-users-'));
  passwd = join(dir, 'passwd');
  await writeFile(passwd, 'root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nsvc:x:1001:1002::/home/svc:/bin/sh\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refusal(run: () => unknown): TaskUserRefusedError {
  try {
    run();
  } catch (error) {
    if (error instanceof TaskUserRefusedError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('the allowed users of an agent', () => {
  it('are parsed from a comma-separated list, sorted and without repeats, refusing root and bad names', () => {
    expect(parseAllowUsers('svc, daemon,svc')).toEqual(['daemon', 'svc']);
    expect(parseAllowUsers('root')).toEqual({ problem: expect.stringContaining('must not be root') });
    expect(parseAllowUsers('a b')).toEqual({ problem: expect.stringContaining('must be a user name') });
    expect(parseAllowUsers('')).toEqual({ problem: expect.stringContaining('at least one user') });
  });
  it('are advertised as one omega.users.<name>=true attribute each', () => {
    expect(allowedUserAttributes(['daemon', 'svc'])).toEqual({ 'omega.users.daemon': 'true', 'omega.users.svc': 'true' });
    expect(allowedUserAttributes([])).toEqual({});
  });
});

describe('the user a task of a job naming one runs as', () => {
  it('is that user from the passwd file when the agent allows it', () => {
    expect(namedTaskUser('svc', ['svc'], passwd)).toEqual({ name: 'svc', uid: 1001, gid: 1002 });
  });
  it('is refused as user-not-allowed when the agent does not name it, also when it names none', () => {
    expect(refusal(() => namedTaskUser('svc', ['other'], passwd))).toMatchObject({ reason: 'user-not-allowed', user: 'svc', retryable: false });
    expect(refusal(() => namedTaskUser('svc', [], passwd)).message).toContain('--allow-users');
  });
  it('is refused as user-not-allowed when the name resolves to uid 0, and as user-unknown when it is not on the machine', () => {
    expect(refusal(() => namedTaskUser('toor', ['toor'], passwd)).reason).toBe('user-not-allowed');
    expect(refusal(() => namedTaskUser('ghost', ['ghost'], passwd)).reason).toBe('user-unknown');
  });
});
