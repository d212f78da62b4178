/**
 * `commit(transaction)`: Omega's optimistic commit of claims against the shared cell state.
 *
 * One claim group per machine (all claims of a transaction on one machine become one write of
 * the machine key). Each group is guarded by the machine's sequence number (its key's
 * mod_revision at the snapshot) and by the mod_revision of every task it places or evicts, so a
 * commit that is sent twice (lost reply, client retry) can never place a task twice: the second
 * send fails its task guard and the failure branch shows the task already carries our claim id.
 *
 * - incremental: one etcd request holding one nested transaction per group; groups succeed or
 *   fail independently (one round trip when nothing conflicts).
 * - all-or-nothing: one flat transaction guarding every group; on failure nothing was written.
 * - resource-fit: a group whose machine changed is re-checked against the machine as the failed
 *   request read it (same fit code as the scheduler), and retried here if it still fits; only
 *   real misfits come back as conflicts. Those retries are counted as spurious.
 * - sequence-numbers: a group whose machine changed conflicts.
 *
 * Rounds are bounded; a transaction larger than the server's limits is split (incremental) or
 * refused with {@link TransactionTooLargeError} (all-or-nothing).
 *
 * `commitMany(transactions)`: several incremental transactions made on one PrivateCell (one
 * scheduler placing several jobs at once) go out as one commit: their claims are grouped per
 * machine together (one write per machine for all of them), so N small jobs cost one round trip
 * and one machine write instead of N. Claims stay independent as in any incremental commit, so
 * each transaction's result is exactly what committing it alone against the same store state
 * would have judged claim by claim; the results are split back per transaction.
 */
import type { Logger } from 'pino';
import { knownLiveClaims, type CellSnapshot } from './cell-snapshot.js';
import { decodeMachine, decodeTask, encodeMachine, encodeTask } from './codec.js';
import type { CellKeys } from './keys.js';
import { KvUnavailableError, type Compare, type KeyValue, type KvStore, type Op, type OpResult, type TxnRequest } from './kv.js';
import { checkResources, claimsShortage, fitInOrder, isClaimLive, resourcesProblem, type TaskLookup } from './resources.js';
import {
  acceptsPlacements,
  CONFLICT_MODES,
  TRANSACTION_MODES,
  isTerminal,
  parseTaskId,
  type Claim,
  type ClaimId,
  type ConflictMode,
  type Machine,
  type MachineId,
  type Task,
  type TaskId,
  type TransactionMode,
} from './types.js';

/** A claim to preempt, with the mod_revision of its task's record in the snapshot. */
export interface Eviction {
  readonly claim: Claim;
  readonly taskRevision: number;
}

/** One claim of a transaction (Omega's ClaimDelta), with what the snapshot said when it was made. */
export interface ClaimDelta {
  readonly claim: Claim;
  /** The machine's sequence number in the snapshot the claim was made on. */
  readonly machineSeq: number;
  /** The task key's mod_revision in that snapshot (0: no record yet). */
  readonly taskRevision: number;
  /** Written to the task record: how many earlier attempts of the task were replaced. */
  readonly restarts: number;
  /** Written to the task record: the job version the attempt runs (absent: not recorded). */
  readonly version?: number;
  /** Lower-priority claims on the same machine removed (and their tasks killed) with this claim. */
  readonly evicts: readonly Eviction[];
}

export interface Transaction {
  readonly deltas: readonly ClaimDelta[];
  readonly conflictMode: ConflictMode;
  readonly transactionMode: TransactionMode;
  /** The snapshot the claims were made on: the base of the machine records written. */
  readonly base: CellSnapshot;
}

export type ConflictReason =
  /** sequence-numbers: the machine changed after the snapshot. */
  | 'machine-changed'
  /** The machine, as it is now, cannot fit the claim. */
  | 'no-fit'
  /** The task (or a task to evict) was changed by someone else, e.g. placed by another scheduler. */
  | 'task-changed'
  | 'machine-gone'
  /** Its agent made it unschedulable, or an operator cordoned it. */
  | 'machine-unschedulable'
  /** all-or-nothing: this claim was fine but another claim of the transaction conflicted. */
  | 'gang'
  /** The store stayed unavailable or the claim kept conflicting for every allowed round. */
  | 'retries-exhausted';

export interface Conflict {
  readonly delta: ClaimDelta;
  readonly reason: ConflictReason;
}

