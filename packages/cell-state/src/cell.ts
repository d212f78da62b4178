/**
 * Cell: one cell's records in a KV store, for the processes that write them: agents (machine
 * registration, heartbeat, task status), the API (jobs), schedulers (ownership, job status,
 * metrics). Reads for scheduling go through a {@link CellMirror}; commits of claims through a
 * {@link Committer}, both made here so they share the key layout.
 *
 * Every write that could race another writer is a compare-and-swap on the key's mod_revision,
 * retried a bounded number of times.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import pino from 'pino';
import {
  decodeJob,
  decodeMachine,
  decodeNamespace,
  decodeRequestRecord,
  decodeOwner,
  decodeTask,
  encodeAlive,
  encodeJob,
  encodeJobStatus,
  encodeMachine,
  encodeNamespace,
  encodeOwner,
  encodeRequestRecord,
  encodeSchedulerStats,
  encodeSecretEnv,
  encodeTask,
  InvalidRecordError,
} from './codec.js';
import type { CellSnapshot } from './cell-snapshot.js';
import { Committer, type CommitterOptions } from './commit.js';
import { jobSpecProblems, secretEnvNames, secretEnvProblems } from './job-spec.js';
import { deleteFinishedJob, type DeleteJobRequest, type DeleteJobResult } from './job-deletion.js';
import { readJobHistory, updateJob, type UpdateJobRequest, type UpdateJobResult } from './job-versions.js';
import { CellKeys, checkId } from './keys.js';
import type { Compare, KeyValue, KvLease, KvStore, Op, OpResult, TxnRequest } from './kv.js';
import { CellMirror, type MirrorOptions } from './mirror.js';
import { implicitDefault } from './namespace-records.js';
import { isUnlimited, jobDemand, namespaceUsage, quotaExcess, type QuotaExcess } from './quota.js';
import { deleteExpiredRequests, RequestIdReusedError, RequestJobGoneError, specSha256 } from './request-records.js';
import { checkResources } from './resources.js';
import { readSecretEnv, requestSpecHash, secretDigestKey, secretEnvDigest } from './secrets.js';
import {
  DEFAULT_NAMESPACE,
  isTerminal,
  type CronRun,
  type DesiredState,
  type Job,
  type JobId,
  type JobSpec,
  type JobStatus,
  type JobVersion,
  type Machine,
  type MachineId,
  type Namespace,
  type Resources,
  type SchedulerStats,
  type SecretEnv,
  type Task,
  type TaskId,
} from './types.js';

/** A compare-and-swap kept losing to other writers. */
export class ContentionError extends Error {
  constructor(what: string, attempts: number) {
    super(`${what}: still contended after ${attempts} attempts`);
    this.name = 'ContentionError';
  }
}

/** What an agent registers about its machine. */
export interface MachineRegistration {
  readonly id: MachineId;
  readonly capacity: Resources;
  readonly attributes?: Readonly<Record<string, string>>;
  readonly hollow?: boolean;
  readonly enforcementDisabled?: boolean;
}

/** A lease-bound key kept alive until `stop()`. */
export interface Heartbeat {
  readonly lease: KvLease;
  /** Revokes the lease: the key disappears at once. */
  stop(): Promise<void>;
}

/**
 * A task update from an agent: fields of the observed state. A `message` is the agent's to keep
 * within `MAX_TASK_MESSAGE_LENGTH` (types.ts; it cuts a longer one before it reports, as a report is
 * never refused for how it explains itself).
 */
export type TaskPatch = Partial<Pick<Task, 'state' | 'reason' | 'message' | 'exitCode' | 'signal' | 'pid' | 'startedAtMs' | 'finishedAtMs' | 'cpuSeconds' | 'peakMemoryBytes' | 'health' | 'healthSinceMs'>>;

export type TaskUpdateOutcome = 'updated' | 'stale' | 'missing';

export interface NewJob {
  readonly id: JobId;
  readonly spec: JobSpec;
  readonly requestId?: string;
  readonly submittedAtMs?: number;
  /**
   * Random, one per submit call (made here when absent). A caller that retries its own create
   * after an unknown outcome (KvUnavailableError) passes the same nonce, id and request id again,
   * so the retry is recognised as the same call (`created: true`), not a repeat.
   */
  readonly nonce?: string;
  /**
   * The job's secret env values (see secrets.ts): stored at `keys.secret(id)` in the same
   * transaction as the job, never in the job record; the stored spec gets their names
   * (`task.secretEnvNames`). Covered by the request record's hash through an HMAC, so a repeat
   * of the request id with other values is refused like one with another spec.
   */
  readonly secretEnv?: SecretEnv;
  /** A run of a cron job: which one, and the scheduled time (stored with the job). */
  readonly cronRun?: CronRun;
}

/** Extra compares and writes for a job's create transaction (Cell.submitJob's namespace guard). */
interface AdmissionGuard {
  readonly compare: readonly Compare[];
  readonly success: readonly Op[];
  /** Reads returned (after the job's and request's) when the guard failed. */
  readonly failure: readonly Op[];
}

/** How many times Cell.submitJob judges a submit again after another admission got in first. */
export const SUBMIT_ADMISSION_ATTEMPTS = 32;

