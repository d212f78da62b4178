import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { createCa, issueCertificate } from './certificates.js';
import { InconsistentPkiError, InvalidPkiRequestError } from './errors.js';

const HOSTS = ['127.0.0.1', '::1', 'localhost', 'api.example.test'];

describe('createCa and issueCertificate', () => {
  it('issues a certificate that verifies against the CA, with the CN, SANs and both EKUs asked for', async () => {
    const ca = await createCa({ commonName: 'omega test CA', validDays: 30 });
    const issued = await issueCertificate(ca, { commonName: 'omega-api', hosts: HOSTS, validDays: 7 });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(issued.certPem);

    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toBe('CN=omega test CA');
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=omega-api');
    expect(cert.issuer).toBe('CN=omega test CA');
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, DNS:api.example.test');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
    expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(createPrivateKey(issued.keyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(7);
  });

  it('gives every certificate its own positive serial number', async () => {
    const ca = await createCa({ commonName: 'serial CA' });
    const serials = await Promise.all([1, 2, 3].map(async () => new X509Certificate((await issueCertificate(ca, { commonName: 'x', hosts: [] })).certPem).serialNumber));
    expect(new Set(serials).size).toBe(3);
    for (const serial of serials) expect(Number.parseInt(serial.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it('does not let a certificate outlive its CA', async () => {
    const ca = await createCa({ commonName: 'short CA', validDays: 2 });
    const cert = new X509Certificate((await issueCertificate(ca, { commonName: 'long', hosts: [], validDays: 365 })).certPem);
    expect(cert.validTo).toBe(new X509Certificate(ca.certPem).validTo);
  });

  it('refuses bad requests naming the field', async () => {
    const ca = await createCa({ commonName: 'checks CA' });
    await expect(createCa({ commonName: '' })).rejects.toMatchObject({ field: 'commonName' });
    await expect(createCa({ commonName: 'a,b=c' })).rejects.toBeInstanceOf(InvalidPkiRequestError);
    await expect(createCa({ commonName: 'ok', validDays: 0 })).rejects.toMatchObject({ field: 'validDays' });
    await expect(createCa({ commonName: 'ok', validDays: 1.5 })).rejects.toMatchObject({ field: 'validDays' });
    await expect(issueCertificate(ca, { commonName: 'x', hosts: ['localhost', 'bad host'] })).rejects.toMatchObject({ field: 'hosts[1]', message: expect.stringContaining('"bad host"') as unknown });
    await expect(issueCertificate(ca, { commonName: 'x', hosts: [''] })).rejects.toMatchObject({ field: 'hosts[0]' });
  });

  it('refuses a CA whose key is not its certificate’s', async () => {
    const one = await createCa({ commonName: 'one' });
    const two = await createCa({ commonName: 'two' });
    await expect(issueCertificate({ certPem: one.certPem, keyPem: two.keyPem }, { commonName: 'x', hosts: [] })).rejects.toBeInstanceOf(InconsistentPkiError);
    const leaf = await issueCertificate(one, { commonName: 'leaf', hosts: [] });
    await expect(issueCertificate(leaf, { commonName: 'x', hosts: [] })).rejects.toThrow(/not a CA certificate/);
  });
});

describe('certificates over TLS', () => {
  /** A TLS server that requires a client certificate from `ca`; resolves with the client's CN. */
  async function handshake(server: { certPem: string; keyPem: string; ca: string }, client: { certPem?: string; keyPem?: string; ca: string }, host: string): Promise<string> {
    const tlsServer = createServer({ cert: server.certPem, key: server.keyPem, ca: server.ca, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
      socket.end(String(socket.getPeerCertificate().subject?.CN ?? ''));
    });
    tlsServer.on('tlsClientError', () => undefined);
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    const { port } = tlsServer.address() as { port: number };
    try {
      return await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername: host === '127.0.0.1' ? undefined : host, ca: client.ca, cert: client.certPem, key: client.keyPem });
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
        socket.on('close', () => resolve(text));
      });
    } finally {
      tlsServer.close();
    }
  }

  it('lets a server and a client of the same CA handshake both ways, the server seeing the client’s CN', async () => {
    const ca = await createCa({ commonName: 'tls CA' });
    const server = await issueCertificate(ca, { commonName: 'omega-api', hosts: HOSTS });
    const client = await issueCertificate(ca, { commonName: 'omega-scheduler', hosts: HOSTS });
    expect(await handshake({ ...server, ca: ca.certPem }, { ...client, ca: ca.certPem }, '127.0.0.1')).toBe('omega-scheduler');
    expect(await handshake({ ...server, ca: ca.certPem }, { ...client, ca: ca.certPem }, 'localhost')).toBe('omega-scheduler');
  });

  it('is refused by a client that trusts another CA, and refuses a client without a certificate', async () => {
    const ca = await createCa({ commonName: 'tls CA' });
    const other = await createCa({ commonName: 'other CA' });
    const server = await issueCertificate(ca, { commonName: 'omega-api', hosts: HOSTS });
    const client = await issueCertificate(ca, { commonName: 'omega-scheduler', hosts: HOSTS });
    await expect(handshake({ ...server, ca: ca.certPem }, { ...client, ca: other.certPem }, '127.0.0.1')).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    // TLS 1.3: the server's refusal arrives after the client's handshake, as an alert or an empty answer.
    const answer = await handshake({ ...server, ca: ca.certPem }, { ca: ca.certPem }, '127.0.0.1').catch((error: Error) => `refused: ${error.message}`);
    expect(answer).not.toBe('omega-scheduler');
    expect(answer === '' || answer.startsWith('refused')).toBe(true);
  });

  it('is refused for a host that is not among its SANs', async () => {
    const ca = await createCa({ commonName: 'tls CA' });
    const server = await issueCertificate(ca, { commonName: 'omega-api', hosts: ['localhost'] });
    const client = await issueCertificate(ca, { commonName: 'c', hosts: [] });
    await expect(handshake({ ...server, ca: ca.certPem }, { ...client, ca: ca.certPem }, '127.0.0.1')).rejects.toThrow(/IP: 127\.0\.0\.1 is not in the cert's list/);
  });
});
