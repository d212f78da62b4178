/**
 * A whole cell as separate processes from `dist/` (the API server, batch and service schedulers,
 * one hollow node agent), each given every etcd endpoint, each a {@link CellProcess} the test
 * can kill, freeze and restart. The API listens on a fixed loopback port chosen here, so a
 * restarted API server is found at the same address.
 *
 * Plaintext (`--insecure`) unless `security` gives each process the flags of its identity (see
 * secure-etcd.ts: `processFlags(user)` without the `--etcd` part).
 */
import { freePort } from '@omega/cell-state';
import { CellProcess } from './cell-processes.js';
import { repoPath } from './processes.js';

export const API_MAIN = repoPath('packages/api/dist/main.js');
export const BATCH_MAIN = repoPath('packages/scheduler-batch/dist/main.js');
export const SERVICE_MAIN = repoPath('packages/scheduler-service/dist/main.js');
export const AGENT_MAIN = repoPath('packages/node-agent/dist/main.js');

export interface TestCellOptions {
  readonly endpoints: readonly string[];
  readonly cell: string;
  readonly logDir: string;
  readonly batchSchedulers: number;
  readonly serviceSchedulers: number;
  /** Hollow machines served by the one agent. */
  readonly machines: number;
  /** Per machine, e.g. `4` and `8Gi`. */
  readonly machineCpu: string;
  readonly machineMemory: string;
  /** The server's `--max-txn-ops`, for the schedulers. */
  readonly maxTxnOps: number;
  /** Scheduler lease TTL (default 10 s, the process default). */
  readonly leaseTtlSeconds?: number;
  /** Agent heartbeat TTL (default 10 s, the process default). */
  readonly heartbeatTtlSeconds?: number;
  /**
   * The security flags of the process acting as `user` (`omega-api`, `omega-scheduler`,
   * `omega-hollow`), e.g. `['--ca', .., '--cert', .., '--key', ..]`. Default: `['--insecure']`.
   */
  readonly security?: (user: string) => readonly string[];
}

export interface TestCell {
  readonly apiAddress: string;
  readonly api: CellProcess;
  readonly batch: readonly CellProcess[];
  readonly service: readonly CellProcess[];
  readonly agent: CellProcess;
  /** Every process, API first. */
  readonly all: readonly CellProcess[];
}

/** Creates the processes (started by {@link startTestCell}). */
export async function defineTestCell(options: TestCellOptions): Promise<TestCell> {
  const etcd = options.endpoints.join(',');
  const security = options.security ?? (() => ['--insecure']);
  const apiAddress = `127.0.0.1:${await freePort()}`;
  const api = new CellProcess({
    name: 'api',
    script: API_MAIN,
    args: [...security('omega-api'), '--etcd', etcd, '--cell', options.cell, '--listen', apiAddress, '--log-level', 'info'],
    ready: /omega-api listening on/,
    logDir: options.logDir,
  });
  const scheduler = (kind: 'batch' | 'service', i: number): CellProcess =>
    new CellProcess({
      name: `${kind}-${i}`,
      script: kind === 'batch' ? BATCH_MAIN : SERVICE_MAIN,
      args: [
        ...security('omega-scheduler'),
        '--etcd', etcd,
        '--cell', options.cell,
        '--name', `${kind}-${i}`,
        '--max-txn-ops', String(options.maxTxnOps),
        '--seed', String(1000 + i),
        '--log-level', 'info',
        ...(options.leaseTtlSeconds === undefined ? [] : ['--lease-ttl-s', String(options.leaseTtlSeconds)]),
      ],
      ready: /"msg":"scheduler started"/,
      logDir: options.logDir,
    });
  const batch = Array.from({ length: options.batchSchedulers }, (_, i) => scheduler('batch', i));
  const service = Array.from({ length: options.serviceSchedulers }, (_, i) => scheduler('service', i));
  const agent = new CellProcess({
    name: 'agent',
    script: AGENT_MAIN,
    args: [
      ...security('omega-hollow'),
      '--etcd', etcd,
      '--cell', options.cell,
      '--hollow', String(options.machines),
      '--cpu', options.machineCpu,
      '--memory', options.machineMemory,
      '--log-listen', 'none',
      '--log-level', 'info',
      ...(options.heartbeatTtlSeconds === undefined ? [] : ['--heartbeat-ttl', String(options.heartbeatTtlSeconds)]),
    ],
    ready: /"msg":"agent started"/,
    logDir: options.logDir,
  });
  return { apiAddress, api, batch, service, agent, all: [api, ...batch, ...service, agent] };
}

/** Starts every process and waits until each says it is up. */
export async function startTestCell(cell: TestCell, timeoutMs = 60_000): Promise<void> {
  await Promise.all(cell.all.map((p) => p.start({ timeoutMs })));
}
