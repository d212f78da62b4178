/**
 * A cell's private certificate authority and the certificates it signs, as PEM text.
 *
 * ```
 *   createCa({ commonName, validDays })            ─► CA cert (self-signed, CA:TRUE pathlen 0) + key
 *   issueCertificate(ca, { commonName, hosts, validDays })
 *                                                  ─► cert (signed by the CA) + key (PKCS#8)
 *          SANs: every host (DNS names as DNS, IPv4/IPv6 as IP)
 *          EKU:  serverAuth + clientAuth (one identity both serves and calls)
 * ```
 *
 * Keys are ECDSA P-256, signatures ECDSA with SHA-256: what Node's TLS, grpc-js and Go's
 * crypto/tls (etcd) all accept. Serial numbers are 16 random bytes, positive (Go refuses
 * negative ones). Validity starts five minutes in the past so a peer whose clock is a little
 * behind does not refuse a certificate issued a moment ago.
 *
 * Built on `@peculiar/x509` over Node's webcrypto; every input is checked first and a bad one is
 * refused with an {@link InvalidPkiRequestError} naming the field. Pure: nothing is written here
 * (see pki-dir.ts).
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs the Reflect polyfill, before it loads.
import { X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { InconsistentPkiError, InvalidPkiRequestError } from './errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A certificate and its private key, both PEM (`CERTIFICATE`, PKCS#8 `PRIVATE KEY`). */
export interface CertifiedKey {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A certificate authority: its self-signed certificate and the key that signs. */
export type CertificateAuthority = CertifiedKey;

export interface CreateCaRequest {
  /** The CA's subject CN, e.g. `omega-dev CA`. 1-64 printable characters. */
  readonly commonName: string;
  /** Days it stays valid (whole, 1-36500). Default {@link DEFAULT_CA_VALID_DAYS}. */
  readonly validDays?: number;
}

export interface IssueRequest {
  /** The subject CN: for Omega's components, the etcd user name (`omega-api`, ...). */
  readonly commonName: string;
  /** DNS names and IP addresses, each one subject alternative name; may be empty. */
  readonly hosts: readonly string[];
  /** Days it stays valid (whole, 1-36500). Default {@link DEFAULT_CERT_VALID_DAYS}. */
  readonly validDays?: number;
}

export const DEFAULT_CA_VALID_DAYS = 3650;
export const DEFAULT_CERT_VALID_DAYS = 825;
const MAX_VALID_DAYS = 36_500;
const DAY_MS = 86_400_000;
const CLOCK_SKEW_MS = 5 * 60_000;

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
// Printable, no characters that would need escaping in a distinguished name (, + = " \ < > ; #).
const COMMON_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$/;
const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** What is wrong with a common name, or undefined. */
export function commonNameProblem(commonName: unknown): string | undefined {
  if (typeof commonName === 'string' && COMMON_NAME.test(commonName)) return undefined;
  return `must be 1-64 letters, digits, spaces or . _ @ : -, starting with a letter or digit, got ${JSON.stringify(commonName)}`;
}

function checkCommonName(commonName: unknown): string {
  const problem = commonNameProblem(commonName);
  if (problem !== undefined) throw new InvalidPkiRequestError('commonName', problem);
  return commonName as string;
}

function checkValidDays(validDays: unknown, fallback: number): number {
  const days = validDays ?? fallback;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_VALID_DAYS) {
    throw new InvalidPkiRequestError('validDays', `must be a whole number of days from 1 to ${MAX_VALID_DAYS}, got ${JSON.stringify(validDays)}`);
  }
  return days;
}

/** Whether `host` is an IP address (4 or 6) or a DNS name (a leading `*.` allowed); a problem otherwise. */
export function hostProblem(host: unknown): string | undefined {
  if (typeof host !== 'string' || host === '') return 'must be a DNS name or an IP address, got an empty value';
  if (isIP(host) !== 0) return undefined;
  if (host.length <= 253 && DNS_NAME.test(host)) return undefined;
  return `${JSON.stringify(host)} is neither a DNS name nor an IP address`;
}