/** `committed` and `conflicted` partition the transaction's deltas. */
export interface CommitResult {
  readonly committed: readonly ClaimDelta[];
  readonly conflicted: readonly Conflict[];
  /** Store revision after the last write of this commit (the snapshot's when nothing was written). */
  readonly revision: number;
  readonly spuriousRetries: number;
  readonly roundTrips: number;
}

/** Counters of everything commits did, cumulative per Committer. */
export interface CommitCounters {
  transactions: number;
  /** Transactions with at least one conflicted claim (Omega's failed transaction). */
  transactionsFailed: number;
  claimsCommitted: number;
  claimsConflicted: number;
  /** resource-fit retries of groups whose machine changed but still fit. */
  spuriousRetries: number;
  roundTrips: number;
  bytesWritten: number;
}

/** A transaction was malformed; nothing was written. */
export class InvalidTransactionError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'InvalidTransactionError';
  }
}

/** An all-or-nothing transaction exceeds what the server accepts in one request; nothing was written. */
export class TransactionTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransactionTooLargeError';
  }
}

export interface CommitterOptions {
  /** The freshest view of the cell (a mirror's latest snapshot), used to judge claim liveness on re-checks. */
  readonly latest?: () => CellSnapshot;
  /** Milliseconds since the epoch, written as `placedAtMs` (virtual in the simulator). */
  readonly now?: () => number;
  /** Most rounds (requests) one commit may take; default 8. */
  readonly maxRounds?: number;
  readonly logger?: Logger;
}

/** A per-machine group of deltas and what is known of the machine's current state. */
interface Group {
  readonly machineId: MachineId;
  seq: number;
  /** Machine record as of `seq`. */
  machine: Machine;
  deltas: ClaimDelta[];
  /** Current record (and revision) of every task this group places or evicts. */
  readonly tasks: Map<TaskId, { revision: number; task: Task | undefined }>;
  /** Deltas waiting for a later round because of the server's per-transaction limits. */
  later: ClaimDelta[];
  /** Bytes of keys and values the group's last request wrote. */
  bytes: number;
  /** The transaction's base snapshot, for claim liveness where nothing fresher is known. */
  readonly base: CellSnapshot;
  /**
   * The live claims of `machine` as the last {@link Committer.refit} judged them, for the
   * request built right after it (nothing can change in between: no await separates them), so
   * each claim's task is looked up once per round, not once per check. Only set when no delta
   * of the group evicts; cleared by the request that uses it.
   */
  kept?: { readonly machine: Machine; readonly claims: readonly Claim[] } | undefined;
}

/**
 * What one group's reply means: committed, or some conflicts with the group's remaining deltas
 * (`g.deltas`, possibly none) worth another round.
 */
type Verdict =
  | { readonly kind: 'committed'; readonly deltas: ClaimDelta[] }
  | { readonly kind: 'failed'; readonly conflicts: Conflict[]; readonly spurious: boolean };

export class Committer {
  readonly counters: CommitCounters = {
    transactions: 0,
    transactionsFailed: 0,
    claimsCommitted: 0,
    claimsConflicted: 0,
    spuriousRetries: 0,
    roundTrips: 0,
    bytesWritten: 0,
  };
  private readonly maxRounds: number;
  private readonly now: () => number;

  constructor(
    private readonly kv: KvStore,
    private readonly keys: CellKeys,
    private readonly options: CommitterOptions = {},
  ) {
    this.maxRounds = options.maxRounds ?? 8;
    this.now = options.now ?? Date.now;
  }

  /**
   * Commits the transaction's claims per its modes. Conflicts are values in the result; throws
   * only for a malformed transaction ({@link InvalidTransactionError}, {@link InvalidRecordError}),
   * an all-or-nothing one over the server's limits ({@link TransactionTooLargeError}), or a store
   * failure other than unavailability. Safe to call concurrently.
   */
  async commit(tx: Transaction): Promise<CommitResult> {
    this.checkModes(tx, '');
    const groups = this.validate(tx.deltas, tx.base, (i) => `deltas[${i}]`);
    const outcome = await this.run(groups, tx);
    this.count([outcome.committed], [outcome.conflicted], outcome.spurious.length, outcome.roundTrips);
    return { committed: outcome.committed, conflicted: outcome.conflicted, revision: outcome.revision, spuriousRetries: outcome.spurious.length, roundTrips: outcome.roundTrips };
  }

