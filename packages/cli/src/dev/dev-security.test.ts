import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CellKeys, MemoryKv, createToken, revokeToken } from '@omega/cell-state';
import { ADMIN_TOKEN_FILE, DEV_ADMIN_TOKEN, clientAddress, devIdentities, ensureAdminToken, identityFlags, prepareDevPki } from './dev-security.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omega-dev-security-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the dev cell identities', () => {
  it('names one identity per component, one per real agent, the hollow agent only when there is one', () => {
    expect(devIdentities({ listen: '127.0.0.1:7070', machines: 2, hollow: 0 }).map((i) => i.name)).toEqual(['root', 'etcd', 'omega-api', 'omega-scheduler', 'omega-agent-dev-0', 'omega-agent-dev-1']);
    expect(devIdentities({ listen: '127.0.0.1:7070', machines: 0, hollow: 3 }).map((i) => i.name)).toContain('omega-hollow');
  });

  it('gives the API the --listen host as a SAN unless it is a wildcard or loopback, and clients a loopback address for a wildcard', () => {
    const api = (listen: string) => devIdentities({ listen, machines: 0, hollow: 0 }).find((i) => i.name === 'omega-api')?.hosts;
    expect(api('10.0.0.5:7070')).toEqual(['10.0.0.5']);
    expect(api('[fd00::5]:7070')).toEqual(['fd00::5']);
    expect(api('0.0.0.0:7070')).toEqual([]);
    expect(api('localhost:7070')).toEqual([]);
    expect(clientAddress('0.0.0.0:7070')).toBe('127.0.0.1:7070');
    expect(clientAddress('[::]:7070')).toBe('[::1]:7070');
    expect(clientAddress('10.0.0.5:7070')).toBe('10.0.0.5:7070');
  });

  it('creates the PKI in <data-dir>/pki once, and hands each child its own files', async () => {
    const settings = { dataDir: dir, cell: 'default', listen: '127.0.0.1:7070', machines: 1, hollow: 0 };
    const first = await prepareDevPki(settings);
    expect(first.createdCa).toBe(true);
    expect(first.dir).toBe(join(dir, 'pki'));
    expect(identityFlags(first, 'omega-agent-dev-0')).toEqual(['--ca', join(dir, 'pki', 'ca.pem'), '--cert', join(dir, 'pki', 'omega-agent-dev-0.pem'), '--key', join(dir, 'pki', 'omega-agent-dev-0-key.pem')]);
    const second = await prepareDevPki({ ...settings, machines: 2 });
    expect(second.createdCa).toBe(false);
    expect(second.issued).toEqual([{ name: 'omega-agent-dev-1', reason: 'new' }]);
  });
});

describe('ensureAdminToken', () => {
  const keys = new CellKeys('default');
  const file = (): string => join(dir, ADMIN_TOKEN_FILE);

  it('creates the token once, keeps it in a 0600 file, and reuses it while the cell knows it', async () => {
    const kv = new MemoryKv();
    const first = await ensureAdminToken(kv, keys, file());
    expect(first).toMatchObject({ outcome: 'created', reason: 'none' });
    expect(first.token).toMatch(new RegExp(`^omg1\\.${DEV_ADMIN_TOKEN}\\.`));
    expect((await readFile(file(), 'utf8')).trim()).toBe(first.token);
    expect((await stat(file())).mode & 0o777).toBe(0o600);
    expect(await ensureAdminToken(kv, keys, file())).toEqual({ outcome: 'reused', token: first.token });
  });

  it('replaces a revoked or expired token, a file that holds no token, and a dev-admin whose secret was lost', async () => {
    const kv = new MemoryKv();
    const first = await ensureAdminToken(kv, keys, file());
    await revokeToken(kv, keys, DEV_ADMIN_TOKEN);
    const afterRevoke = await ensureAdminToken(kv, keys, file());
    expect(afterRevoke).toMatchObject({ outcome: 'created', reason: `token ${DEV_ADMIN_TOKEN} was revoked` });
    expect(afterRevoke.token).not.toBe(first.token);

    await writeFile(file(), 'not a token\n');
    const afterGarbage = await ensureAdminToken(kv, keys, file());
    expect(afterGarbage.outcome).toBe('created');
    expect(afterGarbage.outcome === 'created' && afterGarbage.reason).toMatch(/^the token file holds no token/);
    expect((await ensureAdminToken(kv, keys, file())).token).toBe(afterGarbage.token);

    await revokeToken(kv, keys, DEV_ADMIN_TOKEN);
    await createToken(kv, keys, { name: DEV_ADMIN_TOKEN, role: 'admin', namespaces: [], ttlMs: 1000 }, { nowMs: 0 });
    const expired = await ensureAdminToken(kv, keys, file(), () => 10_000);
    expect(expired).toMatchObject({ outcome: 'created', reason: `token ${DEV_ADMIN_TOKEN} was replaced` });
    const later = await ensureAdminToken(kv, keys, file(), () => 10_000);
    expect(later.outcome).toBe('reused');
  });

  it('replaces its own token once it has expired', async () => {
    const kv = new MemoryKv();
    const now = { ms: 0 };
    await ensureAdminToken(kv, keys, file(), () => now.ms);
    // dev-admin never expires; one made with a ttl stands in for an expired one.
    await revokeToken(kv, keys, DEV_ADMIN_TOKEN);
    const made = await createToken(kv, keys, { name: DEV_ADMIN_TOKEN, role: 'admin', namespaces: [], ttlMs: 1000 }, { nowMs: 0 });
    if (made.outcome !== 'created') throw new Error('not created');
    await writeFile(file(), `${made.token}\n`);
    now.ms = 5_000;
    expect(await ensureAdminToken(kv, keys, file(), () => now.ms)).toMatchObject({ outcome: 'created', reason: `token ${DEV_ADMIN_TOKEN} expired` });
  });
});
