#!/usr/bin/env node
/**
 * `omega-api`: the API server's entry point. The only place its logger is created.
 *
 * Exit status: 0 after a clean stop (SIGTERM / SIGINT), 1 when it cannot listen (address in
 * use), 2 for a bad flag (the message names it; a certificate file that is missing or wrong is
 * a bad flag). An unreachable etcd, at start or later, is not an exit: the server listens at
 * once and answers UNAVAILABLE until etcd answers.
 *
 * With `--ca/--cert/--key` the one identity (CN `omega-api`) is both its etcd client
 * certificate and its gRPC server certificate, and every call needs a bearer token; with
 * `--insecure` both are plaintext and no token is asked (every caller is admin).
 */
import { pino } from 'pino';
import { Cell, CellKeys, EtcdKv, FlagError, exitWithParent, hideTlsIpServernameWarning, logProcessSecurity } from '@omega/cell-state';
import { API_USAGE, parseApiArgs, type ApiConfig } from './config.js';
import { startApiServer, type ApiServer } from './server.js';
import { PrometheusMetrics, startMetricsServer, type MetricsServer } from '@omega/metrics';

async function main(): Promise<number> {
  let config: ApiConfig;
  try {
    config = parseApiArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`omega-api: ${error.message}\n\n${API_USAGE}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(API_USAGE);
    return 0;
  }
  // A supervisor without setpriv's parent-death signal (see omega dev) is watched this way.
  exitWithParent();
  hideTlsIpServernameWarning();
  const logger = pino({ level: config.logLevel, base: { pid: process.pid, cell: config.cell } });
  logProcessSecurity(logger, config.security);
  const tls = config.security.mode === 'tls' ? config.security.identity : undefined;
  // etcd3 retries a failed request; each attempt gets this deadline, and the call as a whole gets
  // it again as its budget (startApiServer's storeTimeoutMs), so nothing waits etcd3's default 30 s.
  const kv = new EtcdKv({
    endpoints: config.etcdEndpoints,
    logger,
    dialTimeoutMs: config.etcdTimeoutMs,
    // Under etcd's roles this identity may read only its cells' prefixes.
    probeKey: new CellKeys(config.cell).root,
    ...(tls === undefined ? {} : { tls }),
  });
  const cell = new Cell(kv, config.cell, { logger });
  const metrics = config.metricsListen === undefined ? undefined : new PrometheusMetrics({ labels: { component: 'api' } });
  let metricsServer: MetricsServer | undefined;
  if (metrics !== undefined && config.metricsListen !== undefined) {
    try {
      metricsServer = await startMetricsServer(metrics, config.metricsListen);
    } catch (error) {
      process.stderr.write(`omega-api: --metrics-listen ${config.metricsListen}: ${(error as Error).message}\n`);
      await kv.close().catch(() => undefined);
      return 2;
    }
    logger.info({ url: metricsServer.url }, 'metrics served');
  }

  let server: ApiServer;
  try {
    server = await startApiServer({
      cell,
      listen: config.listen,
      logger,
      storeTimeoutMs: config.etcdTimeoutMs,
      auth: tls === undefined ? 'none' : 'tokens',
      ...(tls === undefined ? {} : { tls }),
      ...(config.uiListen === undefined ? {} : { ui: { listen: config.uiListen } }),
      ...(metrics === undefined ? {} : { metrics }),
    });
  } catch (error) {
    logger.fatal({ err: error, listen: config.listen, etcd: config.etcdEndpoints }, 'API server could not start');
    await kv.close().catch(() => undefined);
    return 1;
  }
  // Parents (`omega dev`, tests) read the bound address from this line when they asked for port 0.
  process.stdout.write(`omega-api listening on ${server.address}\n`);
  if (server.ui !== undefined) process.stdout.write(`omega-api web UI on ${server.ui.url}\n`);
  if (metricsServer !== undefined) process.stdout.write(`omega-api metrics on ${metricsServer.url}\n`);

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping API server');
      server
        .close()
        .then(() => metricsServer?.close())
        .then(() => kv.close())
        .then(
          () => resolve(0),
          (error: unknown) => {
            logger.error({ err: error }, 'API server did not stop cleanly');
            resolve(1);
          },
        );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => {
    // Let pino flush, then leave even if a library kept a handle open.
    process.exitCode = code;
    setTimeout(() => process.exit(code), 200).unref();
  },
  (error: unknown) => {
    process.stderr.write(`omega-api: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