  /**
   * Commits several incremental transactions made on the same base snapshot with the same
   * conflict mode (one PrivateCell's claims for several jobs) in one commit, and returns one
   * result per transaction, in order. Each result partitions its own transaction's deltas, as
   * {@link commit} would; `revision` and `roundTrips` are the shared commit's;
   * `spuriousRetries` counts the machine-group retries that held claims of that transaction.
   * The counters count each transaction as one (so the conflict fraction stays per job).
   *
   * Throws {@link InvalidTransactionError} (nothing written) when the list is empty, when one
   * is all-or-nothing (a gang is committed on its own), when the bases or conflict modes differ,
   * or when a task or claim appears in two of them; otherwise as {@link commit}.
   */
  async commitMany(transactions: readonly Transaction[]): Promise<CommitResult[]> {
    const first = transactions[0];
    if (first === undefined) throw new InvalidTransactionError('transactions', 'no transaction to commit');
    if (transactions.length === 1) return [await this.commit(first)];
    const owner = new Map<ClaimDelta, number>();
    const deltas: ClaimDelta[] = [];
    // Where each delta came from, named only in an error (a name built per delta cost more than the check).
    const from: number[] = [];
    transactions.forEach((tx, t) => {
      this.checkModes(tx, `transactions[${t}].`);
      if (tx.transactionMode !== 'incremental') {
        throw new InvalidTransactionError(`transactions[${t}].transactionMode`, 'must be incremental to share a commit with other transactions (commit an all-or-nothing one alone)');
      }
      if (tx.conflictMode !== first.conflictMode) {
        throw new InvalidTransactionError(`transactions[${t}].conflictMode`, `must be the first transaction's (${first.conflictMode}), got ${tx.conflictMode}`);
      }
      if (tx.base !== first.base) throw new InvalidTransactionError(`transactions[${t}].base`, 'must be the same snapshot as the first transaction\'s (claims made on one PrivateCell)');
      if (tx.deltas.length === 0) throw new InvalidTransactionError(`transactions[${t}].deltas`, 'transaction is empty');
      tx.deltas.forEach((d, i) => {
        owner.set(d, t);
        deltas.push(d);
        from.push(t, i);
      });
    });
    const groups = this.validate(deltas, first.base, (i) => (from[2 * i] === undefined ? `deltas[${i}]` : `transactions[${from[2 * i]}].deltas[${from[2 * i + 1]}]`));
    const outcome = await this.run(groups, first);
    const committed = transactions.map((): ClaimDelta[] => []);
    const conflicted = transactions.map((): Conflict[] => []);
    const spurious = transactions.map(() => 0);
    for (const d of outcome.committed) committed[owner.get(d) as number]?.push(d);
    for (const c of outcome.conflicted) conflicted[owner.get(c.delta) as number]?.push(c);
    for (const retried of outcome.spurious) for (const t of new Set(retried.map((d) => owner.get(d) as number))) spurious[t] = (spurious[t] ?? 0) + 1;
    this.count(committed, conflicted, outcome.spurious.length, outcome.roundTrips);
    return transactions.map((_, t) => ({
      committed: committed[t] ?? [],
      conflicted: conflicted[t] ?? [],
      revision: outcome.revision,
      spuriousRetries: spurious[t] ?? 0,
      roundTrips: outcome.roundTrips,
    }));
  }

  /** Adds one commit's outcome to the counters: each transaction (per job) counted as one. */
  private count(committed: readonly (readonly ClaimDelta[])[], conflicted: readonly (readonly Conflict[])[], spurious: number, trips: number): void {
    for (let t = 0; t < committed.length; t++) {
      this.counters.transactions++;
      if ((conflicted[t]?.length ?? 0) > 0) this.counters.transactionsFailed++;
      this.counters.claimsCommitted += committed[t]?.length ?? 0;
      this.counters.claimsConflicted += conflicted[t]?.length ?? 0;
    }
    this.counters.spuriousRetries += spurious;
    this.counters.roundTrips += trips;
  }

