/**
 * {@link KvStore} on a real etcd cluster, through the `etcd3` package's raw KV, watch and lease
 * RPCs (its builders cannot nest transactions).
 *
 * The boundary rules of this file:
 * - revisions arrive as decimal strings and are parsed once, here, into safe integers;
 * - every etcd, gRPC, circuit-breaker or client error is translated in one place
 *   ({@link EtcdKv.translate}) into the `KvError` classes of `kv.ts`;
 * - compare targets and results use the names of etcd3's bundled proto (`Mod`, `Equal`, ...),
 *   checked at compile time: a wrong string would silently encode as 0 and fail every guard.
 *
 * etcd3 1.1.2 itself retries recoverable failures (3 attempts) behind a per-host circuit breaker,
 * so a write whose reply was lost can be applied twice: commits above this layer are idempotent.
 *
 * With `tls` the connection is TLS with a client certificate; an etcd started with
 * `--client-cert-auth` and auth enabled then acts as the user named by the certificate's CN, and
 * refuses what that user's roles do not allow with "permission denied": that becomes a
 * {@link KvPermissionDeniedError} (not retryable), logged once per key range at error.
 */
import { performance } from 'node:perf_hooks';
import type {
  Etcd3,
  CompareResult as EtcdCompareResult,
  CompareTarget as EtcdCompareTarget,
  ICompare,
  IKeyValue,
  IOptions,
  IRequestOp,
  IResponseOp,
  ITxnRequest,
  IWatchResponse,
  Lease,
  Watcher,
} from 'etcd3';
import { etcd3 } from './etcd3-module.js';
import { encodeTxnRequest } from './etcd-wire-encode.js';
import { decodeDeleteRangeResponse, decodePutResponse, decodeRangeResponse, decodeTxnResponse, decodeWatchResponse, isWireKeyValue } from './etcd-wire.js';
import { pino, type Logger } from 'pino';
import {
  ETCD_DEFAULT_LIMITS,
  KvCompactedError,
  KvError,
  KvInvalidRequestError,
  KvLeaseNotFoundError,
  KvPermissionDeniedError,
  KvUnavailableError,
  type Compare,
  type CompareOp,
  type CompareTarget,
  type KeyValue,
  type KvCounters,
  type KvLease,
  type KvLimits,
  type KvStore,
  type Op,
  type OpResult,
  type RangeRequest,
  type RangeResult,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
  type WatchHandle,
  type WatchListener,
} from './kv.js';
import type { TlsIdentity } from './tls-identity.js';

export interface EtcdKvOptions {
  /** Client URLs, e.g. `['http://127.0.0.1:2379']`. */
  readonly endpoints: readonly string[];
  /** The server's limits (what it was started with); defaults to etcd's own defaults. */
  readonly limits?: KvLimits;
  readonly logger?: Logger;
  /** Deadline for each unary request, connection setup included. Default 30 s. */
  readonly dialTimeoutMs?: number;
  /**
   * Connect with TLS: verify etcd against `ca` and present `cert` / `key` (etcd's
   * `--client-cert-auth` then takes the user from the certificate's CN). Without it the
   * connection is plaintext with no credentials; `https://` endpoints then fail to connect.
   */
  readonly tls?: TlsIdentity;
  /**
   * A key this identity may read, used by the revision probes (`currentRevision`, and the search
   * for a compact revision after a compaction error). Default `\0`, which only an identity
   * allowed to read every key (or an etcd without auth) may read: give the cell's root
   * (`/omega/<cell>/`) under etcd's role-based access.
   */
  readonly probeKey?: string;
}

const MiB = 1024 * 1024;
/** Replies above grpc-js's 4 MiB default are refused; a full range of a large cell exceeds it. */
const MAX_MESSAGE_BYTES = 64 * MiB;
const ZERO_KEY = Buffer.from([0]);
/** etcd's ErrCompacted text; its errors do not carry the compact revision. */
const COMPACTED = 'required revision has been compacted';
/** How long `cancel` waits for etcd to confirm a watch cancellation before giving up on it. */
const CANCEL_TIMEOUT_MS = 5_000;
/** Delay before re-creating a watch that etcd cancelled for a reason other than compaction. */
const RESUBSCRIBE_DELAY_MS = 1_000;

const COMPARE_TARGETS = {
  mod: 'Mod',
  create: 'Create',
  version: 'Version',
  value: 'Value',
  lease: 'Lease',
} as const satisfies Record<CompareTarget, keyof typeof EtcdCompareTarget>;

