/**
 * A component's TLS identity: the cell's CA certificate (to verify etcd and every peer), the
 * component's own certificate and its private key, all PEM. The certificate's common name (CN) is
 * the component's etcd user (`omega-api`, `omega-scheduler`, `omega-agent-<machine>`,
 * `omega-hollow`, `root`): etcd started with `--client-cert-auth` takes the user from it.
 *
 * ```
 *  --ca FILE ──┐
 *  --cert FILE ┼─► loadTlsIdentity ─► { ca, cert, key, commonName }
 *  --key FILE ─┘      │                  │
 *                     │                  ├─► EtcdKv({ tls })          (client of etcd)
 *                     │                  └─► startApiServer({ tls })  (server of the API)
 *                     └─► TlsFileError naming the flag: missing, unreadable, not PEM,
 *                         not issued by the CA, key not matching, expired
 * ```
 *
 * Loading is synchronous so that a command line parser can check the files with the rest of its
 * flags and refuse a bad one before anything starts.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FlagError } from './flag-error.js';

/** What TLS needs in memory, PEM-encoded. Passed to etcd3 and grpc-js as is. */
export interface TlsIdentity {
  /** The cell's CA certificate (one or more PEM certificates). */
  readonly ca: Buffer;
  /** This component's certificate (PEM; may be followed by intermediates). */
  readonly cert: Buffer;
  /** Its private key (PEM, unencrypted). */
  readonly key: Buffer;
}

/** Where a {@link TlsIdentity} is on disk: the values of `--ca`, `--cert` and `--key`. */
export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A loaded identity and who it says it is. */
export interface LoadedTlsIdentity extends TlsIdentity {
  /** The certificate's subject common name: the etcd user name under `--client-cert-auth`. */
  readonly commonName: string;
  /** When the certificate stops being valid. */
  readonly notAfter: Date;
}

/** Which flag a file came from, for the error's `flag`. */
export type TlsFileFlag = '--ca' | '--cert' | '--key';

/**
 * A TLS file is missing, unreadable, not PEM, or does not fit the others (a certificate not issued
 * by the CA, a key that is not the certificate's, an expired certificate). A {@link FlagError}
 * naming the flag, so entry points treat it as a bad flag (exit 2). Never retryable.
 */
export class TlsFileError extends FlagError {
  readonly retryable = false;

  constructor(
    flag: TlsFileFlag,
    /** The file as given. */
    readonly file: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(flag, `${file}: ${problem}`, options);
    this.name = 'TlsFileError';
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the three files of an identity (see the module header). Throws
 * {@link TlsFileError} naming the flag of the first file that is wrong; reads nothing else.
 * `now` is only compared with the certificate's validity (default: the current time).
 */
export function loadTlsIdentity(files: TlsFiles, now: Date = new Date()): LoadedTlsIdentity {
  const ca = readPem('--ca', files.caFile);
  const cert = readPem('--cert', files.certFile);
  const key = readPem('--key', files.keyFile);

  const cas = certificates('--ca', files.caFile, ca);
  const [leaf] = certificates('--cert', files.certFile, cert);
  if (leaf === undefined) throw new TlsFileError('--cert', files.certFile, 'holds no certificate');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsFileError('--key', files.keyFile, 'is not a PEM private key (unencrypted PKCS#8, SEC1 or PKCS#1)', { cause: error });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsFileError('--key', files.keyFile, `is not the private key of the certificate in ${files.certFile}`);
  }
  if (!cas.some((authority) => leaf.checkIssued(authority) && leaf.verify(authority.publicKey))) {
    throw new TlsFileError('--cert', files.certFile, `was not issued by the CA in ${files.caFile} (subject ${oneLine(leaf.subject)}, issuer ${oneLine(leaf.issuer)})`);
  }
  const notAfter = new Date(leaf.validTo);
  if (now.getTime() > notAfter.getTime()) throw new TlsFileError('--cert', files.certFile, `expired on ${notAfter.toISOString()}`);
  const notBefore = new Date(leaf.validFrom);
  if (now.getTime() < notBefore.getTime()) throw new TlsFileError('--cert', files.certFile, `is not valid before ${notBefore.toISOString()}`);
  const commonName = /^CN=(.+)$/m.exec(leaf.subject)?.[1]?.trim();
  if (commonName === undefined || commonName.length === 0) {
    throw new TlsFileError('--cert', files.certFile, `has no common name (CN), which etcd needs as the user name (subject ${oneLine(leaf.subject)})`);
  }
  return { ca, cert, key, commonName, notAfter };
}

function readPem(flag: TlsFileFlag, file: string): Buffer {
  if (file.length === 0) throw new TlsFileError(flag, file, 'needs a file name');
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot be read (${code ?? String(error)})`;
    throw new TlsFileError(flag, file, problem, { cause: error });
  }
  if (!content.toString('latin1').includes('-----BEGIN ')) throw new TlsFileError(flag, file, 'is not PEM (no -----BEGIN line)');
  return content;
}

function certificates(flag: TlsFileFlag, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsFileError(flag, file, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new TlsFileError(flag, file, 'holds a certificate that cannot be parsed', { cause: error });
    }
  });
}

function oneLine(name: string): string {
  return name.split('\n').join(', ');
}
