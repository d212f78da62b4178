/**
 * The operator's setup commands: a cell's private CA and certificates (`omega pki ...`) and the
 * first setup of a cell on a TLS etcd (`omega cell init`).
 *
 * ```
 *   omega pki init  --dir D                      D/ca.pem, D/ca-key.pem (kept when there)
 *   omega pki issue --dir D --name N [--host h]  D/N.pem, D/N-key.pem   (signed by D's CA)
 *   omega cell init --etcd https://... --ca --cert --key (root) --cell C --machines m1,m2 [--hollow]
 *        └─ etcd users and roles (one per component), auth on; the first admin token;
 *           a client config (api, ca, token) written 0600; the token printed once
 * ```
 *
 * Every flag is checked before anything is read or written; a bad one is a usage error (exit 2)
 * naming it. The commands are declared in cell-program.ts, which loads this file (and with it
 * @omega/pki and the store) only when one of them runs.
 */
import { isAbsolute, join, resolve } from 'node:path';
import {
  CellAccessError,
  CellKeys,
  EtcdKv,
  FlagError,
  InvalidRecordError,
  ROOT_USER,
  agentUser,
  checkTokenName,
  createToken,
  parseEtcdConnection,
  setupCellAccess,
  type LoadedTlsIdentity,
} from '@omega/cell-state';
import {
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_CERT_VALID_DAYS,
  InvalidPkiRequestError,
  LOOPBACK_HOSTS,
  PkiError,
  createCa,
  hostProblem,
  identityFiles,
  identityNameProblem,
  issueCertificate,
  loadCa,
  writePki,
} from '@omega/pki';
import { checkApiAddress, DEFAULT_API_ADDRESS, DEFAULT_CONFIG_PATH, writeClientConfig } from './client-config.js';
import { CliError, EXIT_USAGE } from './errors.js';

function usage(flag: string, problem: string): CliError {
  return new CliError(`${flag}: ${problem}`, EXIT_USAGE);
}

/** `--host a,b` (repeatable): the hosts, each checked, or a usage error naming the bad one. */
export function parseHosts(values: readonly string[] | undefined, flag = '--host'): string[] {
  const hosts = (values ?? []).flatMap((v) => v.split(',')).map((h) => h.trim());
  for (const host of hosts) {
    const problem = hostProblem(host);
    if (problem !== undefined) throw usage(flag, problem);
  }
  return [...new Set(hosts)];
}

/** A directory flag, absolute. */
function directory(flag: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw usage(flag, 'needs a directory');
  return isAbsolute(value) ? value : resolve(value);
}

/** PKI failures are the operator's to fix: one line, exit 1. */
function pkiFailure(error: unknown): never {
  if (error instanceof PkiError) throw new CliError(error.message, 1, { cause: error });
  throw error;
}

/** `omega pki init`: a CA in `options.dir`, kept when one is there. */
export async function pkiInit(options: { dir: string; name: string; validDays?: number }, say: (line: string) => void): Promise<void> {
  const dir = directory('--dir', options.dir);
  try {
    const existing = await loadCa(dir);
    if (existing !== undefined) {
      say(`kept the CA in ${join(dir, 'ca.pem')} (there already; remove ca.pem and ca-key.pem to make a new one)`);
      return;
    }
    const ca = await createCa({ commonName: options.name, validDays: options.validDays ?? DEFAULT_CA_VALID_DAYS });
    await writePki(dir, ca);
  } catch (error) {
    if (error instanceof InvalidPkiRequestError) throw usage('--name', error.problem);
    pkiFailure(error);
  }
  say(`created the CA: ${join(dir, 'ca.pem')} (give it to every process as --ca) and ca-key.pem (0600: keep it private; only \`omega pki issue\` needs it)`);
}

/** `omega pki issue`: a certificate and key for one identity, signed by the directory's CA. */
export async function pkiIssue(options: { dir: string; name: string; host?: string[]; validDays?: number }, say: (line: string) => void): Promise<void> {
  const dir = directory('--dir', options.dir);
  const nameProblem = identityNameProblem(options.name);
  if (nameProblem !== undefined) throw usage('--name', nameProblem);
  const hosts = [...new Set([...LOOPBACK_HOSTS, ...parseHosts(options.host)])];
  const files = identityFiles(dir, options.name);
  try {
    const ca = await loadCa(dir);
    if (ca === undefined) throw new CliError(`no CA in ${dir} (--dir): run omega pki init --dir ${dir} first`);
    const issued = await issueCertificate(ca, { commonName: options.name, hosts, validDays: options.validDays ?? DEFAULT_CERT_VALID_DAYS });
    await writePki(dir, undefined, { [options.name]: issued });
  } catch (error) {
    pkiFailure(error);
  }
  say(`issued ${options.name} (CN ${options.name}; hosts ${hosts.join(', ')}): --ca ${files.caFile} --cert ${files.certFile} --key ${files.keyFile}`);
}