const COMPARE_RESULTS = {
  '==': 'Equal',
  '!=': 'NotEqual',
  '<': 'Less',
  '>': 'Greater',
} as const satisfies Record<CompareOp, keyof typeof EtcdCompareResult>;

/** How many distinct key ranges a store remembers having logged a permission refusal for. */
const MAX_LOGGED_REFUSALS = 256;

/** What the error translator needs to know about the request that failed. */
interface FailureContext {
  /** A revision the request read at: a "compacted" error means the compact revision is above it. */
  readonly compactedAbove?: number;
  /** Lease ids the request used, for {@link KvLeaseNotFoundError}. */
  readonly leases?: readonly string[];
  /** The keys the request touched (`key`, or `prefix*`), for {@link KvPermissionDeniedError}. */
  readonly keys?: readonly string[];
}

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * A {@link KvStore} backed by etcd 3.4+. One instance holds one gRPC connection pool; it is safe
 * to share between callers. Call {@link EtcdKv.close} to release the connection, keep-alive
 * timers and watch streams.
 */
export class EtcdKv implements KvStore {
  readonly limits: KvLimits;
  readonly counters: KvCounters = { roundTrips: 0, bytesWritten: 0, bytesRead: 0 };

  private readonly client: Etcd3;
  private readonly log: Logger;
  private readonly watches = new Set<EtcdWatch>();
  private readonly leases = new Set<Lease>();
  /** Compact revisions etcd reported when cancelling watches, by watcher (see interceptCompactions). */
  private readonly compactedWatchers = new WeakMap<Watcher, number>();
  /** Key ranges whose permission refusal was logged (once each). */
  private readonly refusalsLogged = new Set<string>();
  private readonly probeKey: Buffer;
  private closed = false;
  /** etcd3's KV client takes {@link EncodedRequest}s and returns replies in final form (see installLeanDecoders). */
  private readonly lean: boolean;

