/**
 * `omega.v1.NamespaceService`: namespaces and their quotas.
 *
 * | method          | who (auth/policy.ts)      | does                                                 |
 * |-----------------|---------------------------|------------------------------------------------------|
 * | CreateNamespace | admin                     | creates it (idempotent: an existing one is answered) |
 * | ListNamespaces  | read, in each namespace   | the namespaces the caller may read, quota and use    |
 * | GetQuota        | read in the namespace     | one namespace's quota and use                        |
 * | SetQuota        | admin                     | sets the quota; all fields 0 removes it              |
 *
 * The records and their guarded writes are cell-state's namespace-records.ts; what a namespace
 * uses is cell-state's quota.ts (the rule admission applies too). Errors name the request field:
 * a bad name is INVALID_ARGUMENT (`name: must be a DNS label ...`), a negative quota field
 * INVALID_ARGUMENT (`quota.cpu_millis: ...`), an unknown namespace NOT_FOUND
 * (`namespace: namespace "x" does not exist`), a quota below the current use FAILED_PRECONDITION
 * (`quota.tasks: namespace "a": tasks quota of 2 is below the 3 in use`); nothing is stored then.
 * There is no DeleteNamespace: a namespace exists for the life of the cell (its jobs, tokens and
 * quota refer to it by name, and every submit's transaction checks that its record is there).
 * An empty namespace in GetQuota or SetQuota means "default", as in a JobSpec.
 */
import { status, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  createNamespace,
  DEFAULT_NAMESPACE,
  describeExcess,
  isNamespaceName,
  namespaceUsage,
  NO_USAGE,
  setQuota,
  snapshotNamespace,
  usageByNamespace,
  type CellSnapshot,
  type Namespace,
  type Quota,
  type QuotaResource,
  type Usage,
} from '@omega/cell-state';
import type { Logger } from 'pino';
import { callerOf } from './auth/guarded-server.js';
import { allows, authorize } from './auth/policy.js';
import type { CellReader } from './cell-reader.js';
import { ApiError, failedPrecondition, invalidArgument, notFound } from './errors.js';
import { unary } from './rpc.js';
import type { WireNamespaceView, WireQuota } from './wire.js';


const QUOTA_WIRE_FIELD: Readonly<Record<QuotaResource, keyof WireQuota>> = { cpu: 'cpu_millis', memory: 'memory_bytes', tasks: 'tasks' };

function quotaToWire(q: Quota): WireQuota {
  return { cpu_millis: q.cpuMillis, memory_bytes: q.memoryBytes, tasks: q.tasks };
}

/** A namespace with its quota and what it uses now. */
export function namespaceView(namespace: Namespace, used: Usage): WireNamespaceView {
  return {
    name: namespace.name,
    has_quota: namespace.quota !== undefined,
    quota: quotaToWire(namespace.quota ?? NO_USAGE),
    used: quotaToWire(used),
    created_at_ms: namespace.createdAtMs,
  };
}

