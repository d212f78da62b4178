/**
 * An etcd as a secured cell runs it, for tests: TLS only, client certificates required
 * (`--client-cert-auth`) and signed by a test CA ({@link createTestPki}), auth enabled with the
 * cell's roles (`setupCellAccess` as `root`), so every client acts as the user its certificate's
 * CN names. Certificates: root, etcd, the components, each agent of `agents`, and `identities`. `stop()` stops etcd and removes the certificates; call it in afterAll.
 */
import { agentUser, setupCellAccess, startEtcd, type CellAccessOptions, type RunningEtcd, type StartEtcdOptions } from '@omega/cell-state';
import { createTestPki, type TestPki } from './test-pki.js';

export interface SecureEtcd {
  readonly etcd: RunningEtcd;
  readonly pki: TestPki;
  /** `https://` client URLs. */
  readonly endpoints: readonly string[];
  /** `--etcd <url> --ca .. --cert .. --key ..` for a process acting as `user`. */
  processFlags(user: string): string[];
  stop(): Promise<void>;
}

export interface SecureEtcdOptions extends CellAccessOptions {
  readonly cell: string;
  /** More certificates to issue (the agents' `omega-agent-<m>` are issued anyway). */
  readonly identities?: readonly string[];
  /** Passed to startEtcd (limits, logger); `tls` is set here. */
  readonly etcd?: Omit<StartEtcdOptions, 'tls'>;
}

/** Starts the secured etcd and sets up `options.cell`'s roles (see the module header). */
export async function startSecureEtcd(options: SecureEtcdOptions): Promise<SecureEtcd> {
  const pki = await createTestPki([...options.agents.map((machine) => agentUser(machine)), ...(options.identities ?? [])]);
  let etcd: RunningEtcd | undefined;
  try {
    etcd = await startEtcd({ ...options.etcd, tls: pki.files('etcd') });
    await setupCellAccess({ endpoints: etcd.endpoints, root: pki.identity('root') }, options.cell, options);
  } catch (error) {
    await etcd?.stop();
    pki.remove();
    throw error;
  }
  const running = etcd;
  return {
    etcd: running,
    pki,
    endpoints: running.endpoints,
    processFlags: (user) => ['--etcd', running.endpoints.join(','), ...pki.flags(user)],
    stop: async () => {
      await running.stop();
      pki.remove();
    },
  };
}
