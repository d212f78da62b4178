import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa } from '@omega/pki';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClientConfigError, parseClientConfig, resolveConnection, writeClientConfig, type ApiConnection, type ConnectionFlags } from './client-config.js';
import { EXIT_USAGE } from './errors.js';

/** Well-formed tokens (32 bytes of base64url), one per source, to tell which one won. */
const token = (name: string): string => `omg1.${name}.${Buffer.alloc(32, name.charCodeAt(0)).toString('base64url')}`;
const FILE_TOKEN = token('file');
const ENV_TOKEN = token('env');
const FLAG_TOKEN = token('flag');

let root: string;
let caPem: string;
let dir: string;
let n = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'omega-client-config-'));
  caPem = (await createCa({ commonName: 'test CA' })).certPem;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeEach(() => {
  dir = join(root, `case-${n++}`);
  mkdirSync(dir);
});

/** Writes `<dir>/<name>` and returns its path. */
function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

function config(fields: Record<string, unknown>, name = 'client.yaml'): string {
  file('ca.pem', caPem);
  return file(name, Object.entries(fields).map(([k, v]) => `${k}: ${JSON.stringify(v)}\n`).join(''));
}

function resolveIn(flags: ConnectionFlags, env: NodeJS.ProcessEnv = {}): ApiConnection {
  return resolveConnection(flags, env, dir);
}

function refusal(flags: ConnectionFlags, env: NodeJS.ProcessEnv = {}): ClientConfigError {
  try {
    resolveIn(flags, env);
  } catch (error) {
    if (error instanceof ClientConfigError) return error;
    throw error;
  }
  throw new Error('the connection was resolved');
}

const tokenOf = (c: ApiConnection): string | undefined => (c.security.kind === 'tls' ? c.security.token : undefined);

describe('where the client config comes from', () => {
  it('reads --config, with ca relative to the file directory', () => {
    const path = config({ api: '10.0.0.1:7070', ca: 'ca.pem', token: FILE_TOKEN }, 'sub/client.yaml');
    file('sub/ca.pem', caPem);
    const c = resolveIn({ config: path });
    expect(c).toMatchObject({ address: '10.0.0.1:7070', configFile: path, security: { kind: 'tls', caPath: join(dir, 'sub/ca.pem'), token: FILE_TOKEN } });
    expect(c.security.kind === 'tls' && c.security.ca.toString()).toBe(caPem);
  });

  it('takes --config over $OMEGA_CONFIG, and $OMEGA_CONFIG over ./.omega/client.yaml', () => {
    const flagged = config({ api: '127.0.0.1:1', ca: 'ca.pem', token: FILE_TOKEN }, 'flag.yaml');
    const env = config({ api: '127.0.0.1:2', ca: 'ca.pem', token: FILE_TOKEN }, 'env.yaml');
    config({ api: '127.0.0.1:3', ca: '../ca.pem', token: FILE_TOKEN }, '.omega/client.yaml');
    expect(resolveIn({ config: flagged }, { OMEGA_CONFIG: env }).address).toBe('127.0.0.1:1');
    expect(resolveIn({}, { OMEGA_CONFIG: env }).address).toBe('127.0.0.1:2');
    expect(resolveIn({}, { OMEGA_CONFIG: '' }).address).toBe('127.0.0.1:3');
    expect(resolveIn({}).configFile).toBe(join(dir, '.omega/client.yaml'));
  });

  it('resolves a relative --config or $OMEGA_CONFIG against the working directory', () => {
    config({ ca: 'ca.pem', token: FILE_TOKEN }, 'rel.yaml');
    expect(resolveIn({ config: 'rel.yaml' }).configFile).toBe(join(dir, 'rel.yaml'));
    expect(resolveIn({}, { OMEGA_CONFIG: './rel.yaml' }).configFile).toBe(join(dir, 'rel.yaml'));
  });
});