  /**
   * The commit's rounds over validated groups, in `tx`'s modes (its deltas are not read: the
   * groups hold them). `spurious` lists, per resource-fit retry of a group, the deltas it retried.
   */
  private async run(groups: Group[], tx: Pick<Transaction, 'conflictMode' | 'transactionMode' | 'base'>): Promise<{ committed: ClaimDelta[]; conflicted: Conflict[]; revision: number; spurious: ClaimDelta[][]; roundTrips: number }> {
    const committed: ClaimDelta[] = [];
    const conflicted: Conflict[] = [];
    let revision = tx.base.revision;
    const spurious: ClaimDelta[][] = [];
    let trips = 0;
    let pending = groups;

    for (let round = 0; pending.length > 0; round++) {
      if (round >= this.maxRounds) {
        for (const g of pending) for (const d of [...g.deltas, ...g.later]) conflicted.push({ delta: d, reason: 'retries-exhausted' });
        break;
      }
      // Never send what does not fit as known here: the same check the scheduler made, so a
      // caller's mistake cannot over-commit a machine.
      const misfits = pending.flatMap((g) => this.refit(g));
      if (misfits.length > 0) {
        if (tx.transactionMode === 'all-or-nothing') {
          const gang = pending.flatMap((g) => g.deltas.splice(0).map((delta): Conflict => ({ delta, reason: 'gang' })));
          conflicted.push(...misfits, ...gang);
          break;
        }
        conflicted.push(...misfits);
        pending = pending.filter((g) => g.deltas.length > 0);
        if (pending.length === 0) break;
      }
      const requests = tx.transactionMode === 'all-or-nothing' ? [this.flatRequest(pending)] : this.nestedRequests(pending);
      const next: Group[] = [];
      for (const { request, groups: sent } of requests) {
        trips++;
        let results: readonly OpResult[];
        let succeeded: boolean;
        try {
          const reply = await this.kv.txn(request);
          revision = Math.max(revision, reply.revision);
          results = reply.results;
          succeeded = reply.succeeded;
        } catch (error) {
          // Unknown whether it applied: send again; the task guards make that safe.
          if (!(error instanceof KvUnavailableError)) throw error;
          next.push(...sent);
          continue;
        }
        const verdicts =
          tx.transactionMode === 'all-or-nothing'
            ? this.judgeFlat(sent, succeeded, results, tx.conflictMode)
            : sent.map((g, i) => this.judgeNested(g, results[i], tx.conflictMode));
        for (let i = 0; i < sent.length; i++) {
          const g = sent[i] as Group;
          const v = verdicts[i] as Verdict;
          if (v.kind === 'committed') {
            committed.push(...v.deltas);
            this.counters.bytesWritten += g.bytes;
            if (g.later.length > 0) {
              // The rest of an over-limit group goes on from the record just written.
              g.machine = { ...g.machine, claims: this.newClaims(g, this.lookupFor(g)), seq: revision };
              g.seq = revision;
              g.deltas = g.later.splice(0, g.later.length);
              next.push(g);
            }
          } else {
            conflicted.push(...v.conflicts);
            if (v.spurious) spurious.push([...g.deltas]);
            if (g.deltas.length > 0 || g.later.length > 0) {
              if (g.deltas.length === 0) g.deltas = g.later.splice(0, g.later.length);
              next.push(g);
            }
          }
        }
      }
      pending = next;
    }
    return { committed, conflicted, revision, spurious, roundTrips: trips };
  }

  // ---- validation and grouping ----------------------------------------------------------

  /** Refuses unknown modes; `prefix` names the transaction in a list (`transactions[2].`). */
  private checkModes(tx: Transaction, prefix: string): void {
    if (!CONFLICT_MODES.includes(tx.conflictMode)) {
      throw new InvalidTransactionError(`${prefix}conflictMode`, `must be one of ${CONFLICT_MODES.join(', ')}, got ${String(tx.conflictMode)}`);
    }
    if (!TRANSACTION_MODES.includes(tx.transactionMode)) {
      throw new InvalidTransactionError(`${prefix}transactionMode`, `must be one of ${TRANSACTION_MODES.join(', ')}, got ${String(tx.transactionMode)}`);
    }
  }

