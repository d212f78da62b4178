/**
 * The CLI against a real API server over TLS with tokens, in-process (a MemoryKv cell, no
 * schedulers): the client config, the bearer token on every call, and each new command end to
 * end, with the exit status of every kind of refusal.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startApiServer, type ApiServer } from '@omega/api';
import { Cell, MemoryKv, createToken } from '@omega/cell-state';
import { createCa, issueCertificate } from '@omega/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeClientConfig } from './client-config.js';
import { EXIT_FAILED_PRECONDITION, EXIT_PERMISSION_DENIED, EXIT_QUOTA_EXCEEDED, EXIT_UNAUTHENTICATED } from './errors.js';
import { runCli } from './program.js';

let dir: string;
let server: ApiServer;
let configPath: string;
let adminToken: string;
/** The server's clock runs this far ahead of the wall clock (token expiry is judged by it). */
let clockOffsetMs = 0;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with the admin's client config unless `env` says otherwise. */
async function omega(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(['node', 'omega', ...args], { stdout, stderr, env: { OMEGA_CONFIG: configPath, ...env }, now: Date.now, cwd: dir });
  return { code, stdout: out, stderr: err };
}

/** Runs it and expects success; returns stdout. */
async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await omega(args, env);
  expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: expect.any(String) });
  return result.stdout;
}

const job = (name: string, namespace: string, extra = ''): string => {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `name: ${name}\nnamespace: ${namespace}\nkind: batch\ncommand: [env]\ncpu: 500m\nmemory: 64Mi\n${extra}`);
  return path;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'omega-secured-api-'));
  const kv = new MemoryKv();
  const cell = new Cell(kv, 'test');
  const ca = await createCa({ commonName: 'test CA' });
  const cert = await issueCertificate(ca, { commonName: 'omega-api', hosts: ['127.0.0.1', 'localhost'] });
  const admin = await createToken(kv, cell.keys, { name: 'admin', role: 'admin', namespaces: [] });
  if (admin.outcome !== 'created') throw new Error('no admin token');
  adminToken = admin.token;
  server = await startApiServer({
    cell,
    listen: '127.0.0.1:0',
    auth: 'tokens',
    tls: { ca: Buffer.from(ca.certPem), cert: Buffer.from(cert.certPem), key: Buffer.from(cert.keyPem) },
    shutdownGraceMs: 1_000,
    now: () => Date.now() + clockOffsetMs,
  });
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  configPath = join(dir, 'client.yaml');
  writeClientConfig(configPath, { api: server.address, ca: join(dir, 'ca.pem'), token: adminToken });
});