  constructor(options: EtcdKvOptions) {
    if (options.endpoints.length === 0) throw new RangeError('EtcdKv needs at least one endpoint');
    this.limits = options.limits ?? ETCD_DEFAULT_LIMITS;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'etcd-kv' });
    const timeoutMs = options.dialTimeoutMs ?? 30_000;
    this.probeKey = options.probeKey === undefined || options.probeKey.length === 0 ? ZERO_KEY : Buffer.from(options.probeKey);
    const tls = options.tls;
    this.client = new (etcd3().Etcd3)({
      hosts: [...options.endpoints],
      ...(tls === undefined ? {} : { credentials: { rootCertificate: tls.ca, certChain: tls.cert, privateKey: tls.key } }),
      dialTimeout: timeoutMs,
      grpcOptions: {
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
        // Notice a silently dead server (partition) on long-lived watch streams; etcd accepts
        // pings every 5 s or slower on active streams.
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
      },
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      // etcd3's default watch backoff grows to 30 s; a watch should come back soon after etcd does.
      faultHandling: { watchBackoff: cappedBackoff(100, 2_000) },
    });
    interceptCompactions(this.client, this.compactedWatchers);
    this.lean = installLeanDecoders(this.client);
  }

  async range(request: RangeRequest): Promise<RangeResult> {
    const keys = keyRange(request.key, request.prefix === true);
    const start = request.prefix === true && request.fromKey !== undefined && request.fromKey > request.key ? Buffer.from(request.fromKey) : keys.key;
    const revision = request.revision !== undefined && request.revision > 0 ? request.revision : 0;
    const response = await this.rpc(
      () =>
        this.client.kv.range({
          ...keys,
          key: start,
          limit: String(request.limit ?? 0),
          revision: String(revision),
        }),
      { ...(revision > 0 ? { compactedAbove: revision } : {}), keys: [describeKey(request.key, request.prefix === true)] },
    );
    let kvs = response.kvs.map(toKeyValue);
    // A single-key read paged past its key is empty (etcd has no such notion for one key).
    if (request.prefix !== true && request.fromKey !== undefined && request.fromKey > request.key) kvs = [];
    this.countRead(kvs);
    return { kvs, more: response.more, revision: revision > 0 ? revision : parseInt64(response.header.revision) };
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    // Encoded once, before the call: etcd3's retries resend the same bytes.
    const body = this.lean ? (new EncodedRequest(encodeTxnRequest(request)) as unknown as ITxnRequest) : toTxnRequest(request);
    const response = await this.rpc(() => this.client.kv.txn(body), { leases: leasesOf(request), keys: keysOf(request) });
    const results = this.fromResponses(response.succeeded ? request.success : request.failure, response.responses);
    return { succeeded: response.succeeded, revision: parseInt64(response.header.revision), results };
  }

  async put(key: string, value: Uint8Array, options: { lease?: string } = {}): Promise<number> {
    const lease = options.lease ?? '0';
    const response = await this.rpc(() => this.client.kv.put({ key: Buffer.from(key), value: toBuffer(value), lease }), {
      leases: [lease],
      keys: [key],
    });
    this.counters.bytesWritten += Buffer.byteLength(key) + value.length;
    return parseInt64(response.header.revision);
  }

  async delete(key: string, options: { prefix?: boolean } = {}): Promise<number> {
    const response = await this.rpc(() => this.client.kv.deleteRange(keyRange(key, options.prefix === true)), { keys: [describeKey(key, options.prefix === true)] });
    return parseInt64(response.deleted);
  }

  watch(prefix: string, fromRevision: number, listener: WatchListener): WatchHandle {
    if (this.closed) throw new KvUnavailableError('etcd KV store is closed');
    const watch = new EtcdWatch(this.client, prefix, fromRevision, listener, {
      log: this.log,
      compactRevisionOf: (watcher) => this.compactedWatchers.get(watcher),
      findCompactRevision: (above) => this.findCompactRevision(above),
      onEnd: () => this.watches.delete(watch),
    });
    this.watches.add(watch);
    return { cancel: () => watch.cancel() };
  }

  async grantLease(ttlSeconds: number, options: { autoKeepAlive?: boolean } = {}): Promise<KvLease> {
    if (this.closed) throw new KvUnavailableError('etcd KV store is closed');
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new KvInvalidRequestError(`lease TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`);
    }
    const autoKeepAlive = options.autoKeepAlive === true;
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive });
    const lost = new LostSignal();
    let id = 'unknown';
    // Listen before the grant settles: etcd3 reports a failed grant as 'lost' too.
    lease.on('lost', (error: Error) => {
      this.leases.delete(lease);
      lost.fire(this.translate(error, { leases: [id] }));
    });
    // Keep-alives go out on one stream and are answered in order: each answer acknowledges the
    // oldest one outstanding. A broken stream's unanswered ones are forgotten (a new stream
    // starts with a new one), so a late answer is never credited to a later send.
    const fired: number[] = [];
    const renewed = new Set<(sentAgoMs: number) => void>();
    lease.on('keepaliveFired', () => fired.push(performance.now()));
    lease.on('keepaliveFailed', () => (fired.length = 0));
    lease.on('keepaliveSucceeded', () => {
      const sentAt = fired.shift();
      if (sentAt === undefined) return;
      const ago = performance.now() - sentAt;
      for (const listener of renewed) listener(ago);
    });
    this.leases.add(lease);
    id = await this.rpc(() => lease.grant()).catch((error: unknown) => {
      this.leases.delete(lease);
      lease.release();
      throw error;
    });
    const state = { revoked: false };
    if (!autoKeepAlive) this.watchExpiry(id, lost, state);
    return {
      id,
      ttlSeconds,
      revoke: async () => {
        state.revoked = true;
        this.leases.delete(lease);
        // etcd3 treats revoking an expired lease as success, as MemoryKv does.
        await this.rpc(() => lease.revoke(), { leases: [id] });
      },
      onLost: (listener) => lost.listen(listener),
      onRenewed: (listener) => void renewed.add(listener),
    };
  }

  async compact(revision: number): Promise<void> {
    await this.rpc(() => this.client.kv.compact({ revision: String(revision), physical: true }), {
      compactedAbove: revision - 1,
    });
  }

  async currentRevision(): Promise<number> {
    const response = await this.rpc(() => this.client.kv.range({ key: this.probeKey, count_only: true }), { keys: [describeKey(this.probeKey.toString('utf8'), false)] });
    return parseInt64(response.header.revision);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Watch streams and keep-alive timers would otherwise retry against a closed pool forever.
    await Promise.all([...this.watches].map((watch) => watch.cancel()));
    for (const lease of this.leases) lease.release();
    this.leases.clear();
    this.client.close();
  }

  // ---- boundary: calls, errors, conversions ---------------------------------------------------

  /** Runs one request: counts it and translates its failure. */
  private async rpc<T>(call: () => Promise<T>, context: FailureContext = {}): Promise<T> {
    if (this.closed) throw new KvUnavailableError('etcd KV store is closed');
    this.counters.roundTrips++;
    try {
      return await call();
    } catch (error) {
      throw await this.translate(error, context);
    }
  }

  /**
   * The one place where etcd, gRPC, etcd3 and cockatiel errors become `KvError`s. Async because
   * etcd's "compacted" error does not carry the compact revision, which is then looked up.
   */
  private async translate(error: unknown, context: FailureContext): Promise<KvError> {
    if (error instanceof KvError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const name = error instanceof Error ? error.constructor.name : '';
    const cause = { cause: error };
    if (message.includes(COMPACTED)) {
      const compactRevision = await this.findCompactRevision(context.compactedAbove ?? 0).catch(() => 0);
      return new KvCompactedError(compactRevision, cause);
    }
    const invalid = [
      'required revision is a future revision',
      'too many operations in txn request',
      'request is too large',
      'duplicate key given in txn request',
      'key is not provided',
      'larger than max', // grpc-js: a reply or request over the message size limit
    ];
    if (invalid.some((text) => message.includes(text))) return new KvInvalidRequestError(message, cause);
    // "user name is empty": auth is on and the request carried no user (no certificate CN, no token).
    const refused = ['permission denied', 'PERMISSION_DENIED', 'user name is empty', 'authentication failed'];
    const { EtcdAuthenticationFailedError, EtcdLeaseInvalidError, EtcdPermissionDeniedError, isRecoverableError } = etcd3();
    if (error instanceof EtcdPermissionDeniedError || error instanceof EtcdAuthenticationFailedError || refused.some((text) => message.includes(text))) {
      const keys = context.keys ?? [];
      this.logRefusal(keys, message);
      return new KvPermissionDeniedError(keys, cause);
    }
    if (error instanceof EtcdLeaseInvalidError || message.includes('requested lease not found')) {
      const ids = (context.leases ?? []).filter((id) => id !== '0');
      return new KvLeaseNotFoundError(ids.join(', ') || 'unknown', cause);
    }
    if (message.includes('database space exceeded')) {
      return new KvError(`etcd is out of space (compact and defragment it): ${message}`, false, cause);
    }
    const unavailable =
      (error instanceof Error && isRecoverableError(error)) ||
      name === 'BrokenCircuitError' ||
      name === 'ClientClosedError' ||
      ['request timed out', 'leader changed', 'no leader', 'too many requests', 'UNAVAILABLE', 'DEADLINE_EXCEEDED'].some((text) =>
        message.includes(text),
      );
    if (unavailable) return new KvUnavailableError(`etcd unavailable: ${message}`, cause);
    return new KvError(message, false, cause);
  }

  /** Logs a permission refusal at error, once per key range (a retrying caller would repeat it). */
  private logRefusal(keys: readonly string[], message: string): void {
    const range = keys.join(', ') || 'unknown';
    if (this.refusalsLogged.has(range)) return;
    if (this.refusalsLogged.size >= MAX_LOGGED_REFUSALS) return;
    this.refusalsLogged.add(range);
    this.log.error({ keys, etcdError: message }, "etcd refused a request: this identity's role does not allow these keys");
  }

  /**
   * The compact revision, which etcd's errors do not report: the smallest readable revision,
   * found by bisection between a revision known to be compacted and the current one (a few
   * dozen tiny reads, only after a compaction error).
   */
  private async findCompactRevision(above: number): Promise<number> {
    const readable = async (revision: number): Promise<boolean> => {
      // Not through rpc(): its translation of "compacted" would start another lookup.
      this.counters.roundTrips++;
      try {
        await this.client.kv.range({ key: this.probeKey, count_only: true, revision: String(revision) });
        return true;
      } catch (error) {
        if (error instanceof Error && error.message.includes(COMPACTED)) return false;
        throw error;
      }
    };
    let low = Math.max(0, above); // not readable
    let high = await this.currentRevision(); // readable
    while (low + 1 < high) {
      const mid = Math.floor((low + high) / 2);
      if (await readable(mid)) high = mid;
      else low = mid;
    }
    return high;
  }

  /**
   * etcd3 only reports the loss of leases it keeps alive; a lease without keep-alive is checked
   * when its TTL should have run out, so `onLost` means the same thing as on MemoryKv.
   */
  private watchExpiry(id: string, lost: LostSignal, state: { revoked: boolean }): void {
    const check = async (): Promise<void> => {
      if (this.closed || state.revoked || lost.fired) return;
      try {
        const response = await this.rpc(() => this.client.leaseClient.leaseTimeToLive({ ID: id }), { leases: [id] });
        // etcd answers TTL -1 for a lease that no longer exists.
        const remaining = Number(response.TTL);
        if (remaining < 0) lost.fire(Promise.resolve(new KvLeaseNotFoundError(id)));
        else schedule(remaining * 1000 + 500);
      } catch (error) {
        if (error instanceof KvLeaseNotFoundError) lost.fire(Promise.resolve(error));
        else if (!this.closed) schedule(1_000);
      }
    };
    const schedule = (delayMs: number): void => {
      setTimeout(() => void check(), delayMs).unref();
    };
    // The TTL is re-read rather than computed: etcd may extend a short TTL to its minimum.
    void check();
  }

  private fromResponses(ops: readonly Op[], responses: readonly IResponseOp[]): OpResult[] {
    return ops.map((op, i): OpResult => {
      const response = responses[i];
      if (response === undefined) throw new KvError(`etcd sent ${responses.length} results for ${ops.length} ops`, false);
      switch (op.type) {
        case 'range': {
          const kvs = response.response_range.kvs.map(toKeyValue);
          this.countRead(kvs);
          return { type: 'range', kvs };
        }
        case 'put':
          this.counters.bytesWritten += Buffer.byteLength(op.key) + op.value.length;
          return { type: 'put' };
        case 'delete':
          return { type: 'delete', deleted: parseInt64(response.response_delete_range.deleted) };
        case 'txn': {
          const nested = response.response_txn;
          const branch = nested.succeeded ? op.txn.success : op.txn.failure;
          return { type: 'txn', succeeded: nested.succeeded, results: this.fromResponses(branch, nested.responses) };
        }
        default:
          return assertNever(op);
      }
    });
  }

  private countRead(kvs: readonly KeyValue[]): void {
    for (const kv of kvs) this.counters.bytesRead += Buffer.byteLength(kv.key) + kv.value.length;
  }
}

