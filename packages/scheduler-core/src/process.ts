/**
 * `runSchedulerProcess(policy, argv)`: everything a scheduler process does around its policy,
 * shared by `omega-scheduler-batch` and `omega-scheduler-service`.
 *
 * ```
 *  flags ──► pino logger ──► EtcdKv ──► Cell ──► mirror.start() ──► lease ──► Scheduler.run()
 *                                        └─ retried until the store answers ─┘      │
 *                                  SIGTERM / SIGINT (at any time) ──► stop ─────────┘
 *     stop: no new work; a think in progress is dropped, a commit in flight finishes;
 *           stats published; mirror stopped; lease revoked (ownerships and stats go at once,
 *           so other instances take the jobs without waiting for a TTL); store closed; exit 0
 * ```
 *
 * The process outlives any etcd outage. At startup it retries the mirror's first list and the
 * first lease grant with backoff (250 ms doubling to 10 s) until they succeed or a signal
 * arrives, logging one warning when the store does not answer and one line when it does. A lease
 * lost while running (etcd unreachable past its TTL) is granted again inside the Scheduler,
 * which then rebuilds its book from a fresh view of the cell and resumes (see scheduler.ts).
 *
 * Exit codes: 0 after a clean stop (also when stopped before the store was ever reached); 1 when
 * the loop failed on a bug, at a second signal, or when etcd refuses the scheduler's identity
 * (permission denied: its role does not allow the cell); 2 for a bad flag, with a message naming
 * it (a missing or wrong certificate file included).
 * The only place that creates a logger.
 */
import { PrometheusMetrics, startMetricsServer, type MetricsServer } from '@omega/metrics';
import { Cell, CellKeys, ETCD_DEFAULT_LIMITS, EtcdKv, FlagError, exitWithParent, exposeMirrorMetrics, hideTlsIpServernameWarning, isPermanentStoreError, logProcessSecurity, RetryState, retryUntilDone, type KvLease } from '@omega/cell-state';
import pino from 'pino';
import { systemClock } from './clock.js';
import { parseSchedulerArgs, schedulerUsage, type SchedulerProcessConfig } from './flags.js';
import type { PlacementPolicy } from './policy.js';
import { seededRandom } from './random.js';
import { Scheduler } from './scheduler.js';
import { exposeSchedulerMetrics } from './scheduler-metrics.js';

/** Longest wait for the lease revocation at shutdown; past it the lease just runs out its TTL. */
const REVOKE_TIMEOUT_MS = 5_000;

export interface SchedulerProcessOptions {
  /** Program name for messages; default `omega-scheduler-<kind>`. */
  readonly program?: string;
  /** Extra usage lines (the entry point's own flags) appended to `--help`. */
  readonly usage?: string;
}

/**
 * Runs one scheduler instance until SIGTERM or SIGINT, then exits the process. `argv` are the
 * shared flags (see `schedulerUsage`); entry points remove their own policy flags first.
 */