afterAll(async () => {
  await server?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('omega against a TLS API with tokens', () => {
  let ciToken: string;

  it('says who the admin is', async () => {
    expect(await ok(['whoami'])).toMatch(/^Token:\s+admin\nRole:\s+admin\nNamespaces:\s+\* \(every namespace\)\nExpires:\s+never\n$/);
  });

  it('creates and lists a namespace', async () => {
    expect(await ok(['namespace', 'create', 'team-a'])).toBe('created namespace team-a\n');
    expect(await ok(['namespace', 'list'])).toMatch(/\nteam-a\s+0\/-\s+0\/-\s+0\/-\s+\d+s\n/);
    expect(JSON.parse(await ok(['--json', 'ns', 'list']))).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'team-a', quota: null })]));
  });

  it('creates a token, prints its secret once alone on stdout, and lists it without the secret', async () => {
    const created = await omega(['token', 'create', 'ci', '--role', 'submit', '--namespaces', 'team-a', '--ttl', '30d']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^omg1\.ci\.[A-Za-z0-9_-]{43}\n$/);
    ciToken = created.stdout.trim();
    expect(created.stderr).toMatch(/^omega: created token ci \(submit in team-a, expires \d{4}-.*\)\. It is shown only now: store it/);
    const listed = await ok(['token', 'list']);
    expect(listed).toMatch(/\nci\s+submit\s+team-a\s+\d{4}-\d\d-\d\d \d\d:\d\dZ \(in (29|30)d\)/);
    expect(listed).not.toContain(ciToken.split('.')[2]);
    expect(await ok(['whoami'], { OMEGA_TOKEN: ciToken })).toMatch(/^Token:\s+ci\nRole:\s+submit\nNamespaces:\s+team-a\n/);
  });

  it('submits into the token namespace with a secret from the environment, and shows only its name', async () => {
    const path = job('web', 'team-a', 'secretEnv:\n  DB_PASSWORD: {fromEnv: PGPASS}\n');
    const id = (await ok(['submit', '-f', path], { OMEGA_TOKEN: ciToken, PGPASS: 'hunter2-secret' })).trim();
    expect(id).toMatch(/^web-/);
    const shown = await ok(['job', id], { OMEGA_TOKEN: ciToken });
    expect(shown).toContain('Namespace:  team-a');
    expect(shown).toContain('Secret env: DB_PASSWORD (values are write-only)');
    const asJson = await ok(['--json', 'job', id], { OMEGA_TOKEN: ciToken });
    expect(JSON.parse(asJson)).toMatchObject({ namespace: 'team-a', spec: { secretEnvNames: ['DB_PASSWORD'], env: {} } });
    expect(asJson + shown).not.toContain('hunter2-secret');
    expect(await ok(['jobs', '--namespace', 'team-a'], { OMEGA_TOKEN: ciToken })).toMatch(new RegExp(`^ID\\s+NAME.*\\n${id}\\s+web\\s+batch`));
  });

  it('treats the same request id with another secret value as another spec', async () => {
    const path = job('idem', 'team-a', 'secretEnv: {KEY: {fromEnv: KEY}}\n');
    const first = (await ok(['submit', '-f', path, '--request-id', 'idem-1'], { OMEGA_TOKEN: ciToken, KEY: 'first-secret-value' })).trim();
    expect((await ok(['submit', '-f', path, '--request-id', 'idem-1'], { OMEGA_TOKEN: ciToken, KEY: 'first-secret-value' })).trim()).toBe(first);
    const changed = await omega(['submit', '-f', path, '--request-id', 'idem-1'], { OMEGA_TOKEN: ciToken, KEY: 'second-secret-value' });
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/^omega: .*idem-1/);
    expect(changed.stderr).not.toMatch(/secret-value/);
    expect(await ok(['kill', first], { OMEGA_TOKEN: ciToken })).toMatch(/^kill requested for /);
  });

  it('refuses what the token may not do with PERMISSION_DENIED, exit status 4', async () => {
    const other = await omega(['submit', '-f', job('other', 'default')], { OMEGA_TOKEN: ciToken });
    expect(other).toMatchObject({ code: EXIT_PERMISSION_DENIED, stdout: '', stderr: expect.stringMatching(/^omega: permission denied: .*default/) });
    const tokens = await omega(['token', 'list'], { OMEGA_TOKEN: ciToken });
    expect(tokens).toMatchObject({ code: EXIT_PERMISSION_DENIED, stderr: expect.stringMatching(/^omega: permission denied: .*admin/) });
  });

  it('refuses a submit over the quota with RESOURCE_EXHAUSTED, exit status 5, and a quota below use with exit status 6', async () => {
    expect(await ok(['quota', 'set', 'team-a', '--tasks', '1', '--cpu', '2'])).toMatch(/^Namespace: team-a\n.*\ncpu\s+500m\s+2\nmemory\s+64Mi\s+no limit\ntasks\s+1\s+1\n$/s);
    // Only --memory given: CPU and tasks keep their limits.
    expect(await ok(['quota', 'set', 'team-a', '--memory', '1Gi'])).toMatch(/\ncpu\s+500m\s+2\nmemory\s+64Mi\s+1Gi\ntasks\s+1\s+1\n$/);
    const over = await omega(['submit', '-f', job('more', 'team-a')], { OMEGA_TOKEN: ciToken });
    expect(over).toMatchObject({ code: EXIT_QUOTA_EXCEEDED, stdout: '', stderr: expect.stringMatching(/^omega: over quota: .*team-a.*tasks/) });
    const below = await omega(['quota', 'set', 'team-a', '--cpu', '100m']);
    expect(below).toMatchObject({ code: EXIT_FAILED_PRECONDITION, stderr: expect.stringMatching(/^omega: .*cpu/) });
    expect(await ok(['quota', 'get', 'team-a'], { OMEGA_TOKEN: ciToken })).toMatch(/\ncpu\s+500m\s+2\n/);
  });

  it('refuses a revoked token and an unknown one with UNAUTHENTICATED, exit status 3', async () => {
    expect(await ok(['token', 'revoke', 'ci'])).toBe('revoked token ci\n');
    const revoked = await omega(['whoami'], { OMEGA_TOKEN: ciToken });
    expect(revoked).toMatchObject({ code: EXIT_UNAUTHENTICATED, stderr: expect.stringMatching(/^omega: not authenticated: /) });
    expect(revoked.stderr).not.toContain(ciToken);
    const unknown = await omega(['jobs'], { OMEGA_TOKEN: `omg1.nobody.${Buffer.alloc(32, 1).toString('base64url')}` });
    expect(unknown.code).toBe(EXIT_UNAUTHENTICATED);
  });

  it('refuses an expired token with UNAUTHENTICATED, exit status 3', async () => {
    const created = await omega(['token', 'create', 'short', '--role', 'read', '--namespaces', '*', '--ttl', '1h']);
    expect(created.code).toBe(0);
    const short = created.stdout.trim();
    expect(await ok(['whoami'], { OMEGA_TOKEN: short })).toMatch(/^Token:\s+short\nRole:\s+read\nNamespaces:\s+\* \(every namespace\)\nExpires:\s+.*\(in (59|60)m\)\n$/);
    clockOffsetMs = 2 * 3_600_000;
    try {
      expect(await omega(['jobs'], { OMEGA_TOKEN: short })).toMatchObject({ code: EXIT_UNAUTHENTICATED, stderr: expect.stringMatching(/^omega: not authenticated: .*expired/) });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('cannot reach the TLS API in plaintext', async () => {
    const plain = await omega(['--insecure', 'jobs']);
    expect(plain).toMatchObject({ code: 1, stderr: expect.stringMatching(/^omega: cannot connect to the Omega API at .*: the API may require TLS/) });
  });
});