/** Callbacks an {@link EtcdWatch} needs from its store. */
interface WatchEnvironment {
  readonly log: Logger;
  readonly compactRevisionOf: (watcher: Watcher) => number | undefined;
  readonly findCompactRevision: (above: number) => Promise<number>;
  readonly onEnd: () => void;
}

/**
 * One watch over an etcd3 `Watcher`, fixing what etcd3 1.1.2 and etcd 3.4.23 get wrong:
 * - etcd3 resumes after a reconnect from the revision in the last response *header*, but a
 *   catching-up watch's header carries etcd's current revision while its events stop earlier
 *   (etcd batches at most 1,000 revisions): so before each reconnect the start revision is reset
 *   to just after the last event delivered;
 * - events at or below the delivered revision (etcd 3.4.23 can repeat them) are dropped;
 * - a batch's revision is its last event's revision, not the header's, for the same reason;
 * - a compaction cancel reaches etcd3 only as a generic "Watcher canceled" error: the compact
 *   revision is taken from the intercepted response (or looked up) and `onCompacted` runs once.
 */
class EtcdWatch {
  private watcher: Watcher | undefined;
  /** Last revision whose events were all delivered. */
  private delivered: number;
  private over = false;
  private disconnected = false;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private refusedLogged = false;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    fromRevision: number,
    private readonly listener: WatchListener,
    private readonly env: WatchEnvironment,
  ) {
    // 0 or less: from now, learnt from the creation response.
    this.delivered = fromRevision > 0 ? fromRevision - 1 : -1;
    this.subscribe();
  }

  async cancel(): Promise<void> {
    if (this.over && this.watcher === undefined) return;
    this.end();
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher !== undefined) await withTimeout(watcher.cancel(), CANCEL_TIMEOUT_MS);
  }

  private subscribe(): void {
    const builder = this.client.watch().inRange(keyRangeAsRangable(this.prefix));
    if (this.delivered >= 0) builder.startRevision(String(this.delivered + 1));
    const watcher = builder.watcher();
    this.watcher = watcher;
    watcher.on('connected', (response: IWatchResponse) => this.onConnected(response));
    watcher.on('data', (response: IWatchResponse) => this.onData(response));
    watcher.on('disconnected', (error: Error) => this.onDisconnected(watcher, error));
    watcher.on('error', (error: Error) => void this.onCancelled(watcher, error));
  }

  private onConnected(response: IWatchResponse): void {
    if (this.over) return;
    if (this.delivered < 0) this.delivered = parseInt64(response.header.revision);
    if (this.disconnected) {
      this.disconnected = false;
      this.env.log.info({ prefix: this.prefix, from: this.delivered + 1 }, 'watch resumed');
      callListener(() => this.listener.onReconnected?.());
    }
  }

  private onData(response: IWatchResponse): void {
    if (this.over) return;
    const events: WatchEvent[] = [];
    for (const event of response.events) {
      const kv = toKeyValue(event.kv);
      if (kv.modRevision <= this.delivered) continue; // a repeat
      events.push({ type: event.type === 'Delete' ? 'delete' : 'put', kv });
    }
    let revision: number;
    if (events.length > 0) {
      revision = (events.at(-1) as WatchEvent).kv.modRevision;
    } else if (response.events.length === 0) {
      // Progress notification: etcd sends them only to watches that are level with the store.
      revision = parseInt64(response.header.revision);
      if (revision <= this.delivered) return;
    } else {
      return;
    }
    this.delivered = revision;
    callListener(() => this.listener.onBatch({ revision, events }));
  }

  private onDisconnected(watcher: Watcher, error: Error): void {
    if (this.over) return;
    // etcd3 reconnects with request.start_revision, which it set from a response header.
    if (this.delivered >= 0) watcher.request.start_revision = String(this.delivered + 1);
    if (this.disconnected) return;
    this.disconnected = true;
    this.env.log.warn({ prefix: this.prefix, err: error }, 'watch disconnected');
    callListener(() => this.listener.onDisconnected?.(error));
  }

  /** etcd cancelled the watch (etcd3 turns the cancel response into an 'error' event). */
  private async onCancelled(watcher: Watcher, error: Error): Promise<void> {
    if (this.over || watcher !== this.watcher) return;
    // The server already forgot this watcher: cancelling it again would wait forever.
    this.watcher = undefined;
    const reported = this.env.compactRevisionOf(watcher);
    if (reported !== undefined || error.message.includes('compacted')) {
      this.end();
      const compactRevision = reported ?? (await this.env.findCompactRevision(this.delivered).catch(() => 0));
      this.env.log.info({ prefix: this.prefix, compactRevision }, 'watch compacted');
      callListener(() => this.listener.onCompacted(compactRevision));
      return;
    }
    if (!error.message.includes('permission denied')) {
      this.env.log.warn({ prefix: this.prefix, err: error }, 'watch cancelled by etcd; re-creating it');
    } else if (!this.refusedLogged) {
      // Re-created all the same (an administrator may grant the role), but said once, not per try.
      this.refusedLogged = true;
      this.env.log.error({ prefix: this.prefix, err: error }, "etcd refused a watch: this identity's role may not read the prefix; retrying quietly");
    }
    if (!this.disconnected) {
      this.disconnected = true;
      callListener(() => this.listener.onDisconnected?.(error));
    }
    this.resubscribeTimer = setTimeout(() => {
      if (!this.over) this.subscribe();
    }, RESUBSCRIBE_DELAY_MS);
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.resubscribeTimer);
    this.env.onEnd();
  }
}

