/**
 * LeaseKeeper: the one place a Scheduler reads its current lease from. It holds at most one
 * lease at a time, says when that lease is lost, and grants the next one.
 *
 * ```
 *   held(lease, gen n) ──lease.onLost──► none (gen n+1) ──grant() ok──► held(new lease, gen n+2)
 *                        onLost(error)                   └─ fails: caller retries with backoff
 * ```
 *
 * Contract:
 * - `current()` returns the lease held now, or throws {@link NoLeaseError}. Everything that writes
 *   on the instance's behalf (ownership, statuses, commits, stats) calls it right before the
 *   write, so nothing is written for the instance once a loss is noticed.
 * - `generation` changes at every loss and every grant: a caller that awaited something compares
 *   it with the value it started with to learn that the lease changed under it.
 * - Only the loss of the lease held now is reported (a late event from an earlier lease is
 *   ignored). The lost lease is revoked in the background, best effort: if the server still had
 *   it (the client gave up first), its owner records go at once instead of at its TTL.
 */
import type { KvLease } from '@omega/cell-state';

/** Grants a fresh lease for the instance (a keep-alive lease of the instance's TTL). */
export type LeaseSource = () => Promise<KvLease>;

/** The instance holds no lease (it was lost and not yet granted again). Retryable. */
export class NoLeaseError extends Error {
  readonly retryable = true;
  constructor(options?: { cause?: unknown }) {
    super('the scheduler holds no lease (lost; being granted again)', options);
    this.name = 'NoLeaseError';
  }
}

export class LeaseKeeper {
  private lease: KvLease | undefined;
  private gen = 0;

  /**
   * @param source grants the next lease.
   * @param onLost called once per lost lease, after `current()` has started to throw.
   */
  constructor(
    private readonly source: LeaseSource,
    private readonly onLost: (error: Error, lease: KvLease) => void,
    initial?: KvLease,
  ) {
    if (initial !== undefined) this.adopt(initial);
  }

  /** The lease held now; throws {@link NoLeaseError} when none is. */
  current(): KvLease {
    if (this.lease === undefined) throw new NoLeaseError();
    return this.lease;
  }

  /** The lease held now, if any. */
  get held(): KvLease | undefined {
    return this.lease;
  }

  /** Changes at every loss and every grant. */
  get generation(): number {
    return this.gen;
  }

  /** Grants a lease (one try) and holds it. Throws what the source throws; call only without a lease. */
  async grant(): Promise<KvLease> {
    if (this.lease !== undefined) throw new Error('LeaseKeeper.grant() called while a lease is held');
    const lease = await this.source();
    this.adopt(lease);
    return lease;
  }

  private adopt(lease: KvLease): void {
    this.lease = lease;
    this.gen++;
    lease.onLost((error) => {
      if (this.lease !== lease) return;
      this.lease = undefined;
      this.gen++;
      // Already gone on the server in the usual case (revoking an expired lease succeeds); when
      // only the client gave up on it, this frees its records now rather than at its TTL.
      lease.revoke().catch(() => undefined);
      this.onLost(error, lease);
    });
  }
}
