/**
 * etcd's role-based access for one cell: one etcd user per component identity (the CN of its
 * certificate, which etcd's `--client-cert-auth` takes as the user name), each with a role of
 * the same name that grants only the key ranges that component needs.
 *
 * ```
 *  R = /omega/<cell>/      A = /omega-auth/<cell>/      S = /omega-secrets/<cell>/
 *
 *  user / role            R (the cell)                        A          S
 *  ─────────────────────  ──────────────────────────────────  ─────────  ──────────
 *  root                   everything (etcd's root role)
 *  omega-api              readwrite                           readwrite  write only
 *  omega-scheduler        readwrite                           -          write only (delete)
 *  omega-agent-<m>        read; readwrite machines/<m>,       -          read
 *                         alive/<m> (exact keys), tasks/*
 *  omega-hollow           read; readwrite machines/*,         -          read
 *                         alive/* (or <prefix>-*), tasks/*
 * ```
 *
 * What etcd's ranges cannot express (a task record is keyed by job, not machine; a machine
 * record holds both the agent's registration and the schedulers' claims; a range read needs the
 * whole range, so mirrors read the whole cell) is listed in the package README.
 *
 * {@link setupCellAccess} converges etcd to these roles: it creates what is missing, grants what
 * is not granted, revokes what a role holds inside this cell's three prefixes beyond its table
 * (a narrowed role narrows on the next run), and enables auth. Running it again changes nothing.
 * It never deletes users or roles, and leaves grants on other prefixes (other cells) alone: the
 * component users are shared by every cell of one etcd.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import type { Etcd3, IPermission } from 'etcd3';
import { etcd3 } from './etcd3-module.js';
import { pino, type Logger } from 'pino';
import { CellKeys, checkId } from './keys.js';
import type { TlsIdentity } from './tls-identity.js';
import { describeKey, prefixEndBytes } from './etcd-kv.js';
import { machineId } from './types.js';

/** etcd's administrator: user and role `root`, which must exist before auth is enabled. */
export const ROOT_USER = 'root';
/** The API servers' etcd user. */
export const API_USER = 'omega-api';
/** Every scheduler's etcd user. */
export const SCHEDULER_USER = 'omega-scheduler';
/** The hollow agent's etcd user (it serves many simulated machines). */
export const HOLLOW_USER = 'omega-hollow';

/** The etcd user (and certificate CN) of the real agent of machine `machineId`. */
export function agentUser(machine: string): string {
  checkId('machineId', machine);
  return `omega-agent-${machine}`;
}

/** One grant: a key (exact) or a prefix, and what may be done with it. */
export interface EtcdGrant {
  readonly permission: 'read' | 'write' | 'readwrite';
  readonly key: string;
  /** True: every key starting with `key`; false: `key` alone. */
  readonly prefix: boolean;
}

/** A role (and the user of the same name) and its grants. */
export interface EtcdRole {
  readonly name: string;
  readonly grants: readonly EtcdGrant[];
}

export interface CellAccessOptions {
  /** Machine ids of the real agents: a user and role `omega-agent-<id>` each. */
  readonly agents: readonly string[];
  /** Also the hollow agent's user and role `omega-hollow`. Default false. */
  readonly hollow?: boolean;
  /**
   * Restrict `omega-hollow`'s machine and heartbeat writes to ids starting with `<prefix>-`
   * (the agent's `--hollow-prefix`). Default: every machine of the cell.
   */
  readonly hollowPrefix?: string;
}

/** Where etcd is and who administers it. */
export interface CellAccessTarget {
  readonly endpoints: readonly string[];
  /** The identity whose certificate's CN is `root`. */
  readonly root: TlsIdentity;
  readonly logger?: Logger;
  /** Deadline of each request. Default 10 s. */
  readonly timeoutMs?: number;
}

/** What {@link setupCellAccess} did. */
export interface CellAccessResult {
  /** Every role (and user) of the cell, with its grants. */
  readonly roles: readonly EtcdRole[];
  /** Users and roles created this time (`user:<name>`, `role:<name>`). */
  readonly created: readonly string[];
  /** Grants added or revoked this time (`+read /omega/c/`, `-readwrite /omega/c/machines/*`). */
  readonly changed: readonly string[];
}

