/**
 * A throwaway certificate authority for tests, made with the `openssl` command line: an ECDSA
 * P-256 CA and one certificate per name, each with CN = the name (the component's etcd user),
 * SANs 127.0.0.1, ::1 and localhost, and EKU serverAuth + clientAuth, as the cell's own
 * certificates have (so one identity serves and is a client). Files are `<dir>/<name>.crt` and
 * `<dir>/<name>.key` (PKCS#8), the CA `<dir>/ca.crt`.
 *
 * Test support only: the product makes its certificates with `@omega/pki`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTlsIdentity, type LoadedTlsIdentity, type TlsFiles } from '@omega/cell-state';

export interface TestPki {
  readonly dir: string;
  /** `<dir>/ca.crt`. */
  readonly caFile: string;
  /** The files of `name`'s identity (issuing it on first use). */
  files(name: string): TlsFiles;
  /** `name`'s identity, loaded (issuing it on first use). */
  identity(name: string): LoadedTlsIdentity;
  /** The command-line flags that give a process `name`'s identity. */
  flags(name: string): string[];
  /** A certificate for `name` signed by another CA (one that etcd does not trust). */
  foreign(name: string): TlsFiles;
  /** Removes the directory. */
  remove(): void;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', [...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, stem: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${stem}.key.sec1`], dir);
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${stem}.key.sec1`, '-out', `${stem}.key`], dir);
  openssl(
    ['req', '-x509', '-new', '-key', `${stem}.key`, '-subj', `/CN=${stem}`, '-days', '2', '-out', `${stem}.crt`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
}

function issue(dir: string, ca: string, name: string, stem: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${stem}.key.sec1`], dir);
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${stem}.key.sec1`, '-out', `${stem}.key`], dir);
  openssl(['req', '-new', '-key', `${stem}.key`, '-subj', `/CN=${name}`, '-out', `${stem}.csr`], dir);
  writeFileSync(
    join(dir, `${stem}.ext`),
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  openssl(['x509', '-req', '-in', `${stem}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${stem}.ext`, '-out', `${stem}.crt`], dir);
}

/** Creates a CA in a fresh temporary directory. Identities are issued as they are asked for. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'omega-pki-'));
  makeCa(dir, 'ca');
  const issued = new Set<string>();
  const files = (name: string): TlsFiles => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`not a certificate name: ${JSON.stringify(name)}`);
    if (!issued.has(name)) {
      issue(dir, 'ca', name, name);
      issued.add(name);
    }
    return { caFile: join(dir, 'ca.crt'), certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  };
  let foreignCa = false;
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    files,
    identity: (name) => loadTlsIdentity(files(name)),
    flags: (name) => {
      const f = files(name);
      return ['--ca', f.caFile, '--cert', f.certFile, '--key', f.keyFile];
    },
    foreign: (name) => {
      if (!foreignCa) {
        makeCa(dir, 'foreign-ca');
        foreignCa = true;
      }
      issue(dir, 'foreign-ca', name, `foreign-${name}`);
      return { caFile: join(dir, 'foreign-ca.crt'), certFile: join(dir, `foreign-${name}.crt`), keyFile: join(dir, `foreign-${name}.key`) };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