export async function runSchedulerProcess(policy: PlacementPolicy, argv: readonly string[], options: SchedulerProcessOptions = {}): Promise<never> {
  const program = options.program ?? `omega-scheduler-${policy.kind}`;
  let config: SchedulerProcessConfig | 'help';
  try {
    config = parseSchedulerArgs(argv, policy.kind);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`${program}: ${error.message}\n(see ${program} --help)\n`);
    process.exit(2);
  }
  if (config === 'help') {
    process.stdout.write(schedulerUsage(program) + (options.usage ?? ''));
    process.exit(0);
  }

  // A supervisor without setpriv's parent-death signal (see omega dev) is watched this way.

  exitWithParent();
  hideTlsIpServernameWarning();

  const logger = pino({ level: config.logLevel, base: { program, scheduler: config.name, pid: process.pid } });
  logProcessSecurity(logger, config.security);
  const kv = new EtcdKv({
    endpoints: config.etcd,
    limits: { ...ETCD_DEFAULT_LIMITS, maxTxnOps: config.maxTxnOps },
    logger,
    // Under etcd's roles this identity may read only its cells' prefixes.
    probeKey: new CellKeys(config.cell).root,
    ...(config.security.mode === 'tls' ? { tls: config.security.identity } : {}),
  });
  const cell = new Cell(kv, config.cell, { logger });
  const mirror = cell.mirror();
  // Served from the start, so a scheduler waiting for etcd can be seen waiting.
  const metrics = config.metricsListen === undefined ? undefined : new PrometheusMetrics({ labels: { scheduler: config.name } });
  let metricsServer: MetricsServer | undefined;
  if (metrics !== undefined && config.metricsListen !== undefined) {
    exposeMirrorMetrics(metrics, mirror, kv, cell.keys);
    try {
      metricsServer = await startMetricsServer(metrics, config.metricsListen);
    } catch (error) {
      process.stderr.write(`${program}: --metrics-listen ${config.metricsListen}: ${(error as Error).message}\n`);
      process.exit(2);
    }
    logger.info({ url: metricsServer.url }, 'metrics served');
  }
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal; exiting at once');
      process.exit(1);
    }
    logger.info({ signal }, 'stopping');
    controller.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  // Startup: the store may not be up yet. Retry until it answers or we are told to stop; only
  // what retrying cannot fix ends the process: a request the store refuses as malformed or as not
  // allowed for this identity (configuration problems). (The rule's other case, an invalid record, is thrown by writes that
  // validate one; neither the first list nor a lease grant writes a record.)
  const grant = (): Promise<KvLease> => kv.grantLease(config.leaseTtlSeconds, { autoKeepAlive: true });
  const reach = new RetryState(logger);
  const retry = { sleep: systemClock.sleep, state: reach, signal: controller.signal, isFatal: isPermanentStoreError, fields: { etcd: config.etcd } };
  let lease: KvLease | undefined;
  try {
    const listed = await retryUntilDone(() => mirror.start(), retry);
    lease = listed === undefined ? undefined : (await retryUntilDone(grant, retry))?.value;
  } catch (error) {
    logger.fatal({ err: error, etcd: config.etcd }, 'the cell store refused the scheduler');
    await mirror.stop().catch(() => undefined);
    await kv.close().catch(() => undefined);
    logger.flush?.();
    process.exit(1);
  }
  if (lease === undefined) {
    logger.info('stopped before the cell store was reached');
    await mirror.stop().catch(() => undefined);
    await kv.close().catch(() => undefined);
    logger.flush?.();
    process.exit(0);
  }

  const scheduler = new Scheduler({
    cell,
    mirror,
    policy,
    name: config.name,
    lease,
    leases: grant,
    logger,
    random: seededRandom(config.seed),
    settings: config.settings,
    ...(metrics === undefined ? {} : { metrics }),
  });
  if (metrics !== undefined) exposeSchedulerMetrics(metrics, () => scheduler.metrics());

  logger.info(
    {
      cell: config.cell,
      etcd: config.etcd,
      lease: lease.id,
      leaseTtlSeconds: config.leaseTtlSeconds,
      seed: config.seed,
      settings: config.settings,
      transactionMode: scheduler.defaultTransactionMode,
    },
    'scheduler started',
  );
  let code = 0;
  try {
    await scheduler.run(controller.signal);
  } catch (error) {
    logger.fatal({ err: error }, 'scheduler failed');
    code = 1;
  }
  logger.info({ metrics: scheduler.metrics() }, 'scheduler stopped');
  scheduler.close();
  await mirror.stop().catch((error: unknown) => logger.warn({ err: error }, 'mirror stop failed'));
  const held = scheduler.currentLease;
  if (held !== undefined) await revokeWithin(held, REVOKE_TIMEOUT_MS).catch((error: unknown) => logger.warn({ err: error }, 'lease revoke failed'));
  await kv.close().catch((error: unknown) => logger.warn({ err: error }, 'store close failed'));
  await metricsServer?.close();
  logger.flush?.();
  process.exit(code);
}

/** Revokes `lease`, giving up after `ms` (the store may be down at shutdown; the TTL then ends it). */
async function revokeWithin(lease: KvLease, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lease revoke did not finish within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([lease.revoke(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