/** Setting up etcd's access failed at `step`; nothing after that step was done. */
export class CellAccessError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly step: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(`setting up etcd access (${step}): ${message}`, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'CellAccessError';
    this.retryable = options.retryable ?? false;
  }
}

/**
 * The roles of `cell` as a table (pure): what {@link setupCellAccess} grants, and what the
 * README documents. Throws {@link InvalidRecordError} for a bad cell, machine id or prefix.
 */
export function cellAccessRoles(cell: string, options: CellAccessOptions): EtcdRole[] {
  const keys = new CellKeys(cell);
  const cellRead: EtcdGrant = { permission: 'read', key: keys.root, prefix: true };
  const taskWrites: EtcdGrant = { permission: 'readwrite', key: keys.prefix('tasks'), prefix: true };
  const secretsRead: EtcdGrant = { permission: 'read', key: keys.secretsRoot, prefix: true };
  const roles: EtcdRole[] = [
    {
      name: API_USER,
      grants: [
        { permission: 'readwrite', key: keys.root, prefix: true },
        { permission: 'readwrite', key: keys.authRoot, prefix: true },
        { permission: 'write', key: keys.secretsRoot, prefix: true },
      ],
    },
    {
      name: SCHEDULER_USER,
      grants: [
        { permission: 'readwrite', key: keys.root, prefix: true },
        { permission: 'write', key: keys.secretsRoot, prefix: true },
      ],
    },
  ];
  for (const machine of new Set(options.agents)) {
    const name = agentUser(machine);
    roles.push({
      name,
      grants: [
        cellRead,
        { permission: 'readwrite', key: keys.machine(machineId(machine)), prefix: false },
        { permission: 'readwrite', key: keys.alive(machineId(machine)), prefix: false },
        taskWrites,
        secretsRead,
      ],
    });
  }
  if (options.hollow === true) {
    let machines = keys.prefix('machines');
    let alive = keys.prefix('alive');
    if (options.hollowPrefix !== undefined) {
      checkId('hollowPrefix', `${options.hollowPrefix}-0`);
      machines += `${options.hollowPrefix}-`;
      alive += `${options.hollowPrefix}-`;
    }
    roles.push({
      name: HOLLOW_USER,
      grants: [cellRead, { permission: 'readwrite', key: machines, prefix: true }, { permission: 'readwrite', key: alive, prefix: true }, taskWrites, secretsRead],
    });
  }
  return roles;
}

const PERMISSION_TYPES = { read: 'Read', write: 'Write', readwrite: 'Readwrite' } as const satisfies Record<EtcdGrant['permission'], IPermission['permType']>;

/**
 * Creates (idempotently) the users and roles of `cell` (see {@link cellAccessRoles}) in the etcd
 * at `target.endpoints`, makes sure user `root` exists with role `root`, and enables auth. Call
 * it as `root` (the identity's certificate must have CN `root`: once auth is on, only root may
 * administer). Safe to run again and concurrently with itself (every step tolerates "already
 * exists"). Throws {@link CellAccessError} naming the step that failed.
 */
export async function setupCellAccess(target: CellAccessTarget, cell: string, options: CellAccessOptions): Promise<CellAccessResult> {
  const roles = cellAccessRoles(cell, options);
  const keys = new CellKeys(cell);
  const log = (target.logger ?? pino({ level: 'silent' })).child({ component: 'etcd-access', cell });
  const commonName = certificateCommonName(target.root.cert);
  if (commonName !== ROOT_USER) {
    throw new CellAccessError('identity', `the administering certificate must have CN ${ROOT_USER}, got ${JSON.stringify(commonName)} (once auth is on, only root may change roles)`);
  }
  const timeoutMs = target.timeoutMs ?? 10_000;
  const client = new (etcd3().Etcd3)({
    hosts: [...target.endpoints],
    credentials: { rootCertificate: target.root.ca, certChain: target.root.cert, privateKey: target.root.key },
    dialTimeout: timeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
  });
  const created: string[] = [];
  const changed: string[] = [];
  const step = async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const retryable = /UNAVAILABLE|DEADLINE_EXCEEDED|timed out|no leader/.test(message);
      throw new CellAccessError(name, message, { cause: error, retryable });
    }
  };
  try {
    await step(`role ${ROOT_USER}`, () => ensureRole(client, ROOT_USER, created));
    await step(`user ${ROOT_USER}`, () => ensureUser(client, ROOT_USER, created));
    for (const role of roles) {
      await step(`role ${role.name}`, () => ensureRole(client, role.name, created));
      await step(`grants of ${role.name}`, () => convergeGrants(client, role, [keys.root, keys.authRoot, keys.secretsRoot], changed));
      await step(`user ${role.name}`, () => ensureUser(client, role.name, created));
    }
    // Idempotent in etcd 3.4: enabling an enabled auth succeeds.
    await step('auth enable', () => client.auth.authEnable());
  } finally {
    client.close();
  }
  if (created.length > 0 || changed.length > 0) log.info({ created, changed }, 'etcd access set up');
  return { roles, created, changed };
}