export interface SubmitJobOptions {
  /**
   * A snapshot at `revision` or later, for the quota check (the API passes its reader's
   * `atLeast`, bounded by the call's deadline). Called only for namespaces with a quota.
   */
  readonly snapshotAtLeast: (revision: number) => Promise<CellSnapshot>;
  /**
   * A recent snapshot (the API passes its mirror's). When it holds the job's namespace without
   * a quota ("default" also without a record), the submit is judged on that record and stored
   * at once, the store transaction comparing the record's revision: one round trip instead of
   * a read and a write. A stale record only costs that read (the guard fails, the transaction's
   * failure branch returns the record as it is, and it is judged again). Namespaces with a
   * quota, or none in the snapshot, take the read first, as without this.
   */
  readonly recentSnapshot?: () => CellSnapshot;
  /** Default {@link SUBMIT_ADMISSION_ATTEMPTS}. */
  readonly maxAttempts?: number;
  /** The pause before judging again after the `conflicts`-th conflict; default random, up to 4 ms x 2^conflicts, at most 100 ms. */
  readonly pause?: (conflicts: number) => Promise<void>;
}

/** What a submit came to. Refusals are values: nothing was stored for them. */
export type SubmitJobResult =
  | { readonly kind: 'admitted'; readonly job: Job; readonly created: boolean; readonly conflicts: number }
  | { readonly kind: 'over-quota'; readonly excess: QuotaExcess; readonly conflicts: number }
  | { readonly kind: 'unknown-namespace'; readonly namespace: string }
  | { readonly kind: 'contended'; readonly conflicts: number };