describe('what overrides the file', () => {
  it('takes the API from --api, else $OMEGA_API, else the file, else 127.0.0.1:7070', () => {
    const path = config({ api: '127.0.0.1:9', ca: 'ca.pem', token: FILE_TOKEN });
    expect(resolveIn({ config: path, api: '127.0.0.1:5' }, { OMEGA_API: '127.0.0.1:6' }).address).toBe('127.0.0.1:5');
    expect(resolveIn({ config: path }, { OMEGA_API: '127.0.0.1:6' }).address).toBe('127.0.0.1:6');
    expect(resolveIn({ config: path }).address).toBe('127.0.0.1:9');
    expect(resolveIn({ config: config({ ca: 'ca.pem', token: FILE_TOKEN }, 'noapi.yaml') }).address).toBe('127.0.0.1:7070');
  });

  it('takes the token from --token, else $OMEGA_TOKEN, else the file', () => {
    const path = config({ ca: 'ca.pem', token: FILE_TOKEN });
    expect(tokenOf(resolveIn({ config: path, token: FLAG_TOKEN }, { OMEGA_TOKEN: ENV_TOKEN }))).toBe(FLAG_TOKEN);
    expect(tokenOf(resolveIn({ config: path }, { OMEGA_TOKEN: ENV_TOKEN }))).toBe(ENV_TOKEN);
    expect(tokenOf(resolveIn({ config: path }))).toBe(FILE_TOKEN);
  });

  it('takes the CA from --ca (relative to the working directory), else $OMEGA_CA, else the file', () => {
    const path = config({ ca: 'ca.pem', token: FILE_TOKEN });
    file('flag-ca.pem', caPem);
    file('env-ca.pem', caPem);
    const caPath = (c: ApiConnection): string | undefined => (c.security.kind === 'tls' ? c.security.caPath : undefined);
    expect(caPath(resolveIn({ config: path, ca: 'flag-ca.pem' }, { OMEGA_CA: 'env-ca.pem' }))).toBe(join(dir, 'flag-ca.pem'));
    expect(caPath(resolveIn({ config: path }, { OMEGA_CA: 'env-ca.pem' }))).toBe(join(dir, 'env-ca.pem'));
    expect(caPath(resolveIn({ config: path }))).toBe(join(dir, 'ca.pem'));
  });

  it('works from flags and env alone, without any file', () => {
    file('ca.pem', caPem);
    expect(resolveIn({ ca: 'ca.pem' }, { OMEGA_TOKEN: ENV_TOKEN, OMEGA_API: '127.0.0.1:8' })).toMatchObject({ address: '127.0.0.1:8', security: { kind: 'tls', token: ENV_TOKEN } });
  });

  it('goes plaintext with --insecure whatever the file says, and then sends no token', () => {
    const path = config({ ca: 'ca.pem', token: FILE_TOKEN });
    expect(resolveIn({ config: path, insecure: true })).toMatchObject({ address: '127.0.0.1:7070', security: { kind: 'insecure' } });
    expect(resolveIn({ insecure: true })).toEqual({ address: '127.0.0.1:7070', security: { kind: 'insecure' } });
  });

  it("goes plaintext with the file's insecure: true, unless a CA is given explicitly", () => {
    const path = config({ api: '127.0.0.1:4', insecure: true });
    expect(resolveIn({ config: path }).security).toEqual({ kind: 'insecure' });
    expect(resolveIn({ config: path, ca: 'ca.pem' }, { OMEGA_TOKEN: ENV_TOKEN }).security.kind).toBe('tls');
  });
});