  /** Checks every delta against `base` and groups them per machine; `fieldOf(i)` names delta i in errors. */
  private validate(deltas: readonly ClaimDelta[], base: CellSnapshot, fieldOf: (i: number) => string): Group[] {
    if (deltas.length === 0) throw new InvalidTransactionError('deltas', 'transaction is empty');
    const tasks = new Set<TaskId>();
    const claims = new Set<ClaimId>();
    const groups = new Map<MachineId, Group>();
    deltas.forEach((d, i) => {
      const c = d.claim;
      // Checked first, named when one fails: the field names are built only for an error.
      if (resourcesProblem(c.resources, { positive: true }) !== undefined) checkResources(`${fieldOf(i)}.claim.resources`, c.resources, { positive: true });
      if (parseTaskId(c.taskId) === undefined) throw new InvalidTransactionError(`${fieldOf(i)}.claim.taskId`, `must be "<job>/<index>", got ${JSON.stringify(c.taskId)}`);
      if (!Number.isSafeInteger(c.attempt) || c.attempt < 1) throw new InvalidTransactionError(`${fieldOf(i)}.claim.attempt`, `must be an integer >= 1, got ${c.attempt}`);
      if (c.id.length === 0) throw new InvalidTransactionError(`${fieldOf(i)}.claim.id`, 'must not be empty');
      const machine = base.machine(c.machineId);
      if (machine === undefined) throw new InvalidTransactionError(`${fieldOf(i)}.claim.machineId`, `unknown machine ${JSON.stringify(c.machineId)}`);
      for (let j = -1; j < d.evicts.length; j++) {
        const id = j < 0 ? c.taskId : (d.evicts[j] as Eviction).claim.taskId;
        if (tasks.has(id)) throw new InvalidTransactionError(`${fieldOf(i)}.${j < 0 ? 'claim.taskId' : `evicts[${j}].claim.taskId`}`, `task ${id} appears twice in the transaction`);
        tasks.add(id);
      }
      for (let j = -1; j < d.evicts.length; j++) {
        const id = j < 0 ? c.id : (d.evicts[j] as Eviction).claim.id;
        if (claims.has(id)) throw new InvalidTransactionError(`${fieldOf(i)}.${j < 0 ? 'claim.id' : `evicts[${j}].claim.id`}`, `claim ${id} appears twice in the transaction`);
        claims.add(id);
      }
      d.evicts.forEach((e, j) => {
        if (e.claim.machineId !== c.machineId) {
          throw new InvalidTransactionError(`${fieldOf(i)}.evicts[${j}].claim.machineId`, `evicted claim is on ${e.claim.machineId}, not on the claim's machine ${c.machineId}`);
        }
      });
      let g = groups.get(c.machineId);
      if (g === undefined) {
        if (machine.seq !== d.machineSeq) {
          throw new InvalidTransactionError(`${fieldOf(i)}.machineSeq`, `the base snapshot has machine ${c.machineId} at ${machine.seq}, the claim says ${d.machineSeq}: claims must be made on the transaction's base`);
        }
        g = { machineId: c.machineId, seq: d.machineSeq, machine, deltas: [], tasks: new Map(), later: [], bytes: 0, base: base };
        groups.set(c.machineId, g);
      } else if (g.seq !== d.machineSeq) {
        throw new InvalidTransactionError(`${fieldOf(i)}.machineSeq`, `claims on machine ${c.machineId} were made at different sequence numbers (${g.seq}, ${d.machineSeq})`);
      }
      g.deltas.push(d);
      g.tasks.set(c.taskId, { revision: d.taskRevision, task: base.task(c.taskId) });
      for (const e of d.evicts) g.tasks.set(e.claim.taskId, { revision: e.taskRevision, task: base.task(e.claim.taskId) });
    });
    return [...groups.values()];
  }

  // ---- building requests ------------------------------------------------------------------

  /** Task records as freshly as known: read by this commit, else the latest view, else the base. */
  private lookupFor(g: Group, latest: CellSnapshot | undefined = this.options.latest?.()): TaskLookup {
    return (id) => {
      const known = g.tasks.get(id);
      if (known?.task !== undefined) return known.task;
      return latest?.task(id) ?? g.base.task(id);
    };
  }

  /** The machine's claims after this group: live ones kept, evicted ones removed, new ones added. */
  private newClaims(g: Group, lookup: TaskLookup): Claim[] {
    const evicted = new Set<ClaimId>();
    for (const d of g.deltas) for (const e of d.evicts) evicted.add(e.claim.id);
    const kept = g.machine.claims.filter((c) => !evicted.has(c.id) && isClaimLive(c, lookup));
    return [...kept, ...g.deltas.map((d) => d.claim)];
  }

  /** Whether the group fits on its machine as known: the same fit code the PrivateCell uses. */
  private fitCheck(g: Group, lookup: TaskLookup): ConflictReason | undefined {
    if (!acceptsPlacements(g.machine)) return 'machine-unschedulable';
    return claimsShortage(g.machine.capacity, this.newClaims(g, lookup)) === undefined ? undefined : 'no-fit';
  }

