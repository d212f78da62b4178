/**
 * A PKI directory: the CA and one certificate per identity, as files that Omega's processes take
 * with `--ca`, `--cert` and `--key`.
 *
 * ```
 *   <dir>/            0700
 *     ca.pem          the CA certificate (what every process verifies peers with)
 *     ca-key.pem      0600  the CA's signing key
 *     <name>.pem      an identity's certificate (CN = its etcd user name)
 *     <name>-key.pem  0600  its private key
 * ```
 *
 * {@link loadOrCreatePki} is idempotent: the first call creates the CA and every identity; a later
 * call reuses what is there and issues only what is missing or no longer right (a certificate
 * that is not signed by this CA, does not match its key, lacks a requested host, has another CN,
 * or has less than a tenth of its life left). It never replaces a CA: half a CA (certificate
 * without key or the reverse), a key that is not the certificate's, or an expired CA is refused
 * with an {@link InconsistentPkiError} that says what to remove. Files are written to a temporary
 * name and renamed, key before certificate, so a crash leaves either the old pair or a
 * certificate-less key (issued again next time), never a certificate with a foreign key.
 *
 * Not for concurrent writers on one directory (one `omega dev` per data directory holds a lock).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_CERT_VALID_DAYS,
  commonNameProblem,
  createCa,
  hostProblem,
  issueCertificate,
  type CertificateAuthority,
  type CertifiedKey,
} from './certificates.js';
import { InconsistentPkiError, InvalidPkiRequestError, PkiFileError } from './errors.js';

/** Every certificate this package issues for a component carries these, so local peers verify it. */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', '::1', 'localhost'];

/** One identity to keep in the directory. */
export interface PkiIdentity {
  /** File name stem (`<name>.pem`, `<name>-key.pem`); also the CN unless `commonName` says otherwise. */
  readonly name: string;
  readonly commonName?: string;
  /** Extra SANs beyond {@link LOOPBACK_HOSTS}. */
  readonly hosts?: readonly string[];
  readonly validDays?: number;
}

/** The files a process is started with: `--ca`, `--cert`, `--key` (the shape of cell-state's `IdentityFiles`). */
export interface IdentityFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface PkiDirectory {
  readonly dir: string;
  /** `<dir>/ca.pem`. */
  readonly caFile: string;
  readonly caKeyFile: string;
  /** Every requested identity's files, by name. */
  readonly identities: ReadonlyMap<string, IdentityFiles>;
  /** Whether this call created the CA. */
  readonly createdCa: boolean;
  /** The identities this call issued (new, or replacing one that was no longer right), with why. */
  readonly issued: readonly { readonly name: string; readonly reason: string }[];
}

