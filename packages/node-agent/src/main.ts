#!/usr/bin/env node
/**
 * `omega-agent`: the node agent's entry point. The only place a logger is created.
 *
 * Exit status: 0 after a clean stop (SIGTERM / SIGINT), 1 when it cannot run (no usable cgroups,
 * the task supervisor binary not built, an invalid registration), 2 for a bad flag (the message names it). An unreachable etcd is not a
 * reason to exit: the agent retries until it answers.
 */
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { Cell, CellKeys, EtcdKv, FlagError, exitWithParent, hideTlsIpServernameWarning, logProcessSecurity, machineId, taskId, type MachineRegistration } from '@omega/cell-state';
import { Agent } from './agent.js';
import type { CgroupDriver } from './cgroup-driver.js';
import { detectCgroupDriver } from './cgroup-detect.js';
import { parseAgentArgs, USAGE, type AgentConfig } from './config.js';
import { HollowExecutor, hollowMachines } from './hollow.js';
import { startLogServer, type LogServer } from './log-server.js';
import { exposeAgentMetrics } from './agent-metrics.js';
import { PrometheusMetrics, startMetricsServer, type MetricsServer } from '@omega/metrics';
import { taskLogPaths } from './task-paths.js';
import { defaultSupervisorPath, SUPERVISOR_OVERHEAD_BYTES, SupervisorMissingError } from './supervisor-command.js';
import { ProcessExecutor } from './task-runner.js';
import { detectIsolation, isolationAttributes } from './isolation-detect.js';
import { allowedUserAttributes } from './named-users.js';
import { dataDisk, describeDataDisk, isJournalLessExt4 } from './data-disk.js';

