/**
 * What the schedulers' transactions looked like: per scheduler, how many claims and machines a
 * transaction touched, how many of a job's transactions were its first and how many retries, and
 * how often each failed and on how many machines. Recorded by wrapping each scheduler's Committer
 * (a probe like `probePolicy`): the claims, the commit and its outcome are unchanged, so a run
 * with the log is the run without it.
 *
 * This is what explains the conflict fraction's response to the transaction mode: a gang and an
 * incremental job send the same first transaction, and differ only in what they send again after
 * a conflict (every task, or only the conflicted ones), so all-or-nothing can only raise the
 * conflict fraction through retries (see bench/README.md, E3).
 */
import { parseTaskId, type Cell, type ClaimDelta, type CommitResult, type Committer, type CommitterOptions, type JobId, type Transaction } from '@omega/cell-state';

/** One scheduler's transactions, split by whether they were the job's first or a retry. */
export interface TransactionCounts {
  transactions: number;
  /** Transactions with at least one conflicted claim (BENCH.md's failed transaction). */
  failed: number;
  claims: number;
  /** Conflicted claims of the transaction's own (not counted: `gang` ones, conflicted only because another claim was). */
  ownConflicts: number;
  /** Claims that conflicted because another claim of their all-or-nothing transaction did. */
  gangConflicts: number;
}

export interface TransactionSummary {
  readonly first: TransactionCounts;
  readonly retry: TransactionCounts;
  /** Claims per transaction: mean, median, 90th percentile, largest. */
  readonly claimsPerTransaction: SizeSummary;
  /** Distinct machines per transaction. */
  readonly machinesPerTransaction: SizeSummary;
  /** Failed transactions by how many distinct machines had a claim of their own conflict: `{ "1": n, "2": n, ... }`. */
  readonly failedByMachines: Readonly<Record<string, number>>;
  /** Conflicted claims by reason (cell-state's ConflictReason). */
  readonly reasons: Readonly<Record<string, number>>;
}

export interface SizeSummary {
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly max: number;
}

class SizeCounts {
  private readonly counts = new Map<number, number>();
  private n = 0;
  private sum = 0;

  add(size: number): void {
    this.counts.set(size, (this.counts.get(size) ?? 0) + 1);
    this.n++;
    this.sum += size;
  }

  summary(): SizeSummary {
    const sizes = [...this.counts.keys()].sort((a, b) => a - b);
    const at = (q: number): number => {
      let seen = 0;
      for (const s of sizes) {
        seen += this.counts.get(s) as number;
        if (seen >= q * this.n) return s;
      }
      return sizes.at(-1) ?? 0;
    };
    return { mean: this.n === 0 ? 0 : this.sum / this.n, p50: at(0.5), p90: at(0.9), max: sizes.at(-1) ?? 0 };
  }
}

const zero = (): TransactionCounts => ({ transactions: 0, failed: 0, claims: 0, ownConflicts: 0, gangConflicts: 0 });

/** The transactions of one scheduler. */
class SchedulerTransactions {
  readonly first = zero();
  readonly retry = zero();
  readonly claims = new SizeCounts();
  readonly machines = new SizeCounts();
  readonly failedByMachines = new Map<number, number>();
  readonly reasons = new Map<string, number>();
  /** Jobs that sent a transaction already. */
  private readonly seen = new Set<JobId>();

  record(tx: Transaction, result: CommitResult): void {
    const job = jobOf(tx.deltas[0]);
    const retry = job !== undefined && this.seen.has(job);
    if (job !== undefined) this.seen.add(job);
    const c = retry ? this.retry : this.first;
    c.transactions++;
    c.claims += tx.deltas.length;
    this.claims.add(tx.deltas.length);
    this.machines.add(new Set(tx.deltas.map((d) => d.claim.machineId)).size);
    if (result.conflicted.length === 0) return;
    c.failed++;
    const failedOn = new Set<string>();
    for (const conflict of result.conflicted) {
      this.reasons.set(conflict.reason, (this.reasons.get(conflict.reason) ?? 0) + 1);
      if (conflict.reason === 'gang') {
        c.gangConflicts++;
      } else {
        c.ownConflicts++;
        failedOn.add(conflict.delta.claim.machineId);
      }
    }
    this.failedByMachines.set(failedOn.size, (this.failedByMachines.get(failedOn.size) ?? 0) + 1);
  }

  summary(): TransactionSummary {
    const byKey = (m: Map<number | string, number>): Record<string, number> => Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [String(k), v]));
    return {
      first: { ...this.first },
      retry: { ...this.retry },
      claimsPerTransaction: this.claims.summary(),
      machinesPerTransaction: this.machines.summary(),
      failedByMachines: byKey(this.failedByMachines),
      reasons: byKey(this.reasons),
    };
  }
}

function jobOf(delta: ClaimDelta | undefined): JobId | undefined {
  return delta === undefined ? undefined : parseTaskId(delta.claim.taskId)?.jobId;
}

/** A committer that may also commit several transactions at once (when the loop batches jobs). */
type BatchingCommitter = Committer & { commitMany?: (transactions: readonly Transaction[]) => Promise<CommitResult[]> };

/** Per-scheduler transaction records of one simulation. */
export class TransactionLog {
  private readonly schedulers = new Map<string, SchedulerTransactions>();

  /**
   * `cell` as the scheduler `name` should see it: the same cell, whose committers record every
   * transaction here. Everything else is the cell's own (methods run on the cell itself).
   */
  probeCell(cell: Cell, name: string): Cell {
    const log = this.of(name);
    const committer = (options?: CommitterOptions): Committer => probeCommitter(cell.committer(options), log);
    // Methods bound once each: the scheduler calls the cell's methods on every step.
    const bound = new Map<PropertyKey, unknown>();
    return new Proxy(cell, {
      get(target, property) {
        if (property === 'committer') return committer;
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        let method = bound.get(property);
        if (method === undefined) {
          method = (value as (...args: unknown[]) => unknown).bind(target);
          bound.set(property, method);
        }
        return method;
      },
    });
  }

  summary(name: string): TransactionSummary {
    return this.of(name).summary();
  }

  private of(name: string): SchedulerTransactions {
    let s = this.schedulers.get(name);
    if (s === undefined) {
      s = new SchedulerTransactions();
      this.schedulers.set(name, s);
    }
    return s;
  }
}

/** `committer` with every commit's transaction and result recorded in `log`; results unchanged. */
function probeCommitter(committer: Committer, log: SchedulerTransactions): Committer {
  const inner = committer as BatchingCommitter;
  const probed = Object.create(committer) as BatchingCommitter;
  probed.commit = async (tx: Transaction): Promise<CommitResult> => {
    const result = await inner.commit(tx);
    log.record(tx, result);
    return result;
  };
  const many = inner.commitMany;
  if (many !== undefined) {
    probed.commitMany = async (transactions: readonly Transaction[]): Promise<CommitResult[]> => {
      const results = await many.call(inner, transactions);
      transactions.forEach((tx, i) => {
        const r = results[i];
        if (r !== undefined) log.record(tx, r);
      });
      return results;
    };
  }
  return probed;
}