/**
 * etcd3 drops a cancelled watch response's `compact_revision` before emitting its error; this
 * wraps the client's (internal) watch manager to record it per watcher first. If etcd3's
 * internals differ, nothing is patched and the compact revision is looked up instead.
 */
function interceptCompactions(client: Etcd3, record: WeakMap<Watcher, number>): void {
  interface Manager {
    watchers: Watcher[];
    handleResponse(response: IWatchResponse): void;
  }
  const manager = (client as unknown as { watchManager?: Partial<Manager> }).watchManager;
  if (manager === undefined || typeof manager.handleResponse !== 'function') return;
  const original = manager.handleResponse;
  manager.handleResponse = function (this: Manager, response: IWatchResponse): void {
    if (response.canceled && response.compact_revision !== undefined && response.compact_revision !== '0') {
      const watcher = Array.isArray(this.watchers) ? this.watchers.find((w) => w.id === response.watch_id) : undefined;
      if (watcher !== undefined) record.set(watcher, parseInt64(response.compact_revision));
    }
    original.call(this, response);
  };
}

/** The replies whose decoding {@link installLeanDecoders} replaces, by service and etcd3 method name. */
const LEAN_DECODERS = {
  KV: { range: decodeRangeResponse, txn: decodeTxnResponse, put: decodePutResponse, deleteRange: decodeDeleteRangeResponse },
  Watch: { watch: decodeWatchResponse },
} as const;