/** Every namespace of the snapshot ("default" always) the predicate keeps, by name. */
export function namespaceViews(snapshot: CellSnapshot, keep: (name: string) => boolean): WireNamespaceView[] {
  const uses = usageByNamespace(snapshot);
  const all = new Map<string, Namespace>();
  for (const ns of snapshot.namespaces()) all.set(ns.name, ns);
  const implicit = snapshotNamespace(snapshot, DEFAULT_NAMESPACE);
  if (implicit !== undefined && !all.has(DEFAULT_NAMESPACE)) all.set(DEFAULT_NAMESPACE, implicit);
  return [...all.values()]
    .filter((ns) => keep(ns.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((ns) => namespaceView(ns, uses.get(ns.name) ?? NO_USAGE));
}

/** A namespace named by a request field: empty means "default"; INVALID_ARGUMENT naming `field` unless a DNS label. */
function requestNamespace(field: string, value: string | undefined): string {
  const name = value === undefined || value === '' ? DEFAULT_NAMESPACE : value;
  if (!isNamespaceName(name)) throw invalidArgument(field, `must be a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit (got ${JSON.stringify(value)})`);
  return name;
}

/** The quota of a SetQuota request, every field checked (named `quota.<field>`). */
function requestQuota(wire: Partial<WireQuota> | null | undefined): Quota {
  const field = (name: keyof WireQuota): number => {
    const value = wire?.[name] ?? 0;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalidArgument(`quota.${name}`, `must be a whole number, got ${String(value)}`);
    if (value < 0) throw invalidArgument(`quota.${name}`, `must be >= 0 (0: no limit), got ${value}`);
    return value;
  };
  return { cpuMillis: field('cpu_millis'), memoryBytes: field('memory_bytes'), tasks: field('tasks') };
}

const unknown = (name: string): ApiError => notFound(`namespace: namespace ${JSON.stringify(name)} does not exist (an admin creates it with CreateNamespace)`);

export interface NamespaceServiceOptions {
  readonly reader: CellReader;
  readonly logger: Logger;
  /** For tests: the clock namespaces' creation times come from. */
  readonly now?: () => number;
}

export function namespaceServiceImplementation(options: NamespaceServiceOptions): UntypedServiceImplementation {
  const { reader, logger } = options;
  const { kv, keys } = reader.cell;
  const now = options.now ?? Date.now;

  async function create(request: { name?: string }): Promise<WireNamespaceView> {
    const name = request.name ?? '';
    if (!isNamespaceName(name)) throw invalidArgument('name', `must be a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit (got ${JSON.stringify(name)})`);
    const deadline = reader.deadline();
    const { namespace, created } = await reader.store(deadline, 'creating the namespace', () => createNamespace(kv, keys, name, now()));
    if (created) logger.info({ namespace: name }, 'namespace created');
    const snapshot = await reader.atLeast(namespace.revision, deadline);
    return namespaceView(namespace, namespaceUsage(snapshot, name));
  }

  async function list(_request: unknown, call: ServerUnaryCall<unknown, unknown>): Promise<{ namespaces: WireNamespaceView[] }> {
    const caller = callerOf(call);
    return { namespaces: namespaceViews(await reader.fresh(), (name) => allows(caller, 'read-namespaces', name)) };
  }

  async function get(request: { namespace?: string }, call: ServerUnaryCall<unknown, unknown>): Promise<WireNamespaceView> {
    const name = requestNamespace('namespace', request.namespace);
    // Decided before anything is told about the namespace, its existence included.
    authorize(callerOf(call), 'read-namespaces', name);
    const snapshot = await reader.fresh();
    const namespace = snapshotNamespace(snapshot, name);
    if (namespace === undefined) throw unknown(name);
    return namespaceView(namespace, namespaceUsage(snapshot, name));
  }

  async function set(request: { namespace?: string; quota?: Partial<WireQuota> | null }): Promise<WireNamespaceView> {
    const name = requestNamespace('namespace', request.namespace);
    const quota = requestQuota(request.quota);
    const deadline = reader.deadline();
    const result = await reader.store(deadline, 'setting the quota', () =>
      setQuota(kv, keys, name, quota, { snapshotAtLeast: (revision) => reader.atLeast(revision, deadline), nowMs: now() }),
    );
    switch (result.kind) {
      case 'set':
        logger.info({ namespace: name, quota: result.namespace.quota ?? null }, result.namespace.quota === undefined ? 'namespace quota removed' : 'namespace quota set');
        return namespaceView(result.namespace, result.used);
      case 'below-use':
        throw failedPrecondition(`quota.${QUOTA_WIRE_FIELD[result.excess.resource]}: ${describeExcess(result.excess, 'below-use')}; nothing was changed`);
      case 'unknown-namespace':
        throw unknown(name);
      case 'contended':
        throw new ApiError(status.ABORTED, `namespace ${JSON.stringify(name)}: ${result.conflicts} submits kept getting in while the quota was judged; retry`);
    }
  }

  return {
    CreateNamespace: unary(logger, 'CreateNamespace', create),
    ListNamespaces: unary(logger, 'ListNamespaces', list),
    GetQuota: unary(logger, 'GetQuota', get),
    SetQuota: unary(logger, 'SetQuota', set),
  };
}
