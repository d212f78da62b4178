/**
 * Starts a single-member etcd for tests, benchmarks and local cells, configured the way Omega
 * needs it (see DESIGN.md, "Pitfalls"): a raised `--max-txn-ops` so large commits fit, a bounded
 * request size, revision-based auto-compaction and a bounded snapshot count so the database does
 * not grow without end, a 4 GiB backend quota, zap logging at warn level.
 *
 * Guarantees: `startEtcd` resolves only once the member answers `/health` with `"true"`; a member
 * that dies while starting rejects with the tail of its log; a member never outlives the Node
 * process that started it (SIGKILL on exit); `stop()` is idempotent and removes the data directory
 * only when the launcher created it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { KvLimits } from './kv.js';

/** How to get etcd; the text of {@link EtcdNotFoundError} and of `scripts/ensure-etcd.mjs`. */
export const ETCD_INSTALL_HINT =
  'on Debian/Ubuntu run `apt-get install etcd-server`; elsewhere install etcd 3.4+ from https://etcd.io and put it on PATH or set OMEGA_ETCD';

/** No etcd binary where the launcher looked; the message says how to install one. */
export class EtcdNotFoundError extends Error {
  constructor(
    /** The paths that were tried, in order. */
    readonly searched: readonly string[],
  ) {
    super(`etcd was not found: ${ETCD_INSTALL_HINT}`);
    this.name = 'EtcdNotFoundError';
  }
}

/** etcd did not become healthy: it exited, or did not answer in time. Carries its last log lines. */
export class EtcdStartError extends Error {
  constructor(
    message: string,
    readonly logTail: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(logTail.length > 0 ? `${message}; etcd's last log lines:\n${logTail.join('\n')}` : message, options);
    this.name = 'EtcdStartError';
  }
}

export interface StartEtcdOptions {
  /** Data directory to use and keep; default a fresh temporary one, removed by `stop()`. */
  readonly dataDir?: string;
  /** `--max-txn-ops`; default 10,000 (etcd's own default is 128). */
  readonly maxTxnOps?: number;
  /** `--max-request-bytes`; default 8 MiB (etcd's own default is 1.5 MiB). */
  readonly maxRequestBytes?: number;
  /** `--auto-compaction-retention` in revision mode; default `'1000'` revisions. */
  readonly autoCompactionRetention?: string;
  /** `--snapshot-count`; default 10,000. */
  readonly snapshotCount?: number;
  /** `--quota-backend-bytes`; default 4 GiB. */
  readonly quotaBackendBytes?: number;
  /** Client and peer ports; default free ones. Give both to restart a member where it was. */
  readonly clientPort?: number;
  readonly peerPort?: number;
  readonly logger?: Logger;
  /** The binary; default: `OMEGA_ETCD`, then `etcd` on PATH, then /usr/bin and /usr/local/bin. */
  readonly etcdPath?: string;
  /** How long to wait for `/health`; default 20 s. */
  readonly startTimeoutMs?: number;
  /**
   * Run the member in its own process group, so a Ctrl-C on the terminal reaches only the parent,
   * which then stops etcd last, after the processes that still need it. Default false.
   */
  readonly detached?: boolean;
}

/** A running member. `stop()` may be called any number of times. */
export interface RunningEtcd {
  readonly endpoints: readonly string[];
  readonly clientUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** The limits it was started with, for `EtcdKv`'s options. */
  readonly limits: KvLimits;
  readonly pid: number;
  stop(): Promise<void>;
}

const ETCD_DEFAULT_MAX_TXN_OPS = 128;
const START_ATTEMPTS = 3;
const LOG_TAIL_LINES = 50;
const STOP_GRACE_MS = 5_000;

/**
 * Finds the etcd binary: `etcdPath` when given (and only it), else `OMEGA_ETCD`, `etcd` on PATH,
 * /usr/bin/etcd, /usr/local/bin/etcd. Resolves to the first executable file, or undefined.
 */
export async function findEtcd(options: { etcdPath?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string | undefined> {
  for (const candidate of etcdCandidates(options)) {
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Starts one etcd member on loopback and resolves once it is healthy. Throws
 * {@link EtcdNotFoundError} without a binary and {@link EtcdStartError} if it does not come up
 * (retrying up to 3 times with new ports when a port was taken in the meantime).
 */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<RunningEtcd> {
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'etcd-launcher' });
  const binary = await findEtcd(options.etcdPath === undefined ? {} : { etcdPath: options.etcdPath });
  if (binary === undefined) throw new EtcdNotFoundError(etcdCandidates(options));
  const limits: KvLimits = {
    maxTxnOps: options.maxTxnOps ?? 10_000,
    maxRequestBytes: options.maxRequestBytes ?? 8 * 1024 * 1024,
  };
  const fixedPorts = options.clientPort !== undefined && options.peerPort !== undefined;
  const attempts = fixedPorts ? 1 : START_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    const ownDataDir = options.dataDir === undefined;
    const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'omega-etcd-')));
    const clientPort = options.clientPort ?? (await freePort());
    const peerPort = options.peerPort ?? (await freePort());
    try {
      const running = await launch(binary, { ...options, dataDir, clientPort, peerPort, limits, ownDataDir });
      if (limits.maxTxnOps !== ETCD_DEFAULT_MAX_TXN_OPS) {
        log.info(
          { clientUrl: running.clientUrl, maxTxnOps: limits.maxTxnOps, maxRequestBytes: limits.maxRequestBytes },
          `etcd started with --max-txn-ops raised from ${ETCD_DEFAULT_MAX_TXN_OPS} to ${limits.maxTxnOps}`,
        );
      }
      return running;
    } catch (error) {
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
      const portTaken = error instanceof EtcdStartError && error.logTail.some((line) => line.includes('address already in use'));
      if (!portTaken || attempt >= attempts) throw error;
      log.warn({ attempt, clientPort, peerPort }, 'etcd port was taken; retrying on new ports');
    }
  }
}