function checkHosts(hosts: unknown): string[] {
  if (!Array.isArray(hosts)) throw new InvalidPkiRequestError('hosts', 'must be a list of DNS names and IP addresses');
  hosts.forEach((host, i) => {
    const problem = hostProblem(host);
    if (problem !== undefined) throw new InvalidPkiRequestError(`hosts[${i}]`, problem);
  });
  return [...new Set(hosts as string[])];
}

/** 16 random bytes as hex, the top bit clear (a positive INTEGER) and the first byte non-zero (DER minimal). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 1) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function validity(validDays: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + validDays * DAY_MS) };
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Creates a new CA: a fresh P-256 key and a self-signed certificate that may sign end-entity certificates only. */
export async function createCa(request: CreateCaRequest): Promise<CertificateAuthority> {
  const commonName = checkCommonName(request.commonName);
  const validDays = checkValidDays(request.validDays, DEFAULT_CA_VALID_DAYS);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName] }],
    ...validity(validDays),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      // pathlen 0: the CA signs leaves, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** The CA's certificate and signing key, checked to belong together and to be a CA. */
async function signerOf(ca: CertificateAuthority): Promise<{ cert: x509.X509Certificate; key: webcrypto.CryptoKey }> {
  let cert: x509.X509Certificate;
  let nodeCert: NodeX509Certificate;
  try {
    cert = new x509.X509Certificate(ca.certPem);
    nodeCert = new NodeX509Certificate(ca.certPem);
  } catch (cause) {
    throw new InconsistentPkiError('ca.certPem', 'is not a PEM certificate', { cause });
  }
  if (!nodeCert.ca) throw new InconsistentPkiError('ca.certPem', 'is not a CA certificate (basicConstraints CA:TRUE missing)');
  let keyDer: ArrayBuffer;
  try {
    if (!nodeCert.checkPrivateKey(createPrivateKey(ca.keyPem))) throw new Error('the key does not belong to the certificate');
    const blocks = x509.PemConverter.decode(ca.keyPem);
    if (blocks.length !== 1 || !/-----BEGIN PRIVATE KEY-----/.test(ca.keyPem)) throw new Error('not one PKCS#8 PRIVATE KEY block');
    keyDer = blocks[0] as ArrayBuffer;
  } catch (cause) {
    throw new InconsistentPkiError('ca.keyPem', `is not the CA's PKCS#8 P-256 private key: ${(cause as Error).message}`, { cause });
  }
  const key = (await webcrypto.subtle.importKey('pkcs8', keyDer, ALGORITHM, false, ['sign'])) as webcrypto.CryptoKey;
  return { cert, key };
}

/**
 * Issues a certificate signed by `ca` for a new P-256 key: CN `commonName`, one SAN per host,
 * EKU serverAuth + clientAuth, CA:FALSE. Throws {@link InvalidPkiRequestError} for a bad request
 * and {@link InconsistentPkiError} when `ca` is not a usable CA (key and certificate apart).
 */
export async function issueCertificate(ca: CertificateAuthority, request: IssueRequest): Promise<CertifiedKey> {
  const commonName = checkCommonName(request.commonName);
  const hosts = checkHosts(request.hosts);
  const validDays = checkValidDays(request.validDays, DEFAULT_CERT_VALID_DAYS);
  const issuer = await signerOf(ca);
  const keys = await generateKeys();
  const { notBefore, notAfter } = validity(validDays);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(issuer.cert),
  ];
  if (hosts.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(hosts.map((h) => (isIP(h) === 0 ? { type: 'dns', value: h } : { type: 'ip', value: h }))));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: [commonName] }],
    issuer: issuer.cert.subjectName,
    // Never past the CA's own end: a chain is only as valid as its shortest link.
    notBefore,
    notAfter: notAfter > issuer.cert.notAfter ? issuer.cert.notAfter : notAfter,
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: issuer.key,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}