/** A request already in wire form ({@link encodeTxnRequest}): the patched serializers send its bytes as they are. */
class EncodedRequest {
  constructor(readonly bytes: Buffer) {}
}
const LEAN = Symbol.for('omega.etcd-kv.lean-decoders');

/**
 * Replaces the reply decoders of etcd3's KV and Watch gRPC clients with the lean ones of
 * `etcd-wire.ts` (replies come out with numeric revisions and {@link KeyValue}s, which
 * {@link toKeyValue} and {@link parseInt64} pass through). etcd3 builds its clients from one
 * proto-loader definition per process, so the methods are swapped on their shared prototype,
 * once; only EtcdKv uses etcd3 (the repository's rule), and every reply field it or etcd3's
 * watch manager reads is kept. If etcd3's or grpc-js's internals differ from what is checked
 * here, nothing is patched and replies keep etcd3's own (slower, equivalent) form. The patched
 * methods' serializers also accept an {@link EncodedRequest}. Returns whether the KV client is
 * patched (then `txn` may be given encoded requests).
 */
function installLeanDecoders(client: Etcd3): boolean {
  interface MethodAttrs {
    (...args: unknown[]): unknown;
    readonly path?: string;
    readonly requestSerialize?: (value: unknown) => Buffer;
    readonly responseStream?: boolean;
    readonly requestStream?: boolean;
  }
  interface GrpcClient {
    makeUnaryRequest(path: string, serialize: unknown, deserialize: unknown, ...args: unknown[]): unknown;
    makeBidiStreamRequest(path: string, serialize: unknown, deserialize: unknown, ...args: unknown[]): unknown;
  }
  const host = (client as unknown as { pool?: { hosts?: { getServiceClient?(name: string): unknown }[] } }).pool?.hosts?.[0];
  if (typeof host?.getServiceClient !== 'function') return false;
  let kvPatched = false;
  for (const [service, methods] of Object.entries(LEAN_DECODERS)) {
    let proto: Record<string | symbol, unknown>;
    try {
      proto = Object.getPrototypeOf(host.getServiceClient(service)) as Record<string | symbol, unknown>;
    } catch {
      return kvPatched;
    }
    if (proto[LEAN] === true) {
      kvPatched ||= service === 'KV';
      continue;
    }
    const replacements: [string, MethodAttrs][] = [];
    for (const [name, decode] of Object.entries(methods)) {
      const original = proto[name] as MethodAttrs | undefined;
      const given = original?.requestSerialize;
      const path = original?.path;
      if (typeof original !== 'function' || typeof given !== 'function' || typeof path !== 'string' || original.requestStream !== original.responseStream) return kvPatched;
      const serialize = (value: unknown): Buffer => (value instanceof EncodedRequest ? value.bytes : given(value));
      const bidi = original.responseStream === true;
      const lean = bidi
        ? function (this: GrpcClient, ...args: unknown[]): unknown {
            return this.makeBidiStreamRequest(path, serialize, decode, ...args);
          }
        : function (this: GrpcClient, ...args: unknown[]): unknown {
            return this.makeUnaryRequest(path, serialize, decode, ...args);
          };
      replacements.push([name, Object.assign(lean, original, { requestSerialize: serialize, responseDeserialize: decode })]);
    }
    for (const [name, lean] of replacements) proto[name] = lean;
    proto[LEAN] = true;
    kvPatched ||= service === 'KV';
  }
  return kvPatched;
}