export interface LoadOrCreateOptions {
  /** CN of a CA created by this call. Default `omega CA`. */
  readonly caCommonName?: string;
  readonly caValidDays?: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const DEFAULT_CA_COMMON_NAME = 'omega CA';
const CA_FILE = 'ca.pem';
const CA_KEY_FILE = 'ca-key.pem';

/** The files of identity `name` in `dir`. */
export function identityFiles(dir: string, name: string): IdentityFiles {
  return { caFile: join(dir, CA_FILE), certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}-key.pem`) };
}

/** A problem with an identity name as a file stem, or undefined. */
export function identityNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || !NAME.test(name)) return `must be 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, got ${JSON.stringify(name)}`;
  if (name === 'ca' || name.endsWith('-key')) return `${JSON.stringify(name)} would clash with the CA's or a key's file name`;
  return undefined;
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PkiFileError(path, { cause });
  }
}

/** Writes `text` to `path` atomically with `mode` (the temporary file has the mode from the start). */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, text, { mode });
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (cause) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new PkiFileError(path, { cause });
  }
}

/** Creates `dir` (and parents) and makes it 0700: it holds private keys. */
async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (cause) {
    throw new PkiFileError(dir, { cause });
  }
}

/**
 * Writes a CA and identities into `dir` (created 0700), overwriting files of the same names:
 * `ca.pem`, `ca-key.pem` (0600), `<name>.pem`, `<name>-key.pem` (0600). `ca` may be left out to
 * write identities only.
 */
export async function writePki(dir: string, ca: CertificateAuthority | undefined, identities: Readonly<Record<string, CertifiedKey>> = {}): Promise<void> {
  for (const name of Object.keys(identities)) {
    const problem = identityNameProblem(name);
    if (problem !== undefined) throw new InvalidPkiRequestError('name', problem);
  }
  await ensureDir(dir);
  if (ca !== undefined) {
    await writeAtomically(join(dir, CA_KEY_FILE), ca.keyPem, 0o600);
    await writeAtomically(join(dir, CA_FILE), ca.certPem, 0o644);
  }
  for (const [name, issued] of Object.entries(identities)) {
    const files = identityFiles(dir, name);
    await writeAtomically(files.keyFile, issued.keyPem, 0o600);
    await writeAtomically(files.certFile, issued.certPem, 0o644);
  }
}

/** The CA in `dir`, if there is one; refuses half a CA, a foreign key and an expired CA. */
export async function loadCa(dir: string, now: () => number = Date.now): Promise<CertificateAuthority | undefined> {
  const certFile = join(dir, CA_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([readIfThere(certFile), readIfThere(keyFile)]);
  if (certPem === undefined && keyPem === undefined) return undefined;
  if (certPem === undefined) throw new InconsistentPkiError(certFile, `is missing but ${CA_KEY_FILE} is there: restore it, or remove ${CA_KEY_FILE} to create a new CA (every certificate is then issued again)`);
  if (keyPem === undefined) throw new InconsistentPkiError(keyFile, `is missing but ${CA_FILE} is there: without it no certificate can be issued; restore it, or remove ${CA_FILE} to create a new CA (every certificate is then issued again)`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new InconsistentPkiError(certFile, 'is not a PEM certificate', { cause });
  }
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch (cause) {
    throw new InconsistentPkiError(keyFile, 'is not a PEM private key', { cause });
  }
  if (!matches) throw new InconsistentPkiError(keyFile, `is not the key of ${CA_FILE}: restore the right one, or remove both to create a new CA`);
  if (!cert.ca) throw new InconsistentPkiError(certFile, 'is not a CA certificate (basicConstraints CA:TRUE missing)');
  if (Date.parse(cert.validTo) <= now()) throw new InconsistentPkiError(certFile, `expired on ${cert.validTo}: remove ${CA_FILE} and ${CA_KEY_FILE} to create a new CA (every certificate is then issued again)`);
  return { certPem, keyPem };
}

/** Why the identity's files on disk cannot be reused as they are, or undefined when they can. */
function staleness(ca: X509Certificate, certPem: string | undefined, keyPem: string | undefined, commonName: string, hosts: readonly string[], now: number): string | undefined {
  if (certPem === undefined) return 'new';
  if (keyPem === undefined) return 'its key file is missing';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return 'its key does not match';
  } catch {
    return 'its files are not PEM';
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'it was not signed by this CA';
  if (!new RegExp(`(^|\\n)CN=${commonName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\n|$)`).test(cert.subject)) return `its CN is not ${commonName}`;
  const sans = new Set((cert.subjectAltName ?? '').split(', ').map((s) => s.replace(/^(DNS:|IP Address:)/, '')));
  const missing = hosts.filter((h) => !sans.has(canonicalHost(h)));
  if (missing.length > 0) return `it lacks the host(s) ${missing.join(', ')}`;
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (to - now < (to - from) / 10) return `it expires on ${cert.validTo}`;
  return undefined;
}

/** How Node prints a SAN host: IPv6 addresses uncompressed (`0:0:0:0:0:0:0:1`), others as given. */
function canonicalHost(host: string): string {
  if (!host.includes(':')) return host;
  const [head = '', tail = ''] = host.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = parts(head);
  const right = host.includes('::') ? parts(tail) : [];
  const zeros = host.includes('::') ? Array<string>(8 - left.length - right.length).fill('0') : [];
  return [...left, ...zeros, ...right].map((g) => g.replace(/^0+(?=.)/, '').toUpperCase()).join(':');
}

/**
 * Makes `dir` hold a CA and every identity in `identities`, creating what is missing (see the
 * header), and returns where each file is. Validates every identity before touching anything.
 */
export async function loadOrCreatePki(dir: string, identities: readonly PkiIdentity[], options: LoadOrCreateOptions = {}): Promise<PkiDirectory> {
  const now = options.now ?? Date.now;
  const seen = new Set<string>();
  identities.forEach((identity, i) => {
    const problem = identityNameProblem(identity.name);
    if (problem !== undefined) throw new InvalidPkiRequestError(`identities[${i}].name`, problem);
    if (seen.has(identity.name)) throw new InvalidPkiRequestError(`identities[${i}].name`, `${JSON.stringify(identity.name)} is given twice`);
    seen.add(identity.name);
    (identity.hosts ?? []).forEach((host, j) => {
      const hostIssue = hostProblem(host);
      if (hostIssue !== undefined) throw new InvalidPkiRequestError(`identities[${i}].hosts[${j}]`, hostIssue);
    });
  });

  const caProblem = commonNameProblem(options.caCommonName ?? DEFAULT_CA_COMMON_NAME);
  if (caProblem !== undefined) throw new InvalidPkiRequestError('caCommonName', caProblem);
  identities.forEach((identity, i) => {
    const problem = identity.commonName === undefined ? undefined : commonNameProblem(identity.commonName);
    if (problem !== undefined) throw new InvalidPkiRequestError(`identities[${i}].commonName`, problem);
  });

  await ensureDir(dir);
  let ca = await loadCa(dir, now);
  const createdCa = ca === undefined;
  if (ca === undefined) {
    ca = await createCa({ commonName: options.caCommonName ?? DEFAULT_CA_COMMON_NAME, validDays: options.caValidDays ?? DEFAULT_CA_VALID_DAYS });
    await writePki(dir, ca);
  }
  const caCert = new X509Certificate(ca.certPem);
  const result = new Map<string, IdentityFiles>();
  const issued: { name: string; reason: string }[] = [];
  for (const identity of identities) {
    const files = identityFiles(dir, identity.name);
    const commonName = identity.commonName ?? identity.name;
    const hosts = [...new Set([...LOOPBACK_HOSTS, ...(identity.hosts ?? [])])];
    const [certPem, keyPem] = await Promise.all([readIfThere(files.certFile), readIfThere(files.keyFile)]);
    const reason = staleness(caCert, certPem, keyPem, commonName, hosts, now());
    if (reason !== undefined) {
      const pair = await issueCertificate(ca, { commonName, hosts, validDays: identity.validDays ?? DEFAULT_CERT_VALID_DAYS });
      await writePki(dir, undefined, { [identity.name]: pair });
      issued.push({ name: identity.name, reason });
    }
    result.set(identity.name, files);
  }
  return { dir, caFile: join(dir, CA_FILE), caKeyFile: join(dir, CA_KEY_FILE), identities: result, createdCa, issued };
}
