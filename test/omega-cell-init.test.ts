// `omega pki` and `omega cell init` against a real etcd with TLS and client-certificate auth: the
// operator's path to a secure cell. The built CLI (`npm run build` first) creates the CA and the
// identities, the test starts etcd with them, and `omega cell init` sets up the users, roles and
// the first admin token. Everything runs on 127.0.0.1 and is stopped, even when a test fails.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CellKeys, EtcdKv, KvPermissionDeniedError, getToken, loadTlsIdentity, parseToken, startEtcd, tokenMatches, type RunningEtcd } from '@omega/cell-state';
import { repoPath, runNode } from './support/processes.js';

const CLI = repoPath('packages/cli/dist/main.js');
const built = existsSync(repoPath('packages/cli/dist/cell-commands.js'));
if (!built) console.warn('\n!!! SKIPPING the omega cell init tests: run `npm run build` first\n');

let dir: string;
let pki: string;
let etcd: RunningEtcd | undefined;

const files = (name: string): { caFile: string; certFile: string; keyFile: string } => ({ caFile: join(pki, 'ca.pem'), certFile: join(pki, `${name}.pem`), keyFile: join(pki, `${name}-key.pem`) });
const omega = (...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => runNode(CLI, args, 60_000);

beforeAll(async () => {
  if (!built) return;
  dir = await mkdtemp(join(tmpdir(), 'omega-cell-init-'));
  pki = join(dir, 'pki');
  expect((await omega('pki', 'init', '--dir', pki)).code).toBe(0);
  for (const name of ['root', 'etcd', 'omega-api', 'omega-agent-m1', 'stranger']) expect((await omega('pki', 'issue', '--dir', pki, '--name', name)).code).toBe(0);
  etcd = await startEtcd({ tls: files('etcd') });
}, 120_000);

afterAll(async () => {
  await etcd?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe.sequential('omega cell init', () => {
  const init = (...extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const root = files('root');
    return omega('cell', 'init', '--etcd', etcd?.clientUrl ?? '', '--ca', root.caFile, '--cert', root.certFile, '--key', root.keyFile, '--cell', 'c1', '--machines', 'm1', ...extra);
  };

  it.skipIf(!built)('sets up etcd users and auth, creates an admin token shown once and stored as a hash, and writes a private client config', async () => {
    const config = join(dir, 'client.yaml');
    const result = await init('--write-config', config, '--api', '127.0.0.1:7443');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const token = /^\s+(omg1\.admin\.\S+)$/m.exec(result.stdout)?.[1];
    expect(token).toBeDefined();
    expect(result.stdout.split(token ?? '').length).toBe(2);
    expect((await stat(config)).mode & 0o777).toBe(0o600);
    const text = await readFile(config, 'utf8');
    expect(text).toContain('api: 127.0.0.1:7443\n');
    expect(text).toContain(`ca: pki/ca.pem\n`);
    expect(text).toContain(`token: ${token ?? ''}\n`);

    const rootKv = new EtcdKv({ endpoints: [etcd?.clientUrl ?? ''], tls: loadTlsIdentity(files('root')) });
    try {
      const parsed = parseToken(token ?? '');
      if ('problem' in parsed) throw new Error(parsed.problem);
      const record = await getToken(rootKv, new CellKeys('c1'), 'admin');
      expect(record?.role).toBe('admin');
      expect(record !== undefined && tokenMatches(record, parsed.secret)).toBe(true);
      // Only the hash is stored: the secret's text is nowhere in the record.
      const { kvs } = await rootKv.range({ key: new CellKeys('c1').token('admin') });
      expect(Buffer.from(kvs[0]?.value ?? []).includes(Buffer.from(token?.split('.')[2] ?? 'x'))).toBe(false);
    } finally {
      await rootKv.close();
    }
  });

  it.skipIf(!built)('lets each component reach only what its role grants, and a certificate without a user nothing', async () => {
    const keys = new CellKeys('c1');
    const asUser = (name: string): EtcdKv => new EtcdKv({ endpoints: [etcd?.clientUrl ?? ''], tls: loadTlsIdentity(files(name)), dialTimeoutMs: 5_000 });
    const api = asUser('omega-api');
    const agent = asUser('omega-agent-m1');
    const stranger = asUser('stranger');
    try {
      await expect(api.range({ key: keys.root, prefix: true })).resolves.toBeDefined();
      await expect(api.range({ key: keys.tokensPrefix, prefix: true })).resolves.toBeDefined();
      await expect(agent.range({ key: keys.root, prefix: true })).resolves.toBeDefined();
      await expect(agent.range({ key: keys.tokensPrefix, prefix: true })).rejects.toBeInstanceOf(KvPermissionDeniedError);
      await expect(stranger.range({ key: keys.root, prefix: true })).rejects.toThrow();
    } finally {
      await Promise.all([api.close(), agent.close(), stranger.close()]);
    }
  });

  it.skipIf(!built)('is idempotent for etcd access but refuses a token name that exists, writing no config', async () => {
    const config = join(dir, 'again.yaml');
    const again = await init('--write-config', config);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/0 created, 0 grant\(s\) changed/);
    expect(again.stderr).toMatch(/^omega: token admin exists already \(--token-name\)/);
    expect(existsSync(config)).toBe(false);
    const other = await init('--write-config', config, '--token-name', 'ops');
    expect(other.code).toBe(0);
    expect(other.stdout).toMatch(/omg1\.ops\./);
  });

  it.skipIf(!built)('refuses a certificate that is not root before it connects', async () => {
    const api = files('omega-api');
    const result = await omega('cell', 'init', '--etcd', etcd?.clientUrl ?? '', '--ca', api.caFile, '--cert', api.certFile, '--key', api.keyFile);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^omega: --cert: must be the root identity/);
  });
});