/** The subject CN of a PEM certificate (the first one in `pem`). */
function certificateCommonName(pem: Buffer): string {
  try {
    return /^CN=(.+)$/m.exec(new X509Certificate(pem).subject)?.[1]?.trim() ?? '';
  } catch (error) {
    throw new CellAccessError('identity', 'the administering certificate cannot be parsed', { cause: error });
  }
}

async function ensureRole(client: Etcd3, name: string, created: string[]): Promise<void> {
  try {
    await client.auth.roleAdd({ name });
    created.push(`role:${name}`);
  } catch (error) {
    if (!(error instanceof etcd3().EtcdRoleExistsError)) throw error;
  }
}

/** Creates the user (if missing) and grants it its role of the same name. */
async function ensureUser(client: Etcd3, name: string, created: string[]): Promise<void> {
  try {
    // etcd 3.4 has no password-less users; certificate users get one nobody knows.
    await client.auth.userAdd({ name, password: randomBytes(32).toString('base64url') });
    created.push(`user:${name}`);
  } catch (error) {
    if (!(error instanceof etcd3().EtcdUserExistsError)) throw error;
  }
  // Granting a role the user already has succeeds.
  await client.auth.userGrantRole({ user: name, role: name });
}

/**
 * Makes the role's grants inside `scopes` exactly `role.grants`: grants what is missing or has
 * another permission, revokes what lies inside a scope and is not in the table.
 */
async function convergeGrants(client: Etcd3, role: EtcdRole, scopes: readonly string[], changed: string[]): Promise<void> {
  const wanted = new Map(role.grants.map((grant) => [rangeId(grantRange(grant)), grant]));
  const current = (await client.auth.roleGet({ role: role.name })).perm ?? [];
  const held = new Map<string, IPermission>();
  for (const perm of current) {
    const id = rangeId({ key: perm.key, rangeEnd: perm.range_end });
    held.set(id, perm);
    const key = perm.key.toString('utf8');
    if (wanted.has(id) || !scopes.some((scope) => key.startsWith(scope))) continue;
    await client.auth.roleRevokePermission({ role: role.name, key: perm.key, range_end: perm.range_end });
    changed.push(`${role.name} -${String(perm.permType).toLowerCase()} ${describeKey(key, perm.range_end.length > 0)}`);
  }
  for (const [id, grant] of wanted) {
    const permType = PERMISSION_TYPES[grant.permission];
    if (held.get(id)?.permType === permType) continue;
    const range = grantRange(grant);
    await client.auth.roleGrantPermission({ name: role.name, perm: { permType, key: range.key, range_end: range.rangeEnd } });
    changed.push(`${role.name} +${grant.permission} ${describeKey(grant.key, grant.prefix)}`);
  }
}

function grantRange(grant: EtcdGrant): { key: Buffer; rangeEnd: Buffer } {
  const key = Buffer.from(grant.key);
  return { key, rangeEnd: grant.prefix ? prefixEndBytes(key) : Buffer.alloc(0) };
}

function rangeId(range: { key: Buffer; rangeEnd: Buffer }): string {
  return `${range.key.toString('hex')}:${range.rangeEnd.toString('hex')}`;
}