/** Runs `onLost` listeners once, with an error resolved when the loss happened. */
class LostSignal {
  fired = false;
  private error: Promise<Error> | undefined;
  private readonly listeners: ((error: Error) => void)[] = [];

  fire(error: Promise<Error>): void {
    if (this.fired) return;
    this.fired = true;
    this.error = error;
    for (const listener of this.listeners.splice(0)) void error.then((e) => callListener(() => listener(e)));
  }

  listen(listener: (error: Error) => void): void {
    if (this.error !== undefined) void this.error.then((e) => callListener(() => listener(e)));
    else this.listeners.push(listener);
  }
}

// ---- conversions ------------------------------------------------------------------------------

/**
 * Parses an etcd int64 (revision, version, count) sent as a decimal string; refuses values a
 * JavaScript number cannot hold exactly. Lease ids stay strings: etcd draws them from all of int64.
 */
function parseInt64(text: string | number): number {
  const value = typeof text === 'number' ? text : Number(text);
  if (!Number.isSafeInteger(value)) throw new KvError(`etcd sent ${JSON.stringify(text)}, not a safe integer`, false);
  return value;
}

function toKeyValue(kv: IKeyValue | KeyValue): KeyValue {
  // Already in final form when the lean decoders are installed (see installLeanDecoders).
  if (isWireKeyValue(kv)) return kv;
  return {
    key: kv.key.toString('utf8'),
    // A plain view (no copy): callers compare values as Uint8Array, not Buffer.
    value: new Uint8Array(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength),
    createRevision: parseInt64(kv.create_revision),
    modRevision: parseInt64(kv.mod_revision),
    version: parseInt64(kv.version),
    lease: kv.lease === '' ? '0' : kv.lease,
  };
}

function toBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** etcd's encoding of a key or prefix: an empty prefix is every key (`\0` to `\0`). */
function keyRange(key: string, prefix: boolean): { key: Buffer; range_end?: Buffer } {
  if (!prefix) return { key: Buffer.from(key) };
  if (key.length === 0) return { key: ZERO_KEY, range_end: ZERO_KEY };
  return { key: Buffer.from(key), range_end: prefixEndBytes(Buffer.from(key)) };
}

function keyRangeAsRangable(prefix: string): { start: Buffer; end: Buffer } {
  const range = keyRange(prefix, true);
  return { start: range.key, end: range.range_end ?? ZERO_KEY };
}

/** etcd's byte-wise prefix end: increment the last byte below 0xff, dropping trailing 0xff bytes. */
export function prefixEndBytes(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if ((prefix[i] as number) < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = (end[i] as number) + 1;
      return end;
    }
  }
  return ZERO_KEY;
}

function toCompare(compare: Compare): ICompare {
  const base = { key: Buffer.from(compare.key), target: COMPARE_TARGETS[compare.target], result: COMPARE_RESULTS[compare.op] };
  switch (compare.target) {
    case 'mod':
      return { ...base, mod_revision: String(compare.value) };
    case 'create':
      return { ...base, create_revision: String(compare.value) };
    case 'version':
      return { ...base, version: String(compare.value) };
    case 'value':
      return { ...base, value: toBuffer(compare.value) };
    case 'lease':
      return { ...base, lease: compare.value };
    default:
      return assertNever(compare);
  }
}

function toRequestOp(op: Op): IRequestOp {
  switch (op.type) {
    case 'range':
      return { request_range: keyRange(op.key, op.prefix === true) };
    case 'put':
      return { request_put: { key: Buffer.from(op.key), value: toBuffer(op.value), lease: op.lease ?? '0' } };
    case 'delete':
      return { request_delete_range: keyRange(op.key, op.prefix === true) };
    case 'txn':
      return { request_txn: toTxnRequest(op.txn) };
    default:
      return assertNever(op);
  }
}

/** etcd3's request object for `request` (the path when the lean encoder is not installed; tests compare both). */
export function toTxnRequest(request: TxnRequest): ITxnRequest {
  return {
    compare: request.compare.map(toCompare),
    success: request.success.map(toRequestOp),
    failure: request.failure.map(toRequestOp),
  };
}

/** A key as it appears in errors and logs: the key, or `prefix*` for a prefix. */
export function describeKey(key: string, prefix: boolean): string {
  if (key === '\0' || (prefix && key.length === 0)) return prefix ? '(every key)' : '\\0';
  return prefix ? `${key}*` : key;
}

/** The keys a transaction touches (compares included), at most a few, for error messages. */
function keysOf(request: TxnRequest): string[] {
  const keys = new Set<string>();
  const visit = (txn: TxnRequest): void => {
    for (const compare of txn.compare) keys.add(compare.key);
    for (const op of [...txn.success, ...txn.failure]) {
      if (op.type === 'txn') visit(op.txn);
      else keys.add(describeKey(op.key, op.type !== 'put' && op.prefix === true));
    }
  };
  visit(request);
  const all = [...keys];
  return all.length <= 4 ? all : [...all.slice(0, 3), `and ${all.length - 3} more`];
}

function leasesOf(request: TxnRequest): string[] {
  const ids = new Set<string>();
  const visit = (ops: readonly Op[]): void => {
    for (const op of ops) {
      if (op.type === 'put' && op.lease !== undefined && op.lease !== '0') ids.add(op.lease);
      if (op.type === 'txn') {
        visit(op.txn.success);
        visit(op.txn.failure);
      }
    }
  };
  visit(request.success);
  visit(request.failure);
  return [...ids];
}

/** etcd3's watch backoff interface: doubles from `delayMs` up to `maxMs`. */
function cappedBackoff(delayMs: number, maxMs: number): WatchBackoff {
  return { duration: delayMs, next: () => cappedBackoff(Math.min(delayMs * 2, maxMs), maxMs) };
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A listener that throws must not break the watch; its error surfaces as unhandled. */
function callListener(call: () => void): void {
  try {
    call();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