  private groupOps(g: Group): { compare: Compare[]; success: Op[]; failure: Op[]; bytes: number } {
    const now = this.now();
    const machineKey = this.keys.machine(g.machineId);
    const kept = g.kept;
    g.kept = undefined;
    const claims = kept !== undefined && kept.machine === g.machine ? [...kept.claims, ...g.deltas.map((d) => d.claim)] : this.newClaims(g, this.lookupFor(g));
    const machineValue = encodeMachine({ ...g.machine, claims });
    const compare: Compare[] = [{ key: machineKey, target: 'mod', op: '==', value: g.seq }];
    const success: Op[] = [{ type: 'put', key: machineKey, value: machineValue }];
    const failure: Op[] = [{ type: 'range', key: machineKey }];
    let bytes = machineKey.length + machineValue.length;
    const guardTask = (id: TaskId, value: Uint8Array): void => {
      const key = this.keys.task(id);
      compare.push({ key, target: 'mod', op: '==', value: g.tasks.get(id)?.revision ?? 0 });
      success.push({ type: 'put', key, value });
      failure.push({ type: 'range', key });
      bytes += key.length + value.length;
    };
    for (const d of g.deltas) {
      const c = d.claim;
      const parsed = parseTaskId(c.taskId) as { jobId: Task['jobId']; index: number };
      guardTask(
        c.taskId,
        encodeTask({
          jobId: parsed.jobId,
          index: parsed.index,
          attempt: c.attempt,
          claimId: c.id,
          machineId: c.machineId,
          scheduler: c.scheduler,
          state: 'placed',
          reason: '',
          message: '',
          signal: '',
          pid: 0,
          placedAtMs: now,
          startedAtMs: 0,
          finishedAtMs: 0,
          cpuSeconds: 0,
          peakMemoryBytes: 0,
          resources: c.resources,
          priority: c.priority,
          restarts: d.restarts,
          notBeforeMs: 0,
          ...(d.version === undefined ? {} : { version: d.version }),
        }),
      );
      for (const e of d.evicts) {
        const victim = this.liveVictim(g, e);
        if (victim !== undefined) guardTask(e.claim.taskId, encodeTask({ ...victim, state: 'killed', reason: 'preempted', message: '', finishedAtMs: now }));
      }
    }
    g.bytes = bytes;
    return { compare, success, failure, bytes };
  }

  /**
   * The victim's task record when the eviction still has to kill it. A victim that ended or moved
   * on meanwhile needs no write (its claim is dead and is dropped from the machine anyway), and
   * rewriting it would overwrite how it really ended.
   */
  private liveVictim(g: Group, e: Eviction): Task | undefined {
    const task = g.tasks.get(e.claim.taskId)?.task;
    if (task === undefined || task.attempt !== e.claim.attempt || task.claimId !== e.claim.id || isTerminal(task.state)) return undefined;
    return task;
  }

  /**
   * Keeps in the group the deltas that fit in one nested transaction (machine write + tasks +
   * evictions) next to at least one sibling slot: etcd gives a nested transaction the op budget
   * its parent leaves (`--max-txn-ops` minus the parent's own op count).
   */
  private splitForLimits(g: Group): void {
    const max = this.kv.limits.maxTxnOps - 1;
    let ops = 1;
    let keep = 0;
    for (const d of g.deltas) {
      const need = 1 + d.evicts.length;
      if (ops + need > max) break;
      ops += need;
      keep++;
    }
    if (keep === 0) {
      throw new InvalidTransactionError('deltas', `one claim with ${g.deltas[0]?.evicts.length ?? 0} evictions needs more operations than the server allows in a transaction (${max})`);
    }
    if (keep < g.deltas.length) g.later.unshift(...g.deltas.splice(keep));
  }

  private nestedRequests(groups: Group[]): { request: TxnRequest; groups: Group[] }[] {
    const { maxTxnOps, maxRequestBytes } = this.kv.limits;
    const out: { request: TxnRequest; groups: Group[] }[] = [];
    let ops: Op[] = [];
    let sent: Group[] = [];
    let bytes = 0;
    /** Widest nested transaction in the request: with `ops.length` it must stay within the budget. */
    let widest = 0;
    const flush = (): void => {
      if (ops.length === 0) return;
      out.push({ request: { compare: [], success: ops, failure: [] }, groups: sent });
      ops = [];
      sent = [];
      bytes = 0;
      widest = 0;
    };
    for (const g of groups) {
      this.splitForLimits(g);
      const built = this.groupOps(g);
      // Leave room for protobuf framing: ~64 bytes per op beyond keys and values.
      const size = built.bytes + 64 * (built.compare.length + built.success.length + built.failure.length);
      if (size > maxRequestBytes * 0.9) {
        throw new InvalidTransactionError('deltas', `the claims on machine ${g.machineId} need ${size} bytes, over the server's request limit of ${maxRequestBytes}`);
      }
      const width = built.compare.length;
      if (ops.length + 1 + Math.max(widest, width) > maxTxnOps || bytes + size > maxRequestBytes * 0.9) flush();
      ops.push({ type: 'txn', txn: { compare: built.compare, success: built.success, failure: built.failure } });
      sent.push(g);
      bytes += size;
      widest = Math.max(widest, width);
    }
    flush();
    return out;
  }