describe('every bad value names its source and field', () => {
  it('says what is missing when there is no config at all', () => {
    const error = refusal({});
    expect(error.message).toBe('no API credentials: pass --config, set OMEGA_CONFIG, or run omega dev (it prints export OMEGA_CONFIG=...); --insecure for a plaintext API');
    expect(error.exitCode).toBe(EXIT_USAGE);
    expect(error.retryable).toBe(false);
  });

  it('names a config file that does not exist, by where it was named', () => {
    expect(refusal({ config: 'nope.yaml' }).message).toBe(`--config (${join(dir, 'nope.yaml')}): file not found`);
    expect(refusal({}, { OMEGA_CONFIG: '/x/client.yaml' }).message).toBe('$OMEGA_CONFIG (/x/client.yaml): file not found');
  });

  it('names a CA file that does not exist or is not a certificate', () => {
    const path = config({ ca: 'missing.pem', token: FILE_TOKEN });
    expect(refusal({}, { OMEGA_CONFIG: path }).message).toBe(`$OMEGA_CONFIG (${path}): ca: file not found (${join(dir, 'missing.pem')})`);
    file('key.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    expect(refusal({ config: path, ca: 'key.pem' }).message).toBe(`--ca: is not a PEM certificate (${join(dir, 'key.pem')})`);
    expect(refusal({ config: path }, { OMEGA_CA: dir }).message).toBe(`$OMEGA_CA: is a directory (${dir})`);
  });

  it('names a file without ca:, and one with both ca: and insecure: true', () => {
    const path = config({ api: '127.0.0.1:1', token: FILE_TOKEN });
    expect(refusal({ config: path }).message).toBe(`--config (${path}): ca: is required (the cell's CA certificate, PEM), unless insecure: true`);
    const both = config({ ca: 'ca.pem', insecure: true }, 'both.yaml');
    expect(refusal({ config: both }).message).toBe(`--config (${both}): insecure: true contradicts ca: (a plaintext API has no certificate); remove one`);
  });

  it('says where a token could come from when none is given', () => {
    const path = config({ ca: 'ca.pem' });
    expect(refusal({ config: path }).message).toBe(`no API token: set OMEGA_TOKEN, add token: to --config (${path}), or pass --token`);
    file('ca.pem', caPem);
    expect(refusal({ ca: 'ca.pem' }).message).toBe('no API token: set OMEGA_TOKEN, use a client config with token:, or pass --token');
  });

  it('names a malformed token by its source and never prints it', () => {
    const path = config({ ca: 'ca.pem', token: 'omg1.file.tooshort' });
    const bad = 'omg1.Bad_Name.c2VjcmV0';
    expect(refusal({ config: path }).message).toBe(`--config (${path}): token: the token's secret is not 32 bytes of unpadded base64url (as omega token create prints it)`);
    const fromEnv = refusal({ config: path }, { OMEGA_TOKEN: bad });
    expect(fromEnv.message).toMatch(/^\$OMEGA_TOKEN: the token's name is not a DNS label/);
    expect(fromEnv.message).not.toContain('c2VjcmV0');
    expect(refusal({ config: path, token: 'hunter2' }).message).toBe('--token: not an Omega token (expected omg1.<name>.<secret>) (as omega token create prints it)');
  });

  it('names a malformed address by its source', () => {
    const path = config({ api: 'nowhere', ca: 'ca.pem', token: FILE_TOKEN });
    expect(refusal({ config: path }).message).toBe(`--config (${path}): api: "nowhere" is not HOST:PORT`);
    expect(refusal({ config: path }, { OMEGA_API: 'x:0' }).message).toBe('$OMEGA_API: "x:0" is not HOST:PORT');
    expect(refusal({ config: path, api: 'x:70000' }).message).toBe('--api: "x:70000" is not HOST:PORT');
  });

  it('names unknown fields, wrong types and YAML syntax errors in the file', () => {
    expect(() => parseClientConfig('api: 1.2.3.4:5\ncafile: x\n', 'F')).toThrow('F: cafile: is not a known field (known: api, ca, token, insecure)');
    expect(() => parseClientConfig('insecure: yes please\n', 'F')).toThrow('F: insecure: must be true or false');
    expect(() => parseClientConfig('token: 12\n', 'F')).toThrow('F: token: must be a non-empty string');
    expect(() => parseClientConfig('- a\n- b\n', 'F')).toThrow('F: must be a mapping of api, ca, token, insecure');
    expect(() => parseClientConfig('api: [\n', 'F')).toThrow(/^F: line \d+, column \d+: /);
    expect(parseClientConfig('', 'F')).toEqual({});
  });
});

describe('writeClientConfig', () => {
  it('writes a private file that resolves back to the same connection, the CA relative to it', () => {
    file('pki/ca.pem', caPem);
    const path = join(dir, 'client.yaml');
    writeClientConfig(path, { api: '127.0.0.1:7070', ca: join(dir, 'pki/ca.pem'), token: FILE_TOKEN });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toContain('ca: pki/ca.pem');
    expect(resolveIn({ config: path })).toMatchObject({ address: '127.0.0.1:7070', security: { kind: 'tls', caPath: join(dir, 'pki/ca.pem'), token: FILE_TOKEN } });
    writeClientConfig(path, { api: '127.0.0.1:7071', insecure: true });
    expect(resolveIn({ config: path })).toMatchObject({ address: '127.0.0.1:7071', security: { kind: 'insecure' } });
  });
});
