/**
 * A throwaway certificate authority for tests, made with `@omega/pki` (the cell's own CA code):
 * an ECDSA P-256 CA and one certificate per name, each with CN = the name (the component's etcd
 * user), SANs 127.0.0.1, ::1 and localhost, and EKU serverAuth + clientAuth, as the cell's
 * certificates have. Files are `<dir>/<name>.crt` and `<dir>/<name>.key`, the CA `<dir>/ca.crt`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTlsIdentity, type LoadedTlsIdentity, type TlsFiles } from '@omega/cell-state';
import { createCa, issueCertificate, type CertificateAuthority } from '@omega/pki';

/** The identities every test PKI has: etcd's own, root's and the components'. */
export const TEST_IDENTITIES = ['etcd', 'root', 'omega-api', 'omega-scheduler', 'omega-hollow'] as const;

const HOSTS = ['127.0.0.1', '::1', 'localhost'];

export interface TestPki {
  readonly dir: string;
  /** `<dir>/ca.crt`. */
  readonly caFile: string;
  /** The files of an issued identity; throws for a name that was not issued. */
  files(name: string): TlsFiles;
  /** An issued identity, loaded. */
  identity(name: string): LoadedTlsIdentity;
  /** `--ca .. --cert .. --key ..` for a process acting as an issued identity. */
  flags(name: string): string[];
  /** Issues one more identity (signed by this CA), valid `validDays` (default 825). */
  issue(name: string, validDays?: number): Promise<TlsFiles>;
  /** A certificate for `name` signed by another CA, which etcd does not trust; `caFile` is that CA. */
  foreign(name: string): Promise<TlsFiles>;
  /** Removes the directory. */
  remove(): void;
}

/** Creates a CA in a fresh temporary directory and issues {@link TEST_IDENTITIES} plus `names`. */
export async function createTestPki(names: readonly string[] = []): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'omega-pki-'));
  const write = (stem: string, pair: { certPem: string; keyPem: string }): TlsFiles => {
    const certFile = join(dir, `${stem}.crt`);
    const keyFile = join(dir, `${stem}.key`);
    writeFileSync(certFile, pair.certPem);
    writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
    return { caFile: join(dir, 'ca.crt'), certFile, keyFile };
  };
  const ca = await createCa({ commonName: 'omega-test CA', validDays: 7 });
  write('ca', ca);
  const issued = new Map<string, TlsFiles>();
  const issue = async (name: string, validDays?: number): Promise<TlsFiles> => {
    const files = write(name, await issueCertificate(ca, { commonName: name, hosts: HOSTS, ...(validDays === undefined ? {} : { validDays }) }));
    issued.set(name, files);
    return files;
  };
  try {
    for (const name of new Set([...TEST_IDENTITIES, ...names])) await issue(name, 2);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const files = (name: string): TlsFiles => {
    const found = issued.get(name);
    if (found === undefined) throw new Error(`no test certificate was issued for ${JSON.stringify(name)}: pass it to createTestPki`);
    return found;
  };
  let foreignCa: CertificateAuthority | undefined;
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    files,
    identity: (name) => loadTlsIdentity(files(name)),
    flags: (name) => {
      const f = files(name);
      return ['--ca', f.caFile, '--cert', f.certFile, '--key', f.keyFile];
    },
    issue,
    foreign: async (name) => {
      if (foreignCa === undefined) {
        foreignCa = await createCa({ commonName: 'foreign CA', validDays: 7 });
        write('foreign-ca', foreignCa);
      }
      const pair = write(`foreign-${name}`, await issueCertificate(foreignCa, { commonName: name, hosts: HOSTS, validDays: 2 }));
      return { ...pair, caFile: join(dir, 'foreign-ca.crt') };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
