/**
 * The etcd key layout of a cell, under `/omega/<cell>/`:
 *
 * | key                        | holds                                   | written by                |
 * |----------------------------|-----------------------------------------|---------------------------|
 * | `machines/<id>`            | capacity, attributes, claims            | agent (register), commits |
 * | `alive/<id>`               | heartbeat, bound to the agent's lease   | agent                     |
 * | `jobs/<id>`                | job spec and desired state              | API (schedulers delete it)|
 * | `tasks/<job>/<index>`      | placement and observed state            | commits, agent            |
 * | `status/<job>`             | why a job is (not) placed               | owning scheduler          |
 * | `owners/<job>`             | owning scheduler, bound to its lease    | schedulers                |
 * | `schedulers/<name>`        | a scheduler's metrics                   | that scheduler            |
 * | `requests/<request id>`    | job id, spec hash, nonce, creation time | API (schedulers expire it)|
 * | `namespaces/<name>`        | a namespace, its quota, admissions      | API (create, quota, submit)|
 * | `history/<job>/<version>`  | an earlier version of a job (not mirrored) | API (update), schedulers (rollback, delete) |
 * | `sync`                     | nothing (see {@link CellKeys.syncMarker}) | token writes, API reads |
 *
 * Two more prefixes sit outside the cell prefix so that etcd's role-based access can keep them
 * from the components that mirror the cell (a range read needs permission on the whole range):
 *
 * | key                                | holds                      | access (etcd roles)          |
 * |------------------------------------|----------------------------|------------------------------|
 * | `/omega-auth/<cell>/tokens/<name>` | a bearer token's hash      | API servers only             |
 * | `/omega-auth/<cell>/secret-digest-key` | HMAC key for secret env hashes | API servers only     |
 * | `/omega-secrets/<cell>/<job>`      | a job's secret env values  | API write, schedulers delete, agents read |
 */
import { InvalidRecordError } from './codec.js';
import type { JobId, MachineId, TaskId } from './types.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Checks an id that becomes one segment of a key: 1-128 characters of letters, digits, `.`, `_`
 * and `-`, starting with a letter or digit (so never `..`, never a `/`).
 */
export function checkId(field: string, id: string): void {
  if (!ID.test(id)) {
    throw new InvalidRecordError(field, `must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (got ${JSON.stringify(id)})`);
  }
}

export type KeyKind = 'machine' | 'alive' | 'job' | 'task' | 'status' | 'owner' | 'scheduler' | 'request' | 'namespace';

export interface ParsedKey {
  readonly kind: KeyKind;
  /** The rest of the key after the kind's prefix (`<job>/<index>` for tasks). */
  readonly id: string;
}

const SEGMENTS: Readonly<Record<string, KeyKind>> = {
  machines: 'machine',
  alive: 'alive',
  jobs: 'job',
  tasks: 'task',
  status: 'status',
  owners: 'owner',
  schedulers: 'scheduler',
  requests: 'request',
  namespaces: 'namespace',
};

/** The key segment of each kind: the inverse of `SEGMENTS`. */
const KIND_SEGMENTS = Object.fromEntries(Object.entries(SEGMENTS).map(([segment, kind]) => [kind, segment])) as Readonly<Record<KeyKind, string>>;

/** Key builder and parser for one cell. */
export class CellKeys {
  /** `/omega/<cell>/`: every key of the cell starts with it. */
  readonly root: string;
  /** `/omega-auth/<cell>/`: the cell's credentials, readable by API servers only. */
  readonly authRoot: string;
  /** `/omega-secrets/<cell>/`: jobs' secret env values, readable by agents only. */
  readonly secretsRoot: string;

  constructor(readonly cell: string) {
    if (!CELL.test(cell)) throw new InvalidRecordError('cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);
    this.root = `/omega/${cell}/`;
    this.authRoot = `/omega-auth/${cell}/`;
    this.secretsRoot = `/omega-secrets/${cell}/`;
  }

  /**
   * `/omega/<cell>/sync`: a key of no kind (mirrors ignore it but advance past its revision) that
   * is rewritten with every token write, and by an API server whose mirror waits for a revision
   * that only writes outside the cell prefix made. One key for the whole cell: it never accumulates.
   */
  get syncMarker(): string {
    return `${this.root}sync`;
  }

  /** `/omega-auth/<cell>/tokens/`. */
  get tokensPrefix(): string {
    return `${this.authRoot}tokens/`;
  }
  token(name: string): string {
    return `${this.authRoot}tokens/${name}`;
  }
  secret(id: JobId): string {
    return `${this.secretsRoot}${id}`;
  }
  /** `/omega-auth/<cell>/secret-digest-key`: the key of the HMAC that request records keep of secret env values (secrets.ts). */
  get secretDigestKey(): string {
    return `${this.authRoot}secret-digest-key`;
  }

  prefix(segment: 'machines' | 'alive' | 'jobs' | 'tasks' | 'status' | 'owners' | 'schedulers' | 'requests' | 'namespaces'): string {
    return `${this.root}${segment}/`;
  }
  machine(id: MachineId): string {
    return `${this.root}machines/${id}`;
  }
  alive(id: MachineId): string {
    return `${this.root}alive/${id}`;
  }
  job(id: JobId): string {
    return `${this.root}jobs/${id}`;
  }
  task(id: TaskId): string {
    return `${this.root}tasks/${id}`;
  }
  tasksOfJob(id: JobId): string {
    return `${this.root}tasks/${id}/`;
  }
  status(id: JobId): string {
    return `${this.root}status/${id}`;
  }
  owner(id: JobId): string {
    return `${this.root}owners/${id}`;
  }
  scheduler(name: string): string {
    return `${this.root}schedulers/${name}`;
  }
  request(id: string): string {
    return `${this.root}requests/${id}`;
  }
  /**
   * `history/<job>/<version>`: an earlier version of a job. Of no {@link KeyKind}: mirrors ignore
   * these keys (agents and schedulers never hold them), readers range over
   * {@link CellKeys.historyOfJob}.
   */
  history(id: JobId, version: number): string {
    return `${this.root}history/${id}/${String(version).padStart(10, '0')}`;
  }
  historyOfJob(id: JobId): string {
    return `${this.root}history/${id}/`;
  }
  /** `namespaces/<name>`: a namespace's record ("default" exists without one). */
  namespace(name: string): string {
    return `${this.root}namespaces/${name}`;
  }

  /** The key of a record given by kind and id (the inverse of {@link CellKeys.parse}). */
  of(kind: KeyKind, id: string): string {
    return `${this.root}${KIND_SEGMENTS[kind]}/${id}`;
  }

  /** Which record a key of this cell holds; `undefined` for keys outside the layout. */
  parse(key: string): ParsedKey | undefined {
    if (!key.startsWith(this.root)) return undefined;
    const rest = key.slice(this.root.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    const kind = SEGMENTS[rest.slice(0, slash)];
    const id = rest.slice(slash + 1);
    if (kind === undefined || id.length === 0) return undefined;
    return { kind, id };
  }
}