/** Random, growing with the conflicts (so contenders spread out), at most 100 ms. */
function admissionPause(conflicts: number): Promise<void> {
  const ms = 1 + Math.floor(Math.random() * Math.min(100, 4 * 2 ** Math.min(conflicts, 5)));
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Jobs whose ownership one transaction of {@link Cell.acquireOwnerships} takes at most. */
export const OWNERSHIPS_PER_TXN = 32;

/** Most job statuses {@link Cell.putJobStatuses} writes in one transaction (each a put and maybe a nested release). */
export const STATUSES_PER_TXN = 32;

/** Whether one create of {@link Cell.acquireOwnerships} left the job owned by `scheduler` under `lease`. */
function ownedBy(job: JobId, outcome: OpResult | undefined, scheduler: string, lease: KvLease): boolean {
  if (outcome?.type !== 'txn') return false;
  if (outcome.succeeded) return true;
  const read = outcome.results[0];
  const held = read?.type === 'range' ? read.kvs[0] : undefined;
  if (held === undefined || held.lease !== lease.id) return false;
  try {
    return decodeOwner(job, held.value, held.lease, held.modRevision).scheduler === scheduler;
  } catch {
    // An undecodable record under our lease was not written by us: not ours.
    return false;
  }
}

function firstKv(result: OpResult | undefined): KeyValue | undefined {
  return result?.type === 'range' ? result.kvs[0] : undefined;
}

/** The job id is taken by another job (not this call's own create). Nothing was written; try another id. */
export class JobIdTakenError extends InvalidRecordError {
  readonly retryable = false;
  constructor(readonly jobId: JobId) {
    super('job.id', `job ${jobId} already exists`);
    this.name = 'JobIdTakenError';
  }
}

/**
 * The spec as stored: its `task.secretEnvNames` are the names of `secretEnv`. Throws
 * {@link InvalidRecordError} (naming `job.task.secretEnv.<NAME>` or `job.task.secretEnvNames`,
 * never a value) for invalid values or names that do not match the values given.
 */
function withSecretEnvNames(spec: JobSpec, secretEnv: SecretEnv): JobSpec {
  const problems = secretEnvProblems(secretEnv, spec, 'job.');
  if (problems.length > 0) throw new InvalidRecordError(problems[0]?.field ?? 'job.task.secretEnv', problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
  const names = secretEnvNames(secretEnv);
  const given = spec.task.secretEnvNames ?? [];
  if (given.length > 0 && given.join('\0') !== names.join('\0')) {
    throw new InvalidRecordError('job.task.secretEnvNames', 'must be the names of the secret env values given (values are never read back: submit them again)');
  }
  if (names.length === 0) return spec;
  return { ...spec, task: { ...spec.task, secretEnvNames: names } };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

const CAS_ATTEMPTS = 16;

/**
 * A patch applied to a task record. Once the record is terminal its state, reason and message
 * are final (a task preempted while it exited stays `preempted`, without the agent's words on
 * how it ended), and so is how the process ended: the
 * first report of an exit code or signal (with its usage and finish time) wins, so an agent can
 * still record how a killed task really ended, but a late or racing report never rewrites it.
 */
function mergeTask(task: Task, patch: TaskPatch): Task {
  if (!isTerminal(task.state)) return { ...task, ...patch };
  const ended = task.exitCode !== undefined || task.signal !== '';
  return {
    ...task,
    ...(ended ? {} : pick(patch, ['exitCode', 'signal', 'cpuSeconds', 'peakMemoryBytes', 'finishedAtMs'])),
    ...(task.pid === 0 ? pick(patch, ['pid', 'startedAtMs']) : {}),
  };
}

function pick<K extends keyof TaskPatch>(patch: TaskPatch, keys: readonly K[]): Pick<TaskPatch, K> {
  const out: Partial<TaskPatch> = {};
  for (const k of keys) if (patch[k] !== undefined) (out as Record<string, unknown>)[k] = patch[k];
  return out as Pick<TaskPatch, K>;
}

function checkRegistration(reg: MachineRegistration): void {
  checkId('machine.id', reg.id);
  checkResources('machine.capacity', reg.capacity, { positive: true });
  for (const [k, v] of Object.entries(reg.attributes ?? {})) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/.test(k)) throw new InvalidRecordError(`machine.attributes.${k}`, 'name must be 1-128 letters, digits, ".", "_", "/" or "-"');
    if (typeof v !== 'string' || v.length > 256) throw new InvalidRecordError(`machine.attributes.${k}`, 'value must be a string of at most 256 characters');
  }
}

/**
 * The record a registration writes: as registered, schedulable, with the claims and the
 * operator's cordon already on it (an agent restarting neither drops its tasks' claims nor
 * uncordons its machine).
 */
function registeredMachine(reg: MachineRegistration, current: Machine | undefined): Omit<Machine, 'seq'> {
  return {
    id: reg.id,
    capacity: reg.capacity,
    attributes: { ...(reg.attributes ?? {}) },
    schedulable: true,
    unschedulableReason: '',
    enforcementDisabled: reg.enforcementDisabled === true,
    hollow: reg.hollow === true,
    ...(current?.cordon === undefined ? {} : { cordon: current.cordon }),
    claims: current?.claims ?? [],
  };
}

export class Cell {
  readonly keys: CellKeys;
  private readonly logger: Logger;
  private readonly now: () => number;
  private digestKey: Promise<Uint8Array> | undefined;

  constructor(
    readonly kv: KvStore,
    cellName: string,
    options: { logger?: Logger; now?: () => number } = {},
  ) {
    this.keys = new CellKeys(cellName);
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'cell', cell: cellName });
    this.now = options.now ?? Date.now;
  }

  /** A replica of this cell's state; call `start()` on it. */
  mirror(options: MirrorOptions = {}): CellMirror {
    return new CellMirror(this.kv, this.keys, { logger: this.logger, ...options });
  }

  committer(options: CommitterOptions = {}): Committer {
    return new Committer(this.kv, this.keys, { logger: this.logger, now: this.now, ...options });
  }

  // ---- machines -------------------------------------------------------------------------

  /**
   * Creates or updates a machine's record: capacity and attributes as given, schedulable, and
   * the claims already on it kept (an agent restarting does not drop its tasks' claims).
   */
  async registerMachine(reg: MachineRegistration): Promise<Machine> {
    checkRegistration(reg);
    return this.updateMachine(reg.id, (current) => registeredMachine(reg, current));
  }

  /**
   * Registers many machines in few requests (a hollow agent registers thousands at once): one
   * read and one write per chunk of up to `maxTxnOps` machines (at most 500, to stay far under
   * the request size limit), each machine's write guarded by the mod_revision it was read at.
   * Same record as {@link registerMachine} (claims kept); a machine whose guard failed (someone
   * committed to it in between) is registered again on its own. All registrations are validated
   * before anything is written.
   */
  async registerMachines(regs: readonly MachineRegistration[]): Promise<void> {
    for (const reg of regs) checkRegistration(reg);
    const chunk = Math.max(1, Math.min(this.kv.limits.maxTxnOps, 500));
    for (let start = 0; start < regs.length; start += chunk) {
      const part = regs.slice(start, start + chunk);
      const read = await this.kv.txn({ compare: [], success: part.map((reg) => ({ type: 'range' as const, key: this.keys.machine(reg.id) })), failure: [] });
      const write = await this.kv.txn({
        compare: [],
        success: part.map((reg, i) => {
          const result = read.results[i];
          const kv = result?.type === 'range' ? result.kvs[0] : undefined;
          const current = kv === undefined ? undefined : decodeMachine(kv.value, kv.modRevision);
          const key = this.keys.machine(reg.id);
          return {
            type: 'txn' as const,
            txn: {
              compare: [{ key, target: 'mod' as const, op: '==' as const, value: kv?.modRevision ?? 0 }],
              success: [{ type: 'put' as const, key, value: encodeMachine(registeredMachine(reg, current)) }],
              failure: [],
            },
          };
        }),
        failure: [],
      });
      for (const [i, result] of write.results.entries()) {
        if (result.type === 'txn' && result.succeeded) continue;
        await this.registerMachine(part[i] as MachineRegistration);
      }
    }
  }

  /** Marks a machine (un)schedulable, keeping its claims. */
  async setSchedulable(id: MachineId, schedulable: boolean, reason = ''): Promise<Machine> {
    return this.updateMachine(id, (current) => {
      if (current === undefined) throw new InvalidRecordError('machineId', `unknown machine ${JSON.stringify(id)}`);
      return { ...current, schedulable, unschedulableReason: schedulable ? '' : reason };
    });
  }

  /**
   * Cordons a machine (no new placements; its tasks keep running), or with `drainDeadlineMs`
   * drains it (its tasks are moved off; see {@link MachineCordon}). Cordoning a cordoned machine
   * replaces its reason and deadline but keeps when it was first cordoned. Unknown machine:
   * InvalidRecordError naming `machineId`, nothing written.
   */
  async cordonMachine(id: MachineId, cordon: { reason: string; drainDeadlineMs?: number }): Promise<Machine> {
    if (cordon.reason.length > 256) throw new InvalidRecordError('reason', 'must be at most 256 characters');
    const drainDeadlineMs = cordon.drainDeadlineMs ?? 0;
    if (!Number.isSafeInteger(drainDeadlineMs) || drainDeadlineMs < 0) throw new InvalidRecordError('drainDeadlineMs', 'must be a time in ms since the epoch, or 0');
    return this.updateMachine(id, (current) => {
      if (current === undefined) throw new InvalidRecordError('machineId', `unknown machine ${JSON.stringify(id)}`);
      const sinceMs = current.cordon?.sinceMs ?? this.now();
      return { ...current, cordon: { reason: cordon.reason, sinceMs, drainDeadlineMs } };
    });
  }

  /** Lifts a machine's cordon (or drain): it takes placements again. No-op when not cordoned. */
  async uncordonMachine(id: MachineId): Promise<Machine> {
    return this.updateMachine(id, (current) => {
      if (current === undefined) throw new InvalidRecordError('machineId', `unknown machine ${JSON.stringify(id)}`);
      if (current.cordon === undefined) return current;
      const { cordon: _lifted, ...rest } = current;
      return rest;
    });
  }

  async getMachine(id: MachineId): Promise<Machine | undefined> {
    const { kvs } = await this.kv.range({ key: this.keys.machine(id) });
    const kv = kvs[0];
    return kv === undefined ? undefined : decodeMachine(kv.value, kv.modRevision);
  }

  /** Read, change, write guarded by the read's revision (retried); `change` returning `current` itself writes nothing. */
  private async updateMachine(id: MachineId, change: (current: Machine | undefined) => Omit<Machine, 'seq'>): Promise<Machine> {
    const key = this.keys.machine(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { kvs } = await this.kv.range({ key });
      const kv = kvs[0];
      const current = kv === undefined ? undefined : decodeMachine(kv.value, kv.modRevision);
      const next = change(current);
      if (current !== undefined && next === current) return current;
      const value = encodeMachine(next);
      const reply = await this.kv.txn({
        compare: [{ key, target: 'mod', op: '==', value: kv?.modRevision ?? 0 }],
        success: [{ type: 'put', key, value }],
        failure: [],
      });
      if (reply.succeeded) return { ...next, seq: reply.revision };
    }
    throw new ContentionError(`machine ${id}`, CAS_ATTEMPTS);
  }

  /**
   * Starts the machine's heartbeat: `alive/<id>` bound to a lease of `ttlSeconds`, kept alive
   * until `stop()`. If the lease is lost (etcd unreachable past the TTL), `onLost` runs; the
   * agent should start a new heartbeat.
   */
  async startHeartbeat(
    id: MachineId,
    options: { ttlSeconds?: number; agent?: string; logAddress?: string; onLost?: (error: Error) => void } = {},
  ): Promise<Heartbeat> {
    checkId('machine.id', id);
    const lease = await this.kv.grantLease(options.ttlSeconds ?? 10, { autoKeepAlive: true });
    if (options.onLost !== undefined) lease.onLost(options.onLost);
    await this.kv.put(this.keys.alive(id), encodeAlive({ agent: options.agent ?? '', startedAtMs: this.now(), logAddress: options.logAddress ?? '' }), { lease: lease.id });
    return { lease, stop: () => lease.revoke() };
  }

  /**
   * One heartbeat for many machines (a hollow agent's): `alive/<id>` for every id, all bound to
   * ONE lease of `ttlSeconds`, written in chunks of up to `maxTxnOps` keys per request. One lease
   * keeps keep-alive traffic constant however many machines the process serves; each machine
   * still has its own key, so schedulers see liveness per machine. `stop()` revokes the lease:
   * every key disappears at once. `onLost` as for {@link startHeartbeat}.
   */
  async startHeartbeats(
    ids: readonly MachineId[],
    options: { ttlSeconds?: number; agent?: string; logAddress?: string; onLost?: (error: Error) => void } = {},
  ): Promise<Heartbeat> {
    for (const id of ids) checkId('machine.id', id);
    const lease = await this.kv.grantLease(options.ttlSeconds ?? 10, { autoKeepAlive: true });
    if (options.onLost !== undefined) lease.onLost(options.onLost);
    const value = encodeAlive({ agent: options.agent ?? '', startedAtMs: this.now(), logAddress: options.logAddress ?? '' });
    const chunk = Math.max(1, Math.min(this.kv.limits.maxTxnOps, 1000));
    for (let start = 0; start < ids.length; start += chunk) {
      const part = ids.slice(start, start + chunk);
      await this.kv.txn({ compare: [], success: part.map((id) => ({ type: 'put' as const, key: this.keys.alive(id), value, lease: lease.id })), failure: [] });
    }
    return { lease, stop: () => lease.revoke() };
  }

  // ---- jobs and tasks -------------------------------------------------------------------

  /**
   * Stores a new job, in one guarded transaction that also writes `requests/<requestId>` when a
   * request id is given (see request-records.ts). Invalid specs are refused with every problem
   * named by field, and nothing is written.
   *
   * Idempotent, also when etcd3 resends the transaction after a lost reply: the resend finds
   * this call's nonce in the request record (or, without a request id, its own job record byte
   * for byte) and answers `created: true` with the one job. A repeat of a request id (another
   * call) with the same spec answers the job created for it, `created: false`; with a different
   * spec it throws {@link RequestIdReusedError}; when that job has since been deleted,
   * {@link RequestJobGoneError}. A job id taken by another job throws {@link JobIdTakenError}.
   */
  async createJob(job: NewJob): Promise<{ job: Job; created: boolean }> {
    const stored = await this.storeJob(job, undefined);
    // Without an admission guard only the job and request records can block the create.
    if ('guardFailed' in stored) throw new Error('createJob: a guard failed that was never given');
    return stored;
  }

  /**
   * Admits and stores a job: the API's submit (Borg-style admission against the job's namespace,
   * see quota.ts and namespace-records.ts). In order:
   *
   * 1. A request record already stored for `requestId` answers the call as {@link createJob}
   *    does (the same job, a resend's `created: true`, or its errors), before any quota check: a
   *    resend of an admitted submit is never refused by the quota it already holds.
   * 2. The namespace must exist ("default" always does): else `unknown-namespace`, nothing stored.
   * 3. With a quota: the namespace's use is computed from `options.snapshotAtLeast(M)`, M the
   *    record's mod revision just read; over the quota in any resource: `over-quota`, naming the
   *    resource, what the job asks, the use and the quota; nothing stored.
   * 4. The job is stored in one transaction that also compares the namespace record's mod
   *    revision to M (for "default" without a record: that it is still absent) and rewrites the
   *    record (admissions + 1). So two API servers cannot both admit against the same use: the
   *    second one's guard fails, and it judges again against a fresh snapshot, after a short
   *    random pause, up to `maxAttempts` times (`contended` then; every retry is counted in
   *    `conflicts`).
   *
   * Idempotent, also when etcd3 resends a transaction after a lost reply (the nonce and the
   * submit time are fixed once per call). {@link createJob} itself checks neither namespace nor
   * quota: it is for tests and tools that write the cell directly.
   */
  async submitJob(job: NewJob, options: SubmitJobOptions): Promise<SubmitJobResult> {
    checkId('job.id', job.id);
    const problems = jobSpecProblems(job.spec, 'job.');
    if (problems.length > 0) throw new InvalidRecordError(problems[0]?.field ?? 'job', problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
    if (job.requestId !== undefined && job.requestId !== '') checkId('requestId', job.requestId);
    const call: NewJob = { ...job, nonce: job.nonce ?? randomBytes(12).toString('base64url'), submittedAtMs: job.submittedAtMs ?? this.now() };
    const name = job.spec.namespace;
    const namespaceKey = this.keys.namespace(name);
    const requestKey = call.requestId !== undefined && call.requestId !== '' ? this.keys.request(call.requestId) : undefined;
    const guard = (namespace: Namespace, hasRecord: boolean): AdmissionGuard => {
      const { revision, ...record } = namespace;
      return {
        compare: [{ key: namespaceKey, target: 'mod', op: '==', value: revision }],
        success: hasRecord ? [{ type: 'put', key: namespaceKey, value: encodeNamespace({ ...record, admissions: record.admissions + 1 }) }] : [],
        failure: [{ type: 'range', key: namespaceKey }],
      };
    };
    const recent = options.recentSnapshot?.().namespace(name);
    if (recent === undefined ? name === DEFAULT_NAMESPACE && options.recentSnapshot !== undefined : recent.quota === undefined || isUnlimited(recent.quota)) {
      // Nothing to judge but the record's revision: store at once. A request record already
      // stored answers the call inside storeJob, before any quota, as step 1 says.
      const stored = await this.storeJob(call, guard(recent ?? implicitDefault(), recent !== undefined));
      if (!('guardFailed' in stored)) return { kind: 'admitted', ...stored, conflicts: 0 };
      return this.admitJudged(call, firstKv(stored.guardFailed[0]), guard, options);
    }
    const read = await this.kv.txn({ compare: [], success: [{ type: 'range', key: namespaceKey }, ...(requestKey === undefined ? [] : [{ type: 'range' as const, key: requestKey }])], failure: [] });
    const namespaceKv = firstKv(read.results[0]);
    if (requestKey !== undefined && firstKv(read.results[1]) !== undefined) {
      // Answered from the request record. The contradictory guard (the record must exist, and
      // the create compares that it does not) keeps this path from ever storing a job unjudged.
      const answered = await this.storeJob(call, { compare: [{ key: requestKey, target: 'create', op: '!=', value: 0 }], success: [], failure: [] });
      if (!('guardFailed' in answered)) return { kind: 'admitted', ...answered, conflicts: 0 };
      // The record expired in between: judged as a new submit below.
    }
    return this.admitJudged(call, namespaceKv, guard, options);
  }

  /** Steps 2-4 of {@link submitJob}, from the namespace record as just read (`undefined`: none). */
  private async admitJudged(
    call: NewJob,
    read: KeyValue | undefined,
    guard: (namespace: Namespace, hasRecord: boolean) => AdmissionGuard,
    options: SubmitJobOptions,
  ): Promise<SubmitJobResult> {
    const name = call.spec.namespace;
    let namespaceKv = read;
    const maxAttempts = options.maxAttempts ?? SUBMIT_ADMISSION_ATTEMPTS;
    const pause = options.pause ?? admissionPause;
    let conflicts = 0;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      if (attempt > 0) await pause(conflicts);
      if (namespaceKv === undefined && name !== DEFAULT_NAMESPACE) return { kind: 'unknown-namespace', namespace: name };
      const namespace = namespaceKv === undefined ? implicitDefault() : decodeNamespace(namespaceKv.value, namespaceKv.modRevision);
      if (namespace.quota !== undefined && !isUnlimited(namespace.quota)) {
        const snapshot = await options.snapshotAtLeast(namespace.revision);
        const excess = quotaExcess(name, namespace.quota, namespaceUsage(snapshot, name), jobDemand(call.spec));
        if (excess !== undefined) return { kind: 'over-quota', excess, conflicts };
      }
      const stored = await this.storeJob(call, guard(namespace, namespaceKv !== undefined));
      if (!('guardFailed' in stored)) return { kind: 'admitted', ...stored, conflicts };
      conflicts++;
      namespaceKv = firstKv(stored.guardFailed[0]);
    }
    return { kind: 'contended', conflicts };
  }

  /**
   * {@link createJob}, with an admission guard's compares and writes in the same transaction
   * (Cell.submitJob's namespace record). When neither the job nor the request record blocked
   * the create, the guard did: `guardFailed` holds the results of the guard's failure ops.
   */
  private async storeJob(job: NewJob, admission: AdmissionGuard | undefined): Promise<{ job: Job; created: boolean } | { guardFailed: readonly OpResult[] }> {
    checkId('job.id', job.id);
    const problems = jobSpecProblems(job.spec, 'job.');
    if (problems.length > 0) throw new InvalidRecordError(problems[0]?.field ?? 'job', problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
    if (job.requestId !== undefined && job.requestId !== '') checkId('requestId', job.requestId);
    const secretEnv = job.secretEnv ?? {};
    const spec = withSecretEnvNames(job.spec, secretEnv);
    const hasSecrets = Object.keys(secretEnv).length > 0;
    const record = { id: job.id, spec, desired: 'running' as const, submittedAtMs: job.submittedAtMs ?? this.now(), requestId: job.requestId ?? '', ...(job.cronRun === undefined ? {} : { cronRun: job.cronRun }) };
    const jobKey = this.keys.job(job.id);
    const value = encodeJob(record);
    const specHash = requestSpecHash(spec, hasSecrets ? secretEnvDigest(await this.secretDigestKey(), secretEnv) : undefined);
    const nonce = job.nonce ?? randomBytes(12).toString('base64url');
    const compare: Compare[] = [{ key: jobKey, target: 'create' as const, op: '==' as const, value: 0 }];
    const success: Op[] = [{ type: 'put', key: jobKey, value }];
    // The failure branch reads what blocked the create, so telling a resend from a repeat costs no round trip.
    const failure: Op[] = [{ type: 'range', key: jobKey }];
    if (record.requestId !== '') {
      const requestKey = this.keys.request(record.requestId);
      compare.push({ key: requestKey, target: 'create', op: '==', value: 0 });
      success.push({ type: 'put', key: requestKey, value: encodeRequestRecord({ jobId: job.id, specSha256: specHash, nonce, createdAtMs: record.submittedAtMs }) });
      failure.push({ type: 'range', key: requestKey });
    }
    const guardResultsFrom = failure.length;
    if (admission !== undefined) {
      compare.push(...admission.compare);
      success.push(...admission.success);
      failure.push(...admission.failure);
    }
    // The values go with the job or not at all; a resend finds the job and writes nothing.
    if (hasSecrets) success.push({ type: 'put', key: this.keys.secret(job.id), value: encodeSecretEnv(job.id, secretEnv) });
    const reply = await this.kv.txn({ compare, success, failure });
    if (reply.succeeded) return { job: { ...record, revision: reply.revision }, created: true };
    const found = (i: number): KeyValue | undefined => {
      const result = reply.results[i];
      return result?.type === 'range' ? result.kvs[0] : undefined;
    };
    const storedJob = found(0);
    const storedRequest = record.requestId === '' ? undefined : found(1);
    if (storedRequest !== undefined) {
      const request = decodeRequestRecord(storedRequest.value);
      const existing = request.jobId === job.id && storedJob !== undefined ? decodeJob(storedJob.value, storedJob.modRevision) : await this.getJob(request.jobId);
      if (request.nonce !== '' && request.nonce === nonce && existing !== undefined) return { job: existing, created: true };
      // Older records carry no hash: compare with the job's own spec.
      const expected = request.specSha256 !== '' ? request.specSha256 : existing === undefined ? specHash : specSha256(existing.spec);
      if (expected !== specHash) throw new RequestIdReusedError(record.requestId, request.jobId);
      if (existing === undefined) throw new RequestJobGoneError(record.requestId, request.jobId);
      return { job: existing, created: false };
    }
    if (storedJob !== undefined && sameBytes(storedJob.value, value)) return { job: decodeJob(storedJob.value, storedJob.modRevision), created: true };
    if (admission !== undefined && storedJob === undefined) return { guardFailed: reply.results.slice(guardResultsFrom) };
    throw new JobIdTakenError(job.id);
  }

  /**
   * Deletes the request records (`requests/<id>`) created at least `retentionMs` before `nowMs`
   * (default retention `DEFAULT_REQUEST_RETENTION_MS`, 24 h); returns how many it deleted.
   * After that a request id no longer guards against a second job. Paged, each delete guarded by
   * the record's revision (a record rewritten meanwhile is kept); safe to run from several
   * processes at once. Called periodically by the cell's janitor.
   */
  async deleteExpiredRequests(nowMs: number, retentionMs: number): Promise<number> {
    return deleteExpiredRequests(this.kv, this.keys, nowMs, retentionMs);
  }

  /**
   * A job's secret env values (`keys.secret(id)`), or undefined when it has none stored. Called
   * by the agent starting one of the job's tasks; the values must go nowhere but the task's
   * environment (not logs, not files).
   */
  async readSecretEnv(id: JobId): Promise<SecretEnv | undefined> {
    checkId('job.id', id);
    return readSecretEnv(this.kv, this.keys, id);
  }

  /** The cell's secret digest key, read (or created) once per Cell; a failed read is tried again next time. */
  private secretDigestKey(): Promise<Uint8Array> {
    this.digestKey ??= secretDigestKey(this.kv, this.keys).catch((error: unknown) => {
      this.digestKey = undefined;
      throw error;
    });
    return this.digestKey;
  }

  async getJob(id: JobId): Promise<Job | undefined> {
    const { kvs } = await this.kv.range({ key: this.keys.job(id) });
    const kv = kvs[0];
    return kv === undefined ? undefined : decodeJob(kv.value, kv.modRevision);
  }

  /**
   * Stores a new version of a job: a new spec, a new instance count or an earlier version's spec
   * (see job-versions.ts: one transaction guarded by the job's revision, history kept, quota
   * judged when the job grows). Invalid specs and changes of kind, name or namespace throw
   * {@link InvalidRecordError} naming the field; every other outcome is a value.
   */
  async updateJob(request: UpdateJobRequest): Promise<UpdateJobResult> {
    checkId('job.id', request.jobId);
    return updateJob(this.kv, this.keys, request, this.now);
  }

  /** A job's versions, newest first (the current one, then the earlier ones kept); empty for an unknown job. */
  async jobHistory(id: JobId): Promise<JobVersion[]> {
    checkId('job.id', id);
    return readJobHistory(this.kv, this.keys, id);
  }

  /** Sets a job's desired state (e.g. `killed`); returns the updated job, or undefined if unknown. */
  async setJobDesired(id: JobId, desired: DesiredState): Promise<Job | undefined> {
    const key = this.keys.job(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const job = await this.getJob(id);
      if (job === undefined) return undefined;
      if (job.desired === desired) return job;
      const next = { ...job, desired };
      const reply = await this.kv.txn({
        compare: [{ key, target: 'mod', op: '==', value: job.revision }],
        success: [{ type: 'put', key, value: encodeJob(next) }],
        failure: [],
      });
      if (reply.succeeded) return { ...next, revision: reply.revision };
    }
    throw new ContentionError(`job ${id}`, CAS_ATTEMPTS);
  }

  /**
   * Deletes a finished job (succeeded, failed or killed) with its tasks, status and owner record
   * (its request record expires on its own, see {@link deleteExpiredRequests}), exactly once,
   * and only while the job and its status are still at the
   * revisions the caller saw (`jobRevision`, `statusRevision`). The job's claims are pruned from
   * every machine record that still holds one, before or in the same transaction as the task
   * records go, so no claim ever points at a deleted task (cell-state counts such a claim as
   * live). Pruning removes dead claims only, so it only frees resources and can never invalidate
   * another scheduler's fit check. Every write is guarded by mod_revisions, so a resent request
   * or a second caller racing this one changes nothing more. Called by the schedulers' janitor
   * once the job's retention has passed; see `job-deletion.ts` for the steps. Throws
   * {@link ContentionError} when the machines kept changing under the prune.
   */
  async deleteJob(request: DeleteJobRequest): Promise<DeleteJobResult> {
    checkId('job.id', request.jobId);
    const result = await deleteFinishedJob(this.kv, this.keys, request);
    if (result.outcome === 'contended') throw new ContentionError(`deleting job ${request.jobId}`, 16);
    return result;
  }

  async getTask(id: TaskId): Promise<Task | undefined> {
    const { kvs } = await this.kv.range({ key: this.keys.task(id) });
    const kv = kvs[0];
    return kv === undefined ? undefined : decodeTask(kv.value, kv.modRevision);
  }

  /**
   * Applies an observed-state update to a task, only while the task is still at `claimId` (an
   * agent never overwrites a later attempt) and, once terminal, never changes its state again.
   * Returns `stale` when the task moved on, `missing` when it has no record.
   */
  async updateTask(id: TaskId, claimId: string, patch: TaskPatch): Promise<TaskUpdateOutcome> {
    const key = this.keys.task(id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const task = await this.getTask(id);
      if (task === undefined) return 'missing';
      if (task.claimId !== claimId) return 'stale';
      const next = mergeTask(task, patch);
      const reply = await this.kv.txn({
        compare: [{ key, target: 'mod', op: '==', value: task.revision }],
        success: [{ type: 'put', key, value: encodeTask(next) }],
        failure: [],
      });
      if (reply.succeeded) return 'updated';
    }
    throw new ContentionError(`task ${id}`, CAS_ATTEMPTS);
  }

  /**
   * Applies many task updates in one request (agents batch their status reports; schedulers
   * mark a lost machine's tasks). Each update is guarded by the task's revision as the caller
   * knows it (`task.revision`, e.g. from a mirror) and by its claim id, so a later attempt is
   * never overwritten and a terminal state never changes. Updates whose guard failed are retried
   * one by one against the stored record. Returns one outcome per update, in order.
   */
  async updateTasks(updates: readonly { readonly task: Task; readonly patch: TaskPatch }[]): Promise<TaskUpdateOutcome[]> {
    const outcomes: TaskUpdateOutcome[] = new Array(updates.length).fill('updated');
    const chunk = Math.max(1, this.kv.limits.maxTxnOps);
    for (let start = 0; start < updates.length; start += chunk) {
      const part = updates.slice(start, start + chunk);
      const reply = await this.kv.txn({
        compare: [],
        success: part.map(({ task, patch }) => {
          const key = this.keys.task(task.id);
          return {
            type: 'txn' as const,
            txn: {
              compare: [{ key, target: 'mod' as const, op: '==' as const, value: task.revision }],
              success: [{ type: 'put' as const, key, value: encodeTask(mergeTask(task, patch)) }],
              failure: [],
            },
          };
        }),
        failure: [],
      });
      for (const [i, result] of reply.results.entries()) {
        if (result.type === 'txn' && result.succeeded) continue;
        const { task, patch } = part[i] as (typeof part)[number];
        outcomes[start + i] = await this.updateTask(task.id, task.claimId, patch);
      }
    }
    return outcomes;
  }

  // ---- scheduler records ----------------------------------------------------------------

  /**
   * Writes what the owning scheduler says about a job. With `release`, the same transaction
   * also gives up ownership of the job as {@link releaseOwnership} does (the owner record goes
   * only if that lease still holds it): a finished job's last status and its release cost one
   * round trip and one revision, which every watcher of the cell decodes once instead of twice.
   * Idempotent: a resend rewrites the same status and finds the owner record gone.
   */
  async putJobStatus(status: Omit<JobStatus, 'revision'>, options: { readonly release?: KvLease } = {}): Promise<void> {
    const key = this.keys.status(status.jobId);
    const value = encodeJobStatus(status);
    if (options.release === undefined) {
      await this.kv.put(key, value);
      return;
    }
    await this.kv.txn({ compare: [], success: [{ type: 'put', key, value }, { type: 'txn', txn: this.releaseTxn(status.jobId, options.release) }], failure: [] });
  }

  /**
   * {@link putJobStatus} for several jobs at once: one transaction per {@link STATUSES_PER_TXN}
   * of them, each status a put and each release (where given) its own nested transaction, so an
   * owner record held by another lease keeps only that one record. An owning scheduler judging
   * many jobs at a time writes their `running` and final statuses in one round trip and one
   * revision, which every watcher decodes as one batch. Idempotent as putJobStatus is. A failed
   * request throws: the statuses of that chunk and after are then unknown.
   */
  async putJobStatuses(items: readonly { readonly status: Omit<JobStatus, 'revision'>; readonly release?: KvLease }[]): Promise<void> {
    const ops: Op[][] = items.map(({ status, release }) => {
      const put: Op = { type: 'put', key: this.keys.status(status.jobId), value: encodeJobStatus(status) };
      return release === undefined ? [put] : [put, { type: 'txn', txn: this.releaseTxn(status.jobId, release) }];
    });
    const chunk = Math.max(1, Math.min(STATUSES_PER_TXN, Math.floor(this.kv.limits.maxTxnOps / 2)));
    for (let i = 0; i < ops.length; i += chunk) await this.kv.txn({ compare: [], success: ops.slice(i, i + chunk).flat(), failure: [] });
  }

  /**
   * Takes ownership of a job for `scheduler`, bound to its lease, if nobody owns it. Returns
   * whether `scheduler` under `lease` owns the job now.
   *
   * Idempotent: a record already held by this very lease and scheduler name counts as ours. That
   * is what a resent create finds (etcd3 retries a call whose reply was lost after etcd applied
   * it); answering false there would leave the job owned by an instance that never schedules it.
   * The failed branch reads the record in the same transaction: no extra round trip.
   */
  async acquireOwnership(job: JobId, scheduler: string, kind: string, lease: KvLease): Promise<boolean> {
    const [taken] = await this.acquireOwnerships([job], scheduler, kind, lease);
    return taken === true;
  }

  /**
   * {@link acquireOwnership} for several jobs: one transaction per {@link OWNERSHIPS_PER_TXN}
   * jobs, each job's create an independent nested transaction (one job taken by someone else
   * does not stop the others). Returns, per job in order, whether `scheduler` under `lease` owns
   * it now. Idempotent as acquireOwnership is. A failed request throws: the jobs of that
   * chunk and after are then unknown (their creates may have applied; the mirror will say).
   */
  async acquireOwnerships(jobs: readonly JobId[], scheduler: string, kind: string, lease: KvLease): Promise<boolean[]> {
    const value = encodeOwner({ scheduler, kind, sinceMs: this.now() });
    const taken: boolean[] = [];
    const chunk = Math.max(1, Math.min(OWNERSHIPS_PER_TXN, Math.floor(this.kv.limits.maxTxnOps / 3)));
    for (let start = 0; start < jobs.length; start += chunk) {
      const part = jobs.slice(start, start + chunk);
      const create = (job: JobId): TxnRequest => {
        const key = this.keys.owner(job);
        return { compare: [{ key, target: 'create', op: '==', value: 0 }], success: [{ type: 'put', key, value, lease: lease.id }], failure: [{ type: 'range', key }] };
      };
      // One job alone needs no nesting (and reads as it always did).
      const reply = part.length === 1 ? await this.kv.txn(create(part[0] as JobId)) : await this.kv.txn({ compare: [], success: part.map((job) => ({ type: 'txn' as const, txn: create(job) })), failure: [] });
      const outcomes = part.length === 1 ? [{ type: 'txn' as const, succeeded: reply.succeeded, results: reply.results }] : reply.results;
      for (const [i, job] of part.entries()) taken.push(ownedBy(job, outcomes[i], scheduler, lease));
    }
    return taken;
  }

  /**
   * Gives up ownership of a job, if `lease` still holds it. One round trip: the delete is
   * guarded by the record's lease (etcd's lease compare), so a record of another instance is
   * never deleted, and a resent delete (or a release after the lease ended) changes nothing.
   */
  async releaseOwnership(job: JobId, lease: KvLease): Promise<void> {
    await this.kv.txn(this.releaseTxn(job, lease));
  }

  /** Deletes `owners/<job>` if it is bound to `lease`. */
  private releaseTxn(job: JobId, lease: KvLease): TxnRequest {
    const key = this.keys.owner(job);
    return { compare: [{ key, target: 'lease', op: '==', value: lease.id }], success: [{ type: 'delete', key }], failure: [] };
  }

  /** Publishes a scheduler's metrics under `schedulers/<name>`, bound to its lease. */
  async publishSchedulerStats(stats: SchedulerStats, lease?: KvLease): Promise<void> {
    checkId('scheduler.name', stats.name);
    await this.kv.put(this.keys.scheduler(stats.name), encodeSchedulerStats(stats), lease === undefined ? {} : { lease: lease.id });
  }

  /** For logs: a child logger of this cell's. */
  child(bindings: Record<string, unknown>): Logger {
    return this.logger.child(bindings);
  }
}
