import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cellInitSettings } from './cell-commands.js';
import { runCli } from './program.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'omega-cell-commands-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(['node', 'omega', ...args], { stdout, stderr, env: {}, now: () => 0, cwd: root });
  return { code, stdout: out, stderr: err };
}

describe('omega pki', () => {
  it('creates a CA once and issues identities signed by it, keys private', async () => {
    const dir = join(root, 'pki');
    const init = await run('pki', 'init', '--dir', dir);
    expect(init).toMatchObject({ code: 0, stderr: '' });
    expect(init.stdout).toMatch(/^created the CA: /);
    const caBefore = await readFile(join(dir, 'ca.pem'), 'utf8');
    expect((await run('pki', 'init', '--dir', dir)).stdout).toMatch(/^kept the CA in /);
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).toBe(caBefore);

    const issue = await run('pki', 'issue', '--dir', dir, '--name', 'omega-api', '--host', 'api.example.test,10.1.2.3', '--host', 'other.example.test');
    expect(issue).toMatchObject({ code: 0, stderr: '' });
    expect(issue.stdout).toContain(`--ca ${join(dir, 'ca.pem')} --cert ${join(dir, 'omega-api.pem')} --key ${join(dir, 'omega-api-key.pem')}`);
    const cert = new X509Certificate(await readFile(join(dir, 'omega-api.pem')));
    expect(cert.checkIssued(new X509Certificate(caBefore))).toBe(true);
    expect(cert.subject).toBe('CN=omega-api');
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, DNS:api.example.test, IP Address:10.1.2.3, DNS:other.example.test');
    expect((await stat(join(dir, 'omega-api-key.pem'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('refuses bad flags naming them (exit 2) and issues nothing without a CA (exit 1)', async () => {
    const dir = join(root, 'pki');
    expect(await run('pki', 'issue', '--dir', dir, '--name', 'x')).toMatchObject({ code: 1, stderr: `omega: no CA in ${dir} (--dir): run omega pki init --dir ${dir} first\n` });
    await run('pki', 'init', '--dir', dir);
    expect(await run('pki', 'issue', '--dir', dir, '--name', 'Bad Name')).toMatchObject({ code: 2, stderr: expect.stringMatching(/^omega: --name: must be 1-63 lowercase/) as unknown });
    expect(await run('pki', 'issue', '--dir', dir, '--name', 'ca')).toMatchObject({ code: 2, stderr: expect.stringMatching(/^omega: --name: "ca" would clash/) as unknown });
    expect(await run('pki', 'issue', '--dir', dir, '--name', 'x', '--host', 'a b')).toMatchObject({ code: 2, stderr: 'omega: --host: "a b" is neither a DNS name nor an IP address\n' });
    expect((await run('pki', 'issue', '--dir', dir, '--name', 'x', '--valid-days', '0')).code).toBe(2);
    expect((await run('pki', 'init', '--dir', join(root, 'other'), '--name', 'a=b')).stderr).toMatch(/^omega: --name: must be 1-64/);
    expect((await readdir(dir)).sort()).toEqual(['ca-key.pem', 'ca.pem']);
  });
});

describe('omega cell init', () => {
  async function pki(): Promise<string> {
    const dir = join(root, 'pki');
    await run('pki', 'init', '--dir', dir);
    await run('pki', 'issue', '--dir', dir, '--name', 'root');
    await run('pki', 'issue', '--dir', dir, '--name', 'omega-api');
    return dir;
  }

  it('takes the root identity and the global --ca and --api, and resolves files against the working directory', async () => {
    const dir = await pki();
    const settings = cellInitSettings({ etcd: 'https://127.0.0.1:2379', ca: 'pki/ca.pem', cert: 'pki/root.pem', key: 'pki/root-key.pem', machines: 'm1, m2,m1', hollow: true, api: 'api.example.test:7070' }, root);
    expect(settings).toMatchObject({ endpoints: ['https://127.0.0.1:2379'], caFile: join(dir, 'ca.pem'), cell: 'default', machines: ['m1', 'm2'], hollow: true, tokenName: 'admin', api: 'api.example.test:7070', configFile: join(root, '.omega/client.yaml') });
    expect(settings.root.commonName).toBe('root');
  });

  it('refuses what cannot set up a secure cell, naming the flag', async () => {
    const dir = await pki();
    const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'root.pem'), key: join(dir, 'root-key.pem') };
    const refusal = (options: Record<string, unknown>): string => {
      try {
        cellInitSettings({ etcd: 'https://127.0.0.1:2379', ...files, ...options }, root);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refusal({ etcd: undefined })).toMatch(/^--etcd: is required/);
    expect(refusal({ etcd: 'http://127.0.0.1:2379' })).toMatch(/^--etcd: "http:\/\/127\.0\.0\.1:2379" is plaintext/);
    expect(refusal({ insecure: true })).toMatch(/^--insecure: /);
    expect(refusal({ key: undefined })).toMatch(/^--key: missing/);
    expect(refusal({ cert: join(dir, 'omega-api.pem'), key: join(dir, 'omega-api-key.pem') })).toMatch(/^--cert: must be the root identity \(CN root; .*got CN "omega-api"/);
    expect(refusal({ cell: 'Bad' })).toMatch(/^--cell: must be a DNS label/);
    expect(refusal({ machines: 'ok,../x' })).toMatch(/^--machines: "\.\.\/x": /);
    expect(refusal({ hollowPrefix: 'p' })).toMatch(/^--hollow-prefix: only goes with --hollow/);
    expect(refusal({ tokenName: 'Admin' })).toMatch(/^--token-name: must be a DNS label/);
    expect(refusal({ api: 'nowhere' })).toMatch(/^--api: "nowhere" is not HOST:PORT/);
  });

  it('is a usage error on the command line, before any connection', async () => {
    const result = await run('cell', 'init', '--etcd', 'https://127.0.0.1:1', '--cell', 'Bad');
    expect(result).toMatchObject({ code: 2, stderr: expect.stringMatching(/^omega: --cell: must be a DNS label/) as unknown });
  });
});
