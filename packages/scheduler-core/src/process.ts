/**
 * `runSchedulerProcess(policy, argv)`: everything a scheduler process does around its policy,
 * shared by `omega-scheduler-batch` and `omega-scheduler-service`.
 *
 * ```
 *  flags ──► pino logger ──► EtcdKv ──► Cell ──► mirror.start() ──► lease ──► Scheduler.run()
 *                                                  SIGTERM / SIGINT ──► stop ──┘
 *     stop: no new work; a think in progress is dropped, a commit in flight finishes;
 *           stats published; mirror stopped; lease revoked (ownerships and stats go at once,
 *           so other instances take the jobs without waiting for a TTL); store closed; exit 0
 * ```
 *
 * Exit codes: 0 after a clean stop; 1 when the store could not be reached at startup or the
 * lease was lost (etcd unreachable past its TTL: this instance's jobs already belong to others);
 * 2 for a bad flag, with a message naming it. The only place that creates a logger.
 */
import { Cell, ETCD_DEFAULT_LIMITS, EtcdKv, FlagError, type KvLease } from '@omega/cell-state';
import pino from 'pino';
import { parseSchedulerArgs, schedulerUsage, type SchedulerProcessConfig } from './flags.js';
import type { PlacementPolicy } from './policy.js';
import { seededRandom } from './random.js';
import { Scheduler } from './scheduler.js';

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

  const logger = pino({ level: config.logLevel, base: { program, scheduler: config.name, pid: process.pid } });
  const kv = new EtcdKv({ endpoints: config.etcd, limits: { ...ETCD_DEFAULT_LIMITS, maxTxnOps: config.maxTxnOps }, logger });
  const cell = new Cell(kv, config.cell, { logger });
  const mirror = cell.mirror();
  let lease: KvLease;
  try {
    await mirror.start();
    lease = await kv.grantLease(config.leaseTtlSeconds, { autoKeepAlive: true });
  } catch (error) {
    logger.fatal({ err: error, etcd: config.etcd }, 'cannot reach the cell store');
    await mirror.stop().catch(() => undefined);
    await kv.close().catch(() => undefined);
    process.exit(1);
  }

  const scheduler = new Scheduler({
    cell,
    mirror,
    policy,
    name: config.name,
    lease,
    logger,
    random: seededRandom(config.seed),
    settings: config.settings,
  });
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
  if (scheduler.lostLease) code = 1;
  logger.info({ metrics: scheduler.metrics() }, 'scheduler stopped');
  scheduler.close();
  await mirror.stop().catch((error: unknown) => logger.warn({ err: error }, 'mirror stop failed'));
  if (!scheduler.lostLease) await lease.revoke().catch((error: unknown) => logger.warn({ err: error }, 'lease revoke failed'));
  await kv.close().catch((error: unknown) => logger.warn({ err: error }, 'store close failed'));
  logger.flush?.();
  process.exit(code);
}
