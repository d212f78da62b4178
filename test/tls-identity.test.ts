/**
 * Loading a component's TLS identity from its `--ca`, `--cert` and `--key` files, with
 * certificates made by a test CA: what is accepted, and the error (naming the flag) for each
 * kind of wrong file.
 */
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlagError, TlsFileError, loadTlsIdentity, parseEtcdConnection, type TlsFiles } from '@omega/cell-state';
import { createTestPki, type TestPki } from './support/test-pki.js';

let pki: TestPki;
let api: TlsFiles;

beforeAll(async () => {
  pki = await createTestPki();
  api = pki.files('omega-api');
});

afterAll(() => pki?.remove());

function failure(files: TlsFiles, now?: Date): TlsFileError {
  try {
    loadTlsIdentity(files, now);
  } catch (error) {
    if (error instanceof TlsFileError) return error;
    throw error;
  }
  throw new Error('the identity was accepted');
}

describe('loading a TLS identity', () => {
  it('loads the three files and reads the etcd user from the certificate', () => {
    const identity = loadTlsIdentity(api);
    expect(identity.commonName).toBe('omega-api');
    expect(identity.ca.toString()).toContain('BEGIN CERTIFICATE');
    expect(identity.key.toString()).toContain('PRIVATE KEY');
    expect(identity.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it('names the flag of a missing, unreadable or non-PEM file', () => {
    expect(failure({ ...api, certFile: join(pki.dir, 'nope.crt') })).toMatchObject({ flag: '--cert', message: `--cert: ${join(pki.dir, 'nope.crt')}: does not exist` });
    const garbage = join(pki.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    expect(failure({ ...api, caFile: garbage })).toMatchObject({ flag: '--ca', message: expect.stringContaining('is not PEM') });
    expect(failure({ ...api, keyFile: pki.caFile })).toMatchObject({ flag: '--key', message: expect.stringContaining('not a PEM private key') });
    expect(failure({ ...api, caFile: pki.dir })).toMatchObject({ flag: '--ca', message: expect.stringContaining('is a directory') });
    if (process.getuid?.() !== 0) {
      const locked = join(pki.dir, 'locked.key');
      copyFileSync(api.keyFile, locked);
      chmodSync(locked, 0o000);
      expect(failure({ ...api, keyFile: locked })).toMatchObject({ flag: '--key', message: expect.stringContaining('permission denied') });
    }
  });

  it('refuses a key of another certificate, a certificate of another CA, and one expired or not yet valid', async () => {
    expect(failure({ ...api, keyFile: pki.files('omega-scheduler').keyFile })).toMatchObject({ flag: '--key', message: expect.stringContaining('is not the private key of the certificate') });
    const foreign = await pki.foreign('omega-api');
    expect(failure({ ...foreign, caFile: pki.caFile })).toMatchObject({ flag: '--cert', message: expect.stringContaining('was not issued by the CA') });
    expect(failure(api, new Date(Date.now() + 30 * 86_400_000))).toMatchObject({ flag: '--cert', message: expect.stringContaining('expired on') });
    expect(failure(api, new Date(Date.now() - 86_400_000))).toMatchObject({ flag: '--cert', message: expect.stringContaining('is not valid before') });
  });

  it('is what the process flags load, as a FlagError an entry point reports as a bad flag', () => {
    const connection = parseEtcdConnection({ ca: api.caFile, cert: api.certFile, key: api.keyFile });
    expect(connection.endpoints).toEqual(['https://127.0.0.1:2379']);
    expect(connection.security.mode === 'tls' && connection.security.identity.commonName).toBe('omega-api');
    const dir = join(pki.dir, 'empty');
    mkdirSync(dir);
    expect(() => parseEtcdConnection({ ca: api.caFile, cert: join(dir, 'x.crt'), key: api.keyFile })).toThrow(FlagError);
  });
});