const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `omega cell init`'s settings, checked (every problem a usage error naming its flag). */
export interface CellInitSettings {
  readonly endpoints: readonly string[];
  /** The root identity (CN `root`), loaded and checked. */
  readonly root: LoadedTlsIdentity;
  readonly caFile: string;
  readonly cell: string;
  readonly machines: readonly string[];
  readonly hollow: boolean;
  readonly hollowPrefix: string | undefined;
  readonly tokenName: string;
  /** The API address written into the client config. */
  readonly api: string;
  /** Where the client config goes (absolute). */
  readonly configFile: string;
}

/** Checks `omega cell init`'s flags (commander's values merged with the global ones). Reads the three TLS files; writes nothing. */
export function cellInitSettings(options: Record<string, unknown>, cwd: string): CellInitSettings {
  const text = (name: string): string | undefined => (typeof options[name] === 'string' && options[name] !== '' ? (options[name] as string) : undefined);
  if (options.insecure === true) throw usage('--insecure', 'omega cell init sets up a secure cell: give the root identity with --ca, --cert and --key');
  const etcd = text('etcd');
  if (etcd === undefined) throw usage('--etcd', 'is required: the https:// client URL(s) of the etcd to set up');
  const cell = text('cell') ?? 'default';
  if (!CELL.test(cell)) throw usage('--cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);
  const machines = (text('machines') ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
  for (const machine of machines) {
    try {
      agentUser(machine);
    } catch (error) {
      if (error instanceof InvalidRecordError) throw usage('--machines', `${JSON.stringify(machine)}: ${error.message.replace(/^machineId: /, '')}`);
      throw error;
    }
  }
  const hollowPrefix = text('hollowPrefix');
  if (hollowPrefix !== undefined && options.hollow !== true) throw usage('--hollow-prefix', 'only goes with --hollow');
  if (hollowPrefix !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/.test(hollowPrefix)) throw usage('--hollow-prefix', `must be letters, digits, '.', '_' or '-', got ${JSON.stringify(hollowPrefix)}`);
  const tokenName = text('tokenName') ?? 'admin';
  try {
    checkTokenName('--token-name', tokenName);
  } catch (error) {
    if (error instanceof InvalidRecordError) throw new CliError(error.message, EXIT_USAGE);
    throw error;
  }
  const api = checkApiAddress(text('api') ?? DEFAULT_API_ADDRESS, '--api');
  const resolveFile = (file: string | undefined): string | undefined => (file === undefined ? undefined : resolve(cwd, file));
  let connection;
  try {
    connection = parseEtcdConnection({ etcd, ca: resolveFile(text('ca')), cert: resolveFile(text('cert')), key: resolveFile(text('key')) });
  } catch (error) {
    if (error instanceof FlagError) throw new CliError(error.message, EXIT_USAGE, { cause: error });
    throw error;
  }
  if (connection.security.mode !== 'tls') throw usage('--ca', 'is required'); // parseEtcdConnection never answers insecure without --insecure
  if (connection.security.identity.commonName !== ROOT_USER) {
    throw usage('--cert', `must be the root identity (CN ${ROOT_USER}; omega pki issue --name ${ROOT_USER}), got CN ${JSON.stringify(connection.security.identity.commonName)}`);
  }
  return {
    endpoints: connection.endpoints,
    root: connection.security.identity,
    caFile: connection.security.files.caFile,
    cell,
    machines: [...new Set(machines)],
    hollow: options.hollow === true,
    hollowPrefix,
    tokenName,
    api,
    configFile: resolve(cwd, text('writeConfig') ?? DEFAULT_CONFIG_PATH),
  };
}

/**
 * Sets up the cell: etcd's users and roles (as root; idempotent), then the first admin token,
 * then the client config. A token name that exists is refused (nothing written but the roles,
 * which were right to set up anyway).
 */
export async function cellInit(settings: CellInitSettings, say: (line: string) => void): Promise<void> {
  let access;
  try {
    access = await setupCellAccess({ endpoints: settings.endpoints, root: settings.root }, settings.cell, {
      agents: settings.machines,
      hollow: settings.hollow,
      ...(settings.hollowPrefix === undefined ? {} : { hollowPrefix: settings.hollowPrefix }),
    });
  } catch (error) {
    if (error instanceof CellAccessError) throw new CliError(error.message, 1, { cause: error, retryable: error.retryable });
    throw error;
  }
  say(`etcd access of cell ${settings.cell}: ${access.roles.map((r) => r.name).join(', ')} (${access.created.length} created, ${access.changed.length} grant(s) changed); auth is on`);
  const kv = new EtcdKv({ endpoints: settings.endpoints, tls: settings.root, dialTimeoutMs: 10_000 });
  let created;
  try {
    created = await createToken(kv, new CellKeys(settings.cell), { name: settings.tokenName, role: 'admin', namespaces: [] });
  } finally {
    await kv.close();
  }
  if (created.outcome === 'exists') {
    throw new CliError(`token ${settings.tokenName} exists already (--token-name): revoke it with omega token revoke ${settings.tokenName}, or give another name; etcd access is set up, no token was created`);
  }
  writeClientConfig(settings.configFile, { api: settings.api, ca: settings.caFile, token: created.token });
  say(`admin token ${settings.tokenName} created; it is shown only this once (also in ${settings.configFile}, mode 0600):`);
  say(`  ${created.token}`);
  say(`client config: export OMEGA_CONFIG=${settings.configFile}`);
}