  private flatRequest(groups: Group[]): { request: TxnRequest; groups: Group[] } {
    const compare: Compare[] = [];
    const success: Op[] = [];
    const failure: Op[] = [];
    let bytes = 0;
    for (const g of groups) {
      const built = this.groupOps(g);
      compare.push(...built.compare);
      success.push(...built.success);
      failure.push(...built.failure);
      bytes += built.bytes + 64 * (built.compare.length + built.success.length + built.failure.length);
    }
    const { maxTxnOps, maxRequestBytes } = this.kv.limits;
    if (compare.length > maxTxnOps) {
      throw new TransactionTooLargeError(
        `all-or-nothing transaction needs ${compare.length} operations, the server allows ${maxTxnOps} per transaction (etcd --max-txn-ops): raise the limit or commit incrementally`,
      );
    }
    if (bytes > maxRequestBytes * 0.9) {
      throw new TransactionTooLargeError(
        `all-or-nothing transaction needs about ${bytes} bytes, the server accepts ${maxRequestBytes} per request (etcd --max-request-bytes)`,
      );
    }
    return { request: { compare, success, failure }, groups };
  }

  // ---- judging replies ------------------------------------------------------------------

  private judgeNested(g: Group, result: OpResult | undefined, mode: ConflictMode): Verdict {
    if (result === undefined || result.type !== 'txn') throw new Error('store returned no result for a nested transaction');
    if (result.succeeded) return { kind: 'committed', deltas: g.deltas };
    return this.judgeFailure(g, result.results, 0, mode);
  }

  /**
   * all-or-nothing: the flat transaction applied whole or not at all. After a failure, any real
   * conflict fails every claim (the others as `gang`); otherwise all groups go round again.
   */

  private judgeFlat(groups: Group[], succeeded: boolean, results: readonly OpResult[], mode: ConflictMode): Verdict[] {
    if (succeeded) return groups.map((g) => ({ kind: 'committed', deltas: g.deltas }));
    let offset = 0;
    const verdicts = groups.map((g) => {
      const width = 1 + this.guardedTasks(g).length;
      const v = this.judgeFailure(g, results, offset, mode);
      offset += width;
      return v;
    });
    // Every group already committed: an earlier send applied and its reply was lost.
    if (verdicts.every((v) => v.kind === 'committed')) return verdicts;
    if (verdicts.some((v) => v.kind === 'failed' && v.conflicts.length > 0)) {
      return groups.map((g, i) => {
        const v = verdicts[i] as Verdict;
        const own = v.kind === 'failed' ? v.conflicts : [];
        const rest = (v.kind === 'committed' ? v.deltas : g.deltas).map((delta) => ({ delta, reason: 'gang' as const }));
        g.deltas = [];
        return { kind: 'failed', conflicts: [...own, ...rest], spurious: false };
      });
    }
    // Nothing conflicts for real: all groups go round again together.
    return verdicts.map((v) => (v.kind === 'committed' ? { kind: 'failed', conflicts: [], spurious: false } : v));
  }

  /**
   * Reads the failure branch's ranges for one group (machine first, then its tasks in the order
   * groupOps guarded them) and decides: already committed, conflicted, or worth retrying.
   * Updates the group's known state for the retry.
   */
  private judgeFailure(g: Group, results: readonly OpResult[], offset: number, mode: ConflictMode): Verdict {
    const read = (i: number): KeyValue | undefined => {
      const r = results[offset + i];
      if (r === undefined || r.type !== 'range') throw new Error('store returned no range result in a failure branch');
      return r.kvs[0];
    };
    const machineKv = read(0);
    const order = this.guardedTasks(g);
    const fresh = new Map<TaskId, KeyValue | undefined>(order.map((id, i) => [id, read(1 + i)]));

    // Lost reply: our own tasks already carry our claims, so this group committed earlier.
    const own = g.deltas.map((d) => fresh.get(d.claim.taskId));
    if (own.every((kv, i) => kv !== undefined && decodeTask(kv.value, kv.modRevision).claimId === g.deltas[i]?.claim.id)) {
      return { kind: 'committed', deltas: g.deltas };
    }
    if (machineKv === undefined) {
      const conflicts = g.deltas.map((delta): Conflict => ({ delta, reason: 'machine-gone' }));
      g.deltas = [];
      return { kind: 'failed', conflicts, spurious: false };
    }

    const conflicts: Conflict[] = [];
    const keep: ClaimDelta[] = [];
    for (const d of g.deltas) {
      const kv = fresh.get(d.claim.taskId);
      if ((kv?.modRevision ?? 0) !== d.taskRevision) conflicts.push({ delta: d, reason: 'task-changed' });
      else keep.push(d);
    }
    // Refresh what we know of every guarded task; an evicted task that ended or moved on needs
    // no eviction any more (its claim is dead), one that is still live is evicted at its new revision.
    for (const [id, kv] of fresh) g.tasks.set(id, { revision: kv?.modRevision ?? 0, task: kv === undefined ? undefined : decodeTask(kv.value, kv.modRevision) });

    const machineChanged = machineKv.modRevision !== g.seq;
    if (machineChanged && mode === 'sequence-numbers') {
      g.deltas = [];
      return { kind: 'failed', conflicts: [...conflicts, ...keep.map((delta) => ({ delta, reason: 'machine-changed' as const }))], spurious: false };
    }
    if (machineChanged) {
      g.machine = decodeMachine(machineKv.value, machineKv.modRevision);
      g.seq = machineKv.modRevision;
    }
    g.deltas = keep;
    conflicts.push(...this.refit(g));
    return { kind: 'failed', conflicts, spurious: machineChanged && g.deltas.length > 0 };
  }

