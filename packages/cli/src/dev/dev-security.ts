/**
 * `omega dev`'s credentials: a private CA and one certificate per component in the data
 * directory, etcd's users and roles, an admin token, and the client config the CLI reads.
 *
 * ```
 *   <data>/pki/        ca.pem, ca-key.pem, and <name>.pem + <name>-key.pem for
 *                      root (setup only), etcd (the member), omega-api, omega-scheduler,
 *                      omega-agent-dev-<i> (one per real agent), omega-hollow
 *   <data>/admin-token 0600  omg1.dev-admin.<secret>   (reused while etcd still knows it)
 *   <data>/client.yaml 0600  api, ca, token            (export OMEGA_CONFIG=<data>/client.yaml)
 *
 *   first start: create all of it        later starts: reuse; issue what is missing (a new
 *                                         agent, a new --listen host); a revoked or expired
 *                                         admin token is replaced by a new one
 * ```
 *
 * Every child gets its own identity's `--ca --cert --key`; `--insecure` instead for a plaintext
 * cell. Order: {@link prepareDevPki} before etcd starts (etcd needs its certificate), then
 * {@link setupDevAccess} once etcd answers (root creates the roles and enables auth, then the
 * admin token), then the children.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  API_USER,
  CellKeys,
  EtcdKv,
  HOLLOW_USER,
  ROOT_USER,
  SCHEDULER_USER,
  agentUser,
  createToken,
  getToken,
  loadTlsIdentity,
  parseToken,
  revokeToken,
  setupCellAccess,
  tokenExpired,
  tokenMatches,
  type CellAccessResult,
  type KvStore,
  type TlsFiles,
} from '@omega/cell-state';
import { loadOrCreatePki, type PkiDirectory, type PkiIdentity } from '@omega/pki';
import { splitHostPort } from './port-probe.js';

/** Under the data directory. */
export const DEV_PKI_DIR = 'pki';
export const ADMIN_TOKEN_FILE = 'admin-token';
export const CLIENT_CONFIG_FILE = 'client.yaml';
/** The name of the token `omega dev` creates for its user. */
export const DEV_ADMIN_TOKEN = 'dev-admin';
/** The etcd member's identity (a server certificate; not an etcd user). */
export const ETCD_IDENTITY = 'etcd';
/** `--hollow-prefix` of the dev cell's hollow agent (its etcd role may write only these machines). */
export const DEV_HOLLOW_PREFIX = 'dev-hollow';

/** The machine id of real agent `i`. */
export function devMachineId(i: number): string {
  return `dev-${i}`;
}

/** What the identities depend on. */
export interface DevSecuritySettings {
  readonly dataDir: string;
  readonly cell: string;
  /** The API's `--listen` (its host becomes a SAN of the API's certificate when it is not a wildcard). */
  readonly listen: string;
  readonly machines: number;
  readonly hollow: number;
}

/** `0.0.0.0` and `::` are where a server listens, not where a client goes: loopback instead. */
export function clientAddress(listen: string): string {
  const { host, port } = splitHostPort(listen);
  if (host === '0.0.0.0' || host === '') return `127.0.0.1:${port}`;
  if (host === '::' || host === '[::]') return `[::1]:${port}`;
  return listen;
}

/** The host of `listen` as a SAN, unless it is a wildcard or already a loopback SAN. */
function apiHosts(listen: string): string[] {
  const { host } = splitHostPort(listen);
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return ['0.0.0.0', '::', '', '127.0.0.1', '::1', 'localhost'].includes(bare) ? [] : [bare];
}

/** Every identity of the dev cell (see the header). */
export function devIdentities(settings: Pick<DevSecuritySettings, 'listen' | 'machines' | 'hollow'>): PkiIdentity[] {
  const identities: PkiIdentity[] = [{ name: ROOT_USER }, { name: ETCD_IDENTITY }, { name: API_USER, hosts: apiHosts(settings.listen) }, { name: SCHEDULER_USER }];
  for (let i = 0; i < settings.machines; i++) identities.push({ name: agentUser(devMachineId(i)) });
  if (settings.hollow > 0) identities.push({ name: HOLLOW_USER });
  return identities;
}

/** The PKI of the dev cell, created on first start and completed after (see the header). */
export async function prepareDevPki(settings: DevSecuritySettings): Promise<PkiDirectory> {
  return loadOrCreatePki(join(settings.dataDir, DEV_PKI_DIR), devIdentities(settings), { caCommonName: `omega dev CA of cell ${settings.cell}` });
}