interface LaunchSettings extends StartEtcdOptions {
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly limits: KvLimits;
  readonly ownDataDir: boolean;
}

async function launch(binary: string, settings: LaunchSettings): Promise<RunningEtcd> {
  const clientUrl = `http://127.0.0.1:${settings.clientPort}`;
  const peerUrl = `http://127.0.0.1:${settings.peerPort}`;
  const args = [
    '--name', 'omega',
    '--data-dir', settings.dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `omega=${peerUrl}`,
    '--max-txn-ops', String(settings.limits.maxTxnOps),
    '--max-request-bytes', String(settings.limits.maxRequestBytes),
    '--auto-compaction-mode', 'revision',
    '--auto-compaction-retention', settings.autoCompactionRetention ?? '1000',
    '--snapshot-count', String(settings.snapshotCount ?? 10_000),
    '--quota-backend-bytes', String(settings.quotaBackendBytes ?? 4 * 1024 * 1024 * 1024),
    '--logger', 'zap',
    '--log-level', 'warn',
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: settings.detached === true });
  const tail = new LineTail(LOG_TAIL_LINES);
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => tail.push(chunk));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
  } catch (error) {
    throw new EtcdStartError(`could not run ${binary}`, [], { cause: error });
  }
  track(child);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(child);
      untrack(child);
      if (settings.ownDataDir) await rm(settings.dataDir, { recursive: true, force: true });
    })());
  try {
    await waitHealthy(child, clientUrl, settings.startTimeoutMs ?? 20_000, tail);
  } catch (error) {
    await terminate(child);
    untrack(child);
    throw error;
  }
  return {
    endpoints: [clientUrl],
    clientUrl,
    clientPort: settings.clientPort,
    peerPort: settings.peerPort,
    dataDir: settings.dataDir,
    limits: settings.limits,
    pid: child.pid as number,
    stop,
  };
}

async function waitHealthy(child: ChildProcess, clientUrl: string, timeoutMs: number, tail: LineTail): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      throw new EtcdStartError(`etcd exited while starting (code ${child.exitCode}, signal ${child.signalCode})`, tail.lines());
    }
    try {
      const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await response.json()) as { health?: unknown };
      if (body.health === 'true') return;
      lastError = new Error(`/health answered ${JSON.stringify(body)}`);
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new EtcdStartError(`etcd was not healthy at ${clientUrl} after ${timeoutMs} ms`, tail.lines(), { cause: lastError });
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
async function terminate(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_GRACE_MS))),
  ]);
  clearTimeout(timer);
  if (graceOver && !hasExited(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

// ---- members die with this process -----------------------------------------------------------

const members = new Set<ChildProcess>();
let exitHandlerInstalled = false;

function track(child: ChildProcess): void {
  members.add(child);
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  // 'exit' handlers must be synchronous: a signal is all that can be sent from here.
  process.on('exit', () => {
    for (const member of members) if (!hasExited(member)) member.kill('SIGKILL');
  });
}

function untrack(child: ChildProcess): void {
  members.delete(child);
}

// ---- helpers --------------------------------------------------------------------------------

function etcdCandidates(options: { etcdPath?: string; env?: NodeJS.ProcessEnv }): string[] {
  if (options.etcdPath !== undefined) return [options.etcdPath];
  const env = options.env ?? process.env;
  const fromPath = (env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir.length > 0)
    .map((dir) => join(dir, 'etcd'));
  const fromEnv = env.OMEGA_ETCD !== undefined && env.OMEGA_ETCD.length > 0 ? [env.OMEGA_ETCD] : [];
  return [...new Set([...fromEnv, ...fromPath, '/usr/bin/etcd', '/usr/local/bin/etcd'])];
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port that was free a moment ago (the OS picks it); another process may take it before the caller binds it (startEtcd retries such a clash). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last `capacity` lines written to a stream. */
class LineTail {
  private readonly buffer: string[] = [];
  private partial = '';

  constructor(private readonly capacity: number) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.buffer.push(line);
      if (this.buffer.length > this.capacity) this.buffer.shift();
    }
  }

  lines(): string[] {
    return this.partial.length > 0 ? [...this.buffer, this.partial] : [...this.buffer];
  }
}
