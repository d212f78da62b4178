import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from './certificates.js';
import { InconsistentPkiError, InvalidPkiRequestError } from './errors.js';
import { identityFiles, loadOrCreatePki, writePki } from './pki-dir.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'omega-pki-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe('loadOrCreatePki', () => {
  it('creates the CA and every identity with private files, each certificate signed by the CA', async () => {
    const dir = join(root, 'pki');
    const pki = await loadOrCreatePki(dir, [{ name: 'root' }, { name: 'omega-api', hosts: ['api.example.test'] }]);
    expect(pki.createdCa).toBe(true);
    expect(pki.issued.map((i) => [i.name, i.reason])).toEqual([['root', 'new'], ['omega-api', 'new']]);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(pki.caKeyFile)).toBe(0o600);
    const files = pki.identities.get('omega-api');
    expect(files).toEqual(identityFiles(dir, 'omega-api'));
    expect(files).toEqual({ caFile: join(dir, 'ca.pem'), certFile: join(dir, 'omega-api.pem'), keyFile: join(dir, 'omega-api-key.pem') });
    expect(await mode(files?.keyFile ?? '')).toBe(0o600);
    const ca = new X509Certificate(await readFile(pki.caFile));
    const cert = new X509Certificate(await readFile(files?.certFile ?? ''));
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=omega-api');
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, DNS:api.example.test');
  });

  it('reuses everything that is there and issues only the identities that are missing', async () => {
    const first = await loadOrCreatePki(root, [{ name: 'root' }, { name: 'omega-api' }]);
    const before = await readFile(first.identities.get('omega-api')?.certFile ?? '', 'utf8');
    const caBefore = await readFile(first.caFile, 'utf8');
    const second = await loadOrCreatePki(root, [{ name: 'root' }, { name: 'omega-api' }, { name: 'omega-agent-dev-0' }]);
    expect(second.createdCa).toBe(false);
    expect(second.issued).toEqual([{ name: 'omega-agent-dev-0', reason: 'new' }]);
    expect(await readFile(second.caFile, 'utf8')).toBe(caBefore);
    expect(await readFile(second.identities.get('omega-api')?.certFile ?? '', 'utf8')).toBe(before);
    const third = await loadOrCreatePki(root, [{ name: 'omega-api' }]);
    expect(third.issued).toEqual([]);
  });

  it('issues again a certificate that lacks a host, has lost its key, or was signed by another CA', async () => {
    await loadOrCreatePki(root, [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    await rm(identityFiles(root, 'b').keyFile);
    const stranger = await createCa({ commonName: 'stranger' });
    await writePki(root, undefined, { c: await issueCertificate(stranger, { commonName: 'c', hosts: ['127.0.0.1', '::1', 'localhost'] }) });
    const again = await loadOrCreatePki(root, [{ name: 'a', hosts: ['10.0.0.7'] }, { name: 'b' }, { name: 'c' }]);
    expect(again.issued).toEqual([
      { name: 'a', reason: 'it lacks the host(s) 10.0.0.7' },
      { name: 'b', reason: 'its key file is missing' },
      { name: 'c', reason: 'it was not signed by this CA' },
    ]);
    expect(new X509Certificate(await readFile(identityFiles(root, 'a').certFile)).subjectAltName).toContain('IP Address:10.0.0.7');
    expect((await loadOrCreatePki(root, [{ name: 'a', hosts: ['10.0.0.7'] }, { name: 'b' }, { name: 'c' }])).issued).toEqual([]);
  });

  it('issues again a certificate with less than a tenth of its life left', async () => {
    await loadOrCreatePki(root, [{ name: 'a', validDays: 10 }]);
    const later = Date.now() + 9.5 * 86_400_000;
    expect((await loadOrCreatePki(root, [{ name: 'a', validDays: 10 }], { now: () => later })).issued).toEqual([{ name: 'a', reason: expect.stringMatching(/^it expires on /) as unknown }]);
  });

  it('refuses half a CA, a CA key of another CA and an expired CA, and writes nothing', async () => {
    await loadOrCreatePki(root, [{ name: 'a' }]);
    const caKey = await readFile(join(root, 'ca-key.pem'), 'utf8');
    await rm(join(root, 'ca-key.pem'));
    await expect(loadOrCreatePki(root, [{ name: 'b' }])).rejects.toThrow(/ca-key\.pem: is missing but ca\.pem is there/);
    await writeFile(join(root, 'ca-key.pem'), (await createCa({ commonName: 'other' })).keyPem);
    await expect(loadOrCreatePki(root, [{ name: 'b' }])).rejects.toBeInstanceOf(InconsistentPkiError);
    await writeFile(join(root, 'ca-key.pem'), caKey);
    await expect(loadOrCreatePki(root, [{ name: 'b' }], { now: () => Date.now() + 4000 * 86_400_000 })).rejects.toThrow(/expired on/);
    await expect(stat(identityFiles(root, 'b').certFile)).rejects.toMatchObject({ code: 'ENOENT' });
    await rm(join(root, 'ca.pem'));
    await expect(loadOrCreatePki(root, [{ name: 'b' }])).rejects.toThrow(/ca\.pem: is missing but ca-key\.pem is there/);
  });

  it('refuses a bad identity naming it before it creates anything', async () => {
    const dir = join(root, 'never');
    await expect(loadOrCreatePki(dir, [{ name: 'ok' }, { name: 'Bad Name' }])).rejects.toMatchObject({ field: 'identities[1].name' });
    await expect(loadOrCreatePki(dir, [{ name: 'ca' }])).rejects.toBeInstanceOf(InvalidPkiRequestError);
    await expect(loadOrCreatePki(dir, [{ name: 'x' }, { name: 'x' }])).rejects.toThrow(/given twice/);
    await expect(loadOrCreatePki(dir, [{ name: 'x', hosts: ['no spaces'] }])).rejects.toMatchObject({ field: 'identities[0].hosts[0]' });
    await expect(loadOrCreatePki(dir, [{ name: 'x', commonName: 'a,b' }])).rejects.toMatchObject({ field: 'identities[0].commonName' });
    await expect(loadOrCreatePki(dir, [{ name: 'x' }], { caCommonName: 'CA (dev)' })).rejects.toMatchObject({ field: 'caCommonName' });
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