  /**
   * Keeps, in order, the group's deltas that fit on its machine as known now; returns the others
   * as conflicts. The same fit code as the PrivateCell's.
   */
  private refit(g: Group): Conflict[] {
    const latest = this.options.latest?.();
    const lookup = this.lookupFor(g, latest);
    const candidates = g.deltas;
    const conflicts: Conflict[] = [];
    g.deltas = [];
    g.kept = undefined;
    if (candidates.every((d) => d.evicts.length === 0)) return this.refitWithoutEvictions(g, candidates, lookup, latest);
    for (const d of candidates) {
      g.deltas.push(d);
      const misfit = this.fitCheck(g, lookup);
      if (misfit !== undefined) {
        g.deltas.pop();
        conflicts.push({ delta: d, reason: misfit });
      }
    }
    return conflicts;
  }

  /**
   * {@link refit} when no delta evicts: the machine's live claims stay the same whatever deltas
   * are kept, so they are judged once and the candidates tried in order on their running sum
   * ({@link fitInOrder}: the same verdicts as {@link fitCheck}'s recount per candidate), for one
   * liveness lookup per claim instead of one per claim per candidate.
   */
  private refitWithoutEvictions(g: Group, candidates: readonly ClaimDelta[], lookup: TaskLookup, latest: CellSnapshot | undefined): Conflict[] {
    if (!acceptsPlacements(g.machine)) return candidates.map((delta): Conflict => ({ delta, reason: 'machine-unschedulable' }));
    const kept = this.liveAsViewed(g, latest) ?? g.machine.claims.filter((c) => isClaimLive(c, lookup));
    const fits = fitInOrder(
      g.machine.capacity,
      kept,
      candidates.map((d) => d.claim.resources),
    );
    const conflicts: Conflict[] = [];
    candidates.forEach((d, i) => {
      if (fits[i] === true) g.deltas.push(d);
      else conflicts.push({ delta: d, reason: 'no-fit' });
    });
    g.kept = { machine: g.machine, claims: kept };
    return conflicts;
  }

  /**
   * The live claims of the group's machine as `lookupFor(g, latest)` judges them, taken from the
   * view it asks after the group's own tasks (`latest`, else the base) when that view holds this
   * very machine record and the task of every claim on it (see `knownLiveClaims`: judged when
   * the placement looked at the machine, so usually not again here), and no claim is of a task
   * the group read itself (the lookup answers those from the group first). Undefined otherwise:
   * the caller judges each claim through the lookup.
   */
  private liveAsViewed(g: Group, latest: CellSnapshot | undefined): readonly Claim[] | undefined {
    const view = latest ?? g.base;
    if (view.machine(g.machineId) !== g.machine) return undefined;
    for (const c of g.machine.claims) if (g.tasks.get(c.taskId)?.task !== undefined) return undefined;
    return knownLiveClaims(view, g.machineId);
  }

  /** The task ids a group guards, in the order groupOps emits them. */
  private guardedTasks(g: Group): TaskId[] {
    const ids: TaskId[] = [];
    for (const d of g.deltas) {
      ids.push(d.claim.taskId);
      for (const e of d.evicts) if (this.liveVictim(g, e) !== undefined) ids.push(e.claim.taskId);
    }
    return ids;
  }
}