async function main(): Promise<number> {
  let config: AgentConfig;
  try {
    config = parseAgentArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`omega-agent: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Before anything else: a real agent without its task supervisor could only fail every task.
  let supervisorPath: string | undefined;
  if (config.hollow === 0) {
    try {
      supervisorPath = defaultSupervisorPath();
    } catch (error) {
      if (!(error instanceof SupervisorMissingError)) throw error;
      process.stderr.write(`omega-agent: ${error.message}\n`);
      return 1;
    }
  }
  // A supervisor without setpriv's parent-death signal (see omega dev) is watched this way.
  exitWithParent();
  hideTlsIpServernameWarning();
  const logger = pino({ level: config.logLevel, base: { pid: process.pid, cell: config.cell } });
  logProcessSecurity(logger, config.security);
  for (const note of config.notes) logger.warn(note);

  let cgroups: CgroupDriver | undefined;
  if (config.hollow === 0) {
    // Where every task start creates its files: named, and the one slow kind called out.
    const disk = dataDisk(config.dataDir);
    const fields = { dataDir: config.dataDir, fileSystem: describeDataDisk(disk) };
    if (isJournalLessExt4(disk)) logger.warn(fields, 'the data dir is on ext4 without a journal: each file a task start creates scans the inodes deleted in the minutes before (ended tasks\' files, expired task directories), which costs CPU per task under churn; put --data-dir on a journaled file system');
    else logger.info(fields, 'data dir');
    if (!config.enforcement) {
      logger.warn({ enforcementDisabled: true }, 'ENFORCEMENT DISABLED (--no-enforcement): tasks run WITHOUT cpu, memory or pids limits; the machine record says enforcementDisabled');
    } else {
      // Marked in the data dir: the sweep at start touches only cgroups this agent created.
      const detection = await detectCgroupDriver({ root: config.cgroupRoot, parent: config.cgroupParent, owner: { dataDir: config.dataDir, machineId: config.machineId, logger } });
      if (detection.driver === undefined) {
        logger.fatal({ problem: detection.problem }, 'no usable cgroups: refusing to run tasks without limits (pass --no-enforcement to run without them)');
        return 1;
      }
      cgroups = detection.driver;
      logger.info({ version: cgroups.version, root: cgroups.root, parent: config.cgroupParent }, 'cgroups detected');
    }
  }

  const kv = new EtcdKv({
    endpoints: config.etcdEndpoints,
    logger,
    // Under etcd's roles this identity may read only its cell's prefixes.
    probeKey: new CellKeys(config.cell).root,
    ...(config.security.mode === 'tls' ? { tls: config.security.identity } : {}),
  });
  const cell = new Cell(kv, config.cell, { logger });
  const agentName = `omega-agent ${hostname()} pid ${process.pid}`;
  let agent: Agent;
  let logServer: LogServer | undefined;
  if (config.hollow > 0) {
    agent = new Agent({
      cell,
      machines: hollowMachines(config.hollowPrefix, config.hollow, config.capacity, config.attributes),
      executor: ({ reporter, logger: log }) => new HollowExecutor(reporter, { logger: log }),
      logger,
      agentName,
      heartbeatTtlSeconds: config.heartbeatTtlSeconds,
      fenceAfterMs: config.fenceAfterMs,
    });
  } else {
    const id = machineId(config.machineId);
    if (config.logListen !== undefined) {
      const { dataDir } = config;
      logServer = await startLogServer({
        dataDir,
        host: config.logListen.host,
        port: config.logListen.port,
        logPathFor: (job, index, attempt, stream) => taskLogPaths(dataDir, taskId(job, index), attempt)[stream],
        logger,
        // HTTPS, only for the API's client certificate with a grant for the one log; plain HTTP only with --insecure.
        ...(config.security.mode === 'tls' ? { tls: { identity: config.security.identity, machineId: id } } : {}),
      });
      logger.info({ logAddress: logServer.address }, 'serving task logs');
    }
    // Once, before registering: the machine record says what isolation its tasks get (jobs select
    // machines by attributes), and these attributes win over --attr ones of the same name.
    const isolation = await detectIsolation({ supervisorPath: supervisorPath ?? defaultSupervisorPath(), mode: config.isolation });
    logger.info({ mode: config.isolation, found: isolation.found, pidNamespace: isolation.use.pid, networkNone: isolation.use.networkNone, ...(isolation.problem === undefined ? {} : { problem: isolation.problem }) }, 'task isolation');
    const registration: MachineRegistration = { id, capacity: config.capacity, attributes: { ...config.attributes, ...isolationAttributes(isolation.use), ...allowedUserAttributes(config.allowUsers) }, enforcementDisabled: cgroups === undefined };
    agent = new Agent({
      cell,
      machines: [registration],
      executor: async ({ reporter, logger: log }) => {
        const executor = new ProcessExecutor({
          dataDir: config.dataDir,
          machineId: id,
          reporter,
          cgroups,
          ...(config.taskUser === undefined ? {} : { taskUser: config.taskUser }),
          ...(config.taskUids === undefined ? {} : { taskUids: config.taskUids }),
          ...(config.allowUsers.length === 0 ? {} : { allowUsers: config.allowUsers }),
          killGraceMs: config.killGraceMs,
          maxConcurrentChecks: config.maxConcurrentChecks,
          taskRetentionMs: config.taskRetentionMs,
          // Read when a task of a job with secrets starts; the values go only into its environment.
          secretEnv: (job) => cell.readSecretEnv(job),
          keepAttempts: config.keepAttempts,
          ...(supervisorPath === undefined ? {} : { supervisorPath }),
          logCapBytes: config.logCapBytes,
          diskLimitBytes: config.diskLimitBytes,
          diskMaxEntries: config.diskMaxEntries,
          diskCheckIntervalMs: config.diskCheckIntervalMs,
          isolation: isolation.use,
          logger: log.child({ machineId: id }),
        });
        await executor.init();
        return executor;
      },
      logger: logger.child({ machineId: id }),
      agentName,
      heartbeatTtlSeconds: config.heartbeatTtlSeconds,
      fenceAfterMs: config.fenceAfterMs,
      ...(logServer === undefined ? {} : { logAddress: logServer.address }),
    });
    logger.info({ machineId: id, capacity: config.capacity, dataDir: config.dataDir, taskUser: config.taskUids !== undefined ? `a uid per task from ${config.taskUids.first}-${config.taskUids.last}` : (config.taskUser?.name ?? 'agent user'), supervisor: supervisorPath, allowUsers: config.allowUsers, logCapBytes: config.logCapBytes, diskLimitBytes: config.diskLimitBytes, diskMaxEntries: config.diskMaxEntries, diskCheckIntervalMs: config.diskCheckIntervalMs, supervisorOverheadBytes: SUPERVISOR_OVERHEAD_BYTES }, 'starting agent');
  }

  // Served before the agent starts: an agent waiting for etcd can be seen waiting.
  let metricsServer: MetricsServer | undefined;
  if (config.metricsListen !== undefined) {
    const metrics = new PrometheusMetrics({ labels: { agent: config.hollow > 0 ? `${config.hollowPrefix}*` : config.machineId } });
    exposeAgentMetrics(metrics, agent, cell, { hollow: config.hollow > 0 });
    try {
      metricsServer = await startMetricsServer(metrics, config.metricsListen);
    } catch (error) {
      logger.fatal({ err: error, listen: config.metricsListen }, 'could not serve metrics (--metrics-listen)');
      await logServer?.close().catch(() => undefined);
      await kv.close().catch(() => undefined);
      return 2;
    }
    logger.info({ url: metricsServer.url }, 'metrics served');
    process.stdout.write(`omega-agent metrics on ${metricsServer.url}\n`);
  }

  // Signals are handled from the start: an agent still waiting for etcd stops cleanly too.
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, drain: config.drainOnExit }, 'stopping agent');
      void shutdown(agent, kv, logger, config.drainOnExit)
        .then(async (code) => {
          await logServer?.close().catch(() => undefined);
          await metricsServer?.close();
          return code;
        })
        .then(resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  try {
    // Waits (retrying with backoff) for as long as etcd does not answer; only what retrying
    // cannot fix ends the process.
    await agent.start();
  } catch (error) {
    logger.fatal({ err: error }, 'agent could not start');
    await logServer?.close().catch(() => undefined);
    await kv.close().catch(() => undefined);
    return 1;
  }
  return await stopped;
}

async function shutdown(agent: Agent, kv: EtcdKv, logger: Logger, drain: boolean): Promise<number> {
  try {
    await agent.stop({ drain });
    await kv.close();
    return 0;
  } catch (error) {
    logger.error({ err: error }, 'agent did not stop cleanly');
    return 1;
  }
}

main().then(
  (code) => {
    // Let pino flush, then leave even if a library kept a handle open.
    process.exitCode = code;
    setTimeout(() => process.exit(code), 200).unref();
  },
  (error: unknown) => {
    process.stderr.write(`omega-agent: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