/** An identity's files, in the shape of cell-state's `TlsFiles`; throws when the PKI lacks it (a bug). */
export function filesOf(pki: PkiDirectory, identity: string): TlsFiles {
  const files = pki.identities.get(identity);
  if (files === undefined) throw new Error(`the dev PKI has no identity ${identity}`);
  return files;
}

/** The flags that give a child its identity. */
export function identityFlags(pki: PkiDirectory, identity: string): string[] {
  const files = filesOf(pki, identity);
  return ['--ca', files.caFile, '--cert', files.certFile, '--key', files.keyFile];
}

/** What {@link ensureAdminToken} did. */
export type AdminTokenOutcome =
  | { readonly outcome: 'reused'; readonly token: string }
  | { readonly outcome: 'created'; readonly token: string; /** Why the old one was not reused ('none' on first start). */ readonly reason: string };

/** Why the token in `text` cannot be used any more, or undefined when it can. One read of etcd. */
async function tokenProblem(kv: KvStore, keys: CellKeys, text: string | undefined, nowMs: number): Promise<string | undefined> {
  if (text === undefined) return 'none';
  const parsed = parseToken(text);
  if ('problem' in parsed) return `the token file holds no token (${parsed.problem})`;
  const record = await getToken(kv, keys, parsed.name);
  if (record === undefined) return `token ${parsed.name} was revoked`;
  if (!tokenMatches(record, parsed.secret)) return `token ${parsed.name} was replaced`;
  if (tokenExpired(record, nowMs)) return `token ${parsed.name} expired`;
  if (record.role !== 'admin') return `token ${parsed.name} is not an admin token`;
  return undefined;
}

/**
 * The dev cell's admin token: the one in `file` while etcd still knows it (not revoked, not
 * expired), else a new `dev-admin` token (replacing a stale one of that name), written to `file`
 * (0600) before this resolves. `kv` must be allowed to read and write the cell's tokens (root).
 */
export async function ensureAdminToken(kv: KvStore, keys: CellKeys, file: string, nowMs: () => number = Date.now): Promise<AdminTokenOutcome> {
  let text: string | undefined;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const reason = await tokenProblem(kv, keys, text, nowMs());
  if (reason === undefined && text !== undefined) return { outcome: 'reused', token: text };
  // A few rounds: a concurrent writer of the same name is not expected (one omega dev per data
  // directory), but a revoke and a create are two transactions.
  for (let attempt = 0; attempt < 3; attempt++) {
    const created = await createToken(kv, keys, { name: DEV_ADMIN_TOKEN, role: 'admin', namespaces: [] }, { nowMs: nowMs() });
    if (created.outcome === 'created') {
      const temporary = `${file}.${process.pid}.tmp`;
      await writeFile(temporary, `${created.token}\n`, { mode: 0o600 });
      await rename(temporary, file).catch(async (error: unknown) => {
        await rm(temporary, { force: true });
        throw error;
      });
      return { outcome: 'created', token: created.token, reason: reason ?? 'none' };
    }
    // A dev-admin token whose secret we no longer hold: ours to replace.
    await revokeToken(kv, keys, DEV_ADMIN_TOKEN);
  }
  throw new Error(`could not create token ${DEV_ADMIN_TOKEN}: it exists again after every revoke`);
}

/** What {@link setupDevAccess} did. */
export interface DevAccess {
  readonly access: CellAccessResult;
  readonly admin: AdminTokenOutcome;
}

/**
 * As root: etcd's users and roles for every dev component (agents `dev-<i>`, the hollow agent
 * restricted to `dev-hollow-*`), auth enabled, then the admin token (see {@link ensureAdminToken}).
 * Idempotent.
 */
export async function setupDevAccess(endpoint: string, pki: PkiDirectory, settings: DevSecuritySettings): Promise<DevAccess> {
  const root = loadTlsIdentity(filesOf(pki, ROOT_USER));
  const agents = Array.from({ length: settings.machines }, (_, i) => devMachineId(i));
  const access = await setupCellAccess({ endpoints: [endpoint], root }, settings.cell, { agents, hollow: settings.hollow > 0, hollowPrefix: DEV_HOLLOW_PREFIX });
  const kv = new EtcdKv({ endpoints: [endpoint], tls: root, dialTimeoutMs: 10_000 });
  try {
    const admin = await ensureAdminToken(kv, new CellKeys(settings.cell), join(settings.dataDir, ADMIN_TOKEN_FILE));
    return { access, admin };
  } finally {
    await kv.close();
  }
}
