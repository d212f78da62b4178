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
 *
 * `startEtcdCluster` starts several members forming one cluster (for high-availability tests): each
 * member can be killed, stopped, continued and restarted on its own data directory, and the
 * cluster can say which member leads (etcd's maintenance status, over its HTTP gateway, so no
 * client package is needed).
 *
 * With `tls`, the member serves clients over TLS only (`https://` client URLs) and requires a
 * client certificate signed by the given CA (`--client-cert-auth`): a client's CN is then its
 * etcd user once auth is enabled (see etcd-access.ts). Peer traffic stays plaintext `http://` on
 * loopback: the launcher only forms clusters of members on this host.
 *
 * Every member is spawned through util-linux's `setpriv --pdeathsig SIGKILL` when it is there:
 * the kernel then kills the member when the thread that started it dies, even by SIGKILL (a test
 * runner killed on a timeout), which no `exit` handler can catch.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { KvLimits } from './kv.js';
import type { TlsFiles } from './tls-identity.js';

/** How to get etcd; the text of {@link EtcdNotFoundError} and of `scripts/ensure-tools.mjs`. */
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
  /** Where that fresh temporary data directory is made; default the OS's (`TMPDIR`, else /tmp). */
  readonly tempParent?: string;
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
  /**
   * Serve clients over TLS with client-certificate authentication: `caFile` is the CA that
   * client certificates must be signed by (`--trusted-ca-file`, `--client-cert-auth`),
   * `certFile` / `keyFile` the member's own certificate (`--cert-file`, `--key-file`; it needs
   * SAN 127.0.0.1, and clientAuth too: the launcher presents it to check `/health`). Default:
   * plaintext `http://` with no client authentication.
   */
  readonly tls?: TlsFiles;
}

/** A running member. `stop()` may be called any number of times. */
export interface RunningEtcd {
  /** Its client URL (`https://` when started with `tls`). */
  readonly endpoints: readonly string[];
  readonly clientUrl: string;
  /** The TLS files it was started with; undefined for a plaintext member. */
  readonly tls?: TlsFiles;
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
    const dataDir = options.dataDir ?? (await mkdtemp(join(options.tempParent ?? tmpdir(), 'omega-etcd-')));
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
  const clientUrl = `${settings.tls === undefined ? 'http' : 'https'}://127.0.0.1:${settings.clientPort}`;
  const http = memberHttp(settings.tls);
  const peerUrl = `http://127.0.0.1:${settings.peerPort}`;
  const args = memberArgs({
    name: 'omega',
    dataDir: settings.dataDir,
    clientUrl,
    peerUrl,
    initialCluster: `omega=${peerUrl}`,
    settings,
  });
  const { child, tail } = await spawnMember(binary, args, settings.detached === true);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(child);
      untrack(child);
      if (settings.ownDataDir) await rm(settings.dataDir, { recursive: true, force: true });
    })());
  try {
    await waitHealthy(child, clientUrl, settings.startTimeoutMs ?? 20_000, tail, http);
  } catch (error) {
    await terminate(child);
    untrack(child);
    throw error;
  }
  return {
    endpoints: [clientUrl],
    clientUrl,
    ...(settings.tls === undefined ? {} : { tls: settings.tls }),
    clientPort: settings.clientPort,
    peerPort: settings.peerPort,
    dataDir: settings.dataDir,
    limits: settings.limits,
    pid: child.pid as number,
    stop,
  };
}

/** The flags every member gets (see the module header); cluster-specific ones come from the caller. */
function memberArgs(member: {
  name: string;
  dataDir: string;
  clientUrl: string;
  peerUrl: string;
  initialCluster: string;
  clusterToken?: string;
  settings: Omit<StartEtcdOptions, 'maxTxnOps' | 'maxRequestBytes'> & { readonly limits: KvLimits };
}): string[] {
  const { settings } = member;
  return [
    '--name', member.name,
    '--data-dir', member.dataDir,
    '--listen-client-urls', member.clientUrl,
    '--advertise-client-urls', member.clientUrl,
    '--listen-peer-urls', member.peerUrl,
    '--initial-advertise-peer-urls', member.peerUrl,
    '--initial-cluster', member.initialCluster,
    ...(member.clusterToken === undefined ? [] : ['--initial-cluster-token', member.clusterToken, '--initial-cluster-state', 'new']),
    '--max-txn-ops', String(settings.limits.maxTxnOps),
    '--max-request-bytes', String(settings.limits.maxRequestBytes),
    '--auto-compaction-mode', 'revision',
    '--auto-compaction-retention', settings.autoCompactionRetention ?? '1000',
    '--snapshot-count', String(settings.snapshotCount ?? 10_000),
    '--quota-backend-bytes', String(settings.quotaBackendBytes ?? 4 * 1024 * 1024 * 1024),
    '--logger', 'zap',
    '--log-level', 'warn',
    ...(settings.tls === undefined
      ? []
      : ['--cert-file', settings.tls.certFile, '--key-file', settings.tls.keyFile, '--trusted-ca-file', settings.tls.caFile, '--client-cert-auth']),
  ];
}

/**
 * How the launcher talks to a member's HTTP endpoints (`/health`, the v3 JSON gateway): GET, or
 * POST `{}` with `post`; resolves the JSON body of a 2xx answer. Plain fetch, or HTTPS presenting
 * the member's own certificate when it serves TLS.
 */
type MemberHttp = (url: string, timeoutMs: number, post?: boolean) => Promise<unknown>;

function memberHttp(tls: TlsFiles | undefined): MemberHttp {
  if (tls === undefined) {
    return async (url, timeoutMs, post = false) => {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), ...(post ? { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
      // /health answers 503 with {"health":"false"}: read that body too.
      if (!response.ok && !url.endsWith('/health')) throw new Error(`${url} answered HTTP ${response.status}`);
      return response.json();
    };
  }
  // Read once: a missing file fails the start here, with the file named, not as a timeout.
  let material: { ca: Buffer; cert: Buffer; key: Buffer };
  try {
    material = { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  } catch (error) {
    throw new EtcdStartError(`cannot read etcd's TLS files: ${(error as Error).message}`, [], { cause: error });
  }
  return (url, timeoutMs, post = false) =>
    new Promise((resolve, reject) => {
      const options = { ...material, timeout: timeoutMs, method: post ? 'POST' : 'GET', ...(post ? { headers: { 'content-type': 'application/json' } } : {}) };
      const request = httpsRequest(url, options, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          if ((status < 200 || status > 299) && !url.endsWith('/health')) return reject(new Error(`${url} answered HTTP ${status}: ${body.slice(0, 200)}`));
          try {
            resolve(JSON.parse(body));
          } catch (error) {
            reject(error);
          }
        });
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end(post ? '{}' : undefined);
    });
}

/** Spawns one member (bound to this thread's life when possible) and collects its log tail. */
async function spawnMember(binary: string, args: readonly string[], detached: boolean): Promise<{ child: ChildProcess; tail: LineTail }> {
  const command = dieWithParent(binary, args);
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'ignore', 'pipe'], detached });
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
  return { child, tail };
}

async function waitHealthy(child: ChildProcess, clientUrl: string, timeoutMs: number, tail: LineTail, http: MemberHttp): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      throw new EtcdStartError(`etcd exited while starting (code ${child.exitCode}, signal ${child.signalCode})`, tail.lines());
    }
    try {
      const body = (await http(`${clientUrl}/health`, 1_000)) as { health?: unknown };
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

// ---- clusters ---------------------------------------------------------------------------------

/** Options of {@link startEtcdCluster}: those of {@link startEtcd} that apply to every member. */
export interface StartEtcdClusterOptions
  extends Pick<StartEtcdOptions, 'maxTxnOps' | 'maxRequestBytes' | 'autoCompactionRetention' | 'snapshotCount' | 'quotaBackendBytes' | 'logger' | 'etcdPath' | 'startTimeoutMs' | 'tls'> {
  /** How many members; default 3. An odd number survives the loss of (members - 1) / 2 of them. */
  readonly members?: number;
}

/** The signals a test may send a member: kill it outright, freeze it, or let it go on. */
export type EtcdMemberSignal = 'SIGKILL' | 'SIGSTOP' | 'SIGCONT';

/** What one member says of itself (etcd's `Maintenance.Status`); ids are decimal strings. */
export interface EtcdMemberStatus {
  readonly memberId: string;
  /** The leader this member follows; `'0'` while it knows none. */
  readonly leaderId: string;
  readonly raftTerm: string;
  readonly raftIndex: string;
  readonly dbSizeBytes: number;
  readonly version: string;
}

/** One member of a {@link RunningEtcdCluster}. Ports and data directory stay the same across restarts. */
export interface EtcdClusterMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** The current process; undefined while the member is down (killed and not restarted). */
  readonly pid: number | undefined;
  /** True while its process exists (a SIGSTOPped member is still running). */
  isRunning(): boolean;
  /**
   * Sends `signal`. SIGKILL resolves once the process is gone (the member stays down until
   * {@link restart}); SIGSTOP and SIGCONT resolve at once. A member that is down ignores it.
   */
  kill(signal: EtcdMemberSignal): Promise<void>;
  /**
   * Starts the member again on its own data directory and ports, so it rejoins as the member it
   * was (etcd reads its identity from the data directory and ignores the initial-cluster flags).
   * A running member is SIGKILLed first. Resolves once it answers `/health` (it has a leader and
   * the cluster a quorum); rejects with {@link EtcdStartError} if it does not within the start
   * timeout or exits (retried while its port is briefly taken).
   */
  restart(): Promise<void>;
  /** Its maintenance status; rejects when it does not answer within `timeoutMs` (default 1 s). */
  status(timeoutMs?: number): Promise<EtcdMemberStatus>;
  /** True when `/health` answers `"true"` within `timeoutMs` (default 1 s). */
  healthy(timeoutMs?: number): Promise<boolean>;
}

/** A multi-member cluster. `stop()` may be called any number of times and removes the data directories. */
export interface RunningEtcdCluster {
  /** Every member's client URL, for `--etcd a,b,c` and `EtcdKv`. */
  readonly endpoints: readonly string[];
  readonly members: readonly EtcdClusterMember[];
  readonly limits: KvLimits;
  /**
   * The member that leads, as the answering members see it: undefined when none answers, they
   * name no leader, or they disagree (an election in progress). Never throws.
   */
  leader(timeoutMs?: number): Promise<EtcdClusterMember | undefined>;
  /** The members the cluster lists (etcd's `Cluster.MemberList`, asked of any answering member). */
  memberList(timeoutMs?: number): Promise<readonly { readonly id: string; readonly name: string; readonly clientUrls: readonly string[] }[]>;
  stop(): Promise<void>;
}

const MEMBER_RESTART_ATTEMPTS = 10;

/**
 * Starts a cluster of `members` etcd members (default 3) on free loopback ports, each with its
 * own temporary data directory and the flags {@link startEtcd} uses, and resolves once every
 * member answers `/health`. Throws {@link EtcdNotFoundError} without a binary and
 * {@link EtcdStartError} when the cluster does not come up (retried up to 3 times with new ports
 * when a port was taken in the meantime). Every member dies with the process that started it.
 * With `tls` every member serves clients as {@link startEtcd} does with it (peers stay
 * plaintext on loopback); `status()`, `leader()` and `memberList()` use etcd's JSON gateway,
 * which refuses certificates with a CN once auth is enabled: they work until then.
 */
export async function startEtcdCluster(options: StartEtcdClusterOptions = {}): Promise<RunningEtcdCluster> {
  const count = options.members ?? 3;
  if (!Number.isSafeInteger(count) || count < 1 || count > 9) throw new RangeError(`members: must be an integer from 1 to 9, got ${count}`);
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'etcd-launcher' });
  const binary = await findEtcd(options.etcdPath === undefined ? {} : { etcdPath: options.etcdPath });
  if (binary === undefined) throw new EtcdNotFoundError(etcdCandidates(options));
  const limits: KvLimits = {
    maxTxnOps: options.maxTxnOps ?? 10_000,
    maxRequestBytes: options.maxRequestBytes ?? 8 * 1024 * 1024,
  };
  const settings = { ...options, limits };
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  // Unreadable TLS files fail here, before any data directory is made.
  memberHttp(options.tls);
  for (let attempt = 1; ; attempt++) {
    const token = `omega-${process.pid}-${Date.now().toString(36)}`;
    const plans: MemberPlan[] = [];
    for (let i = 0; i < count; i++) {
      plans.push({ name: `omega-${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: await mkdtemp(join(tmpdir(), `omega-etcd-${i}-`)) });
    }
    const initialCluster = plans.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(',');
    const members = plans.map((plan) => new ClusterMember(binary, plan, initialCluster, settings, timeoutMs));
    try {
      // All at once: the first member cannot be healthy before a quorum has started.
      await Promise.all(members.map((m) => m.first(token)));
      log.info({ endpoints: members.map((m) => m.clientUrl), maxTxnOps: limits.maxTxnOps }, 'etcd cluster started');
      return new Cluster(members, limits);
    } catch (error) {
      await Promise.all(members.map((m) => m.remove()));
      const portTaken = error instanceof EtcdStartError && error.logTail.some((line) => line.includes('address already in use'));
      if (!portTaken || attempt >= START_ATTEMPTS) throw error;
      log.warn({ attempt }, 'etcd port was taken; retrying the cluster on new ports');
    }
  }
}

interface MemberPlan {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
}

class ClusterMember implements EtcdClusterMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** Its HTTP endpoints, over TLS when the cluster serves TLS. */
  readonly http: MemberHttp;
  private child: ChildProcess | undefined;
  private tail: LineTail | undefined;
  private removed = false;

  constructor(
    private readonly binary: string,
    plan: MemberPlan,
    private readonly initialCluster: string,
    private readonly settings: Omit<StartEtcdOptions, 'maxTxnOps' | 'maxRequestBytes'> & { readonly limits: KvLimits },
    private readonly timeoutMs: number,
  ) {
    this.name = plan.name;
    this.clientPort = plan.clientPort;
    this.peerPort = plan.peerPort;
    this.dataDir = plan.dataDir;
    this.clientUrl = `${settings.tls === undefined ? 'http' : 'https'}://127.0.0.1:${plan.clientPort}`;
    // Peers stay plaintext on loopback: the launcher forms clusters on one host only.
    this.peerUrl = `http://127.0.0.1:${plan.peerPort}`;
    this.http = memberHttp(settings.tls);
  }

  get pid(): number | undefined {
    return this.child !== undefined && !hasExited(this.child) ? this.child.pid : undefined;
  }

  isRunning(): boolean {
    return this.child !== undefined && !hasExited(this.child);
  }

  /** The first start, forming the cluster with the others. */
  async first(token: string): Promise<void> {
    await this.spawn(token);
    await waitHealthy(this.child as ChildProcess, this.clientUrl, this.timeoutMs, this.tail as LineTail, this.http);
  }

  async kill(signal: EtcdMemberSignal): Promise<void> {
    const child = this.child;
    if (child === undefined || hasExited(child)) return;
    if (signal !== 'SIGKILL') {
      child.kill(signal);
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
    untrack(child);
  }

  async restart(): Promise<void> {
    if (this.removed) throw new EtcdStartError(`member ${this.name} was stopped with its cluster`, []);
    await this.kill('SIGKILL');
    for (let attempt = 1; ; attempt++) {
      await this.spawn(undefined);
      try {
        await waitHealthy(this.child as ChildProcess, this.clientUrl, this.timeoutMs, this.tail as LineTail, this.http);
        return;
      } catch (error) {
        await this.kill('SIGKILL');
        // A port of ours can be taken for a moment (a connection's ephemeral port): wait, retry.
        const portTaken = error instanceof EtcdStartError && error.logTail.some((line) => line.includes('address already in use'));
        if (!portTaken || attempt >= MEMBER_RESTART_ATTEMPTS) throw error;
        await sleep(500);
      }
    }
  }

  async status(timeoutMs = 1_000): Promise<EtcdMemberStatus> {
    const reply = (await this.http(`${this.clientUrl}/v3/maintenance/status`, timeoutMs, true)) as {
      header?: { member_id?: string };
      leader?: string;
      raftTerm?: string;
      raftIndex?: string;
      dbSize?: string;
      version?: string;
    };
    return {
      memberId: reply.header?.member_id ?? '0',
      leaderId: reply.leader ?? '0',
      raftTerm: reply.raftTerm ?? '0',
      raftIndex: reply.raftIndex ?? '0',
      dbSizeBytes: Number(reply.dbSize ?? 0),
      version: reply.version ?? '',
    };
  }

  async healthy(timeoutMs = 1_000): Promise<boolean> {
    try {
      return ((await this.http(`${this.clientUrl}/health`, timeoutMs)) as { health?: unknown }).health === 'true';
    } catch {
      return false;
    }
  }

  /** Stops the process (SIGCONT first: a stopped process cannot act on SIGTERM) and removes the data. */
  async remove(): Promise<void> {
    this.removed = true;
    const child = this.child;
    if (child !== undefined && !hasExited(child)) {
      child.kill('SIGCONT');
      await terminate(child);
    }
    if (child !== undefined) untrack(child);
    await rm(this.dataDir, { recursive: true, force: true });
  }

  private async spawn(newClusterToken: string | undefined): Promise<void> {
    // On a restart the data directory already names the member and its cluster: etcd ignores
    // the initial-cluster flags then, so the same ones serve both cases.
    const args = memberArgs({
      name: this.name,
      dataDir: this.dataDir,
      clientUrl: this.clientUrl,
      peerUrl: this.peerUrl,
      initialCluster: this.initialCluster,
      ...(newClusterToken === undefined ? {} : { clusterToken: newClusterToken }),
      settings: this.settings,
    });
    const { child, tail } = await spawnMember(this.binary, args, false);
    this.child = child;
    this.tail = tail;
  }
}

class Cluster implements RunningEtcdCluster {
  readonly endpoints: readonly string[];
  private stopping: Promise<void> | undefined;

  constructor(
    readonly members: readonly ClusterMember[],
    readonly limits: KvLimits,
  ) {
    this.endpoints = members.map((m) => m.clientUrl);
  }

  async leader(timeoutMs = 1_000): Promise<EtcdClusterMember | undefined> {
    const statuses = await Promise.all(this.members.map((m) => (m.isRunning() ? m.status(timeoutMs).catch(() => undefined) : undefined)));
    const answered = statuses.filter((s): s is EtcdMemberStatus => s !== undefined);
    const leaders = new Set(answered.map((s) => s.leaderId));
    if (answered.length === 0 || leaders.size !== 1 || leaders.has('0')) return undefined;
    const [leaderId] = leaders;
    const index = statuses.findIndex((s) => s?.memberId === leaderId);
    return index === -1 ? undefined : this.members[index];
  }

  async memberList(timeoutMs = 1_000): Promise<readonly { readonly id: string; readonly name: string; readonly clientUrls: readonly string[] }[]> {
    let lastError: unknown = new Error('no member is running');
    for (const member of this.members) {
      if (!member.isRunning()) continue;
      try {
        const reply = (await member.http(`${member.clientUrl}/v3/cluster/member/list`, timeoutMs, true)) as {
          members?: { ID?: string; name?: string; clientURLs?: string[] }[];
        };
        return (reply.members ?? []).map((m) => ({ id: m.ID ?? '0', name: m.name ?? '', clientUrls: m.clientURLs ?? [] }));
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  stop(): Promise<void> {
    return (this.stopping ??= Promise.all(this.members.map((m) => m.remove())).then(() => undefined));
  }
}

// ---- dying with the parent ------------------------------------------------------------------

let setprivPath: string | null | undefined;

/**
 * The command line that runs `command args` so that the kernel SIGKILLs it when the calling
 * thread dies, however it dies (even SIGKILL, which no exit handler sees): `setpriv --pdeathsig
 * SIGKILL -- command args` when util-linux's setpriv with `--pdeathsig` is installed, else the
 * command unchanged (`bound: false`). setpriv execs the command, so the spawned pid is the
 * command's own and signals sent to it reach the command. The kernel ties the signal to the
 * thread that forks: Node forks from the event-loop thread that calls `spawn`, so call it from
 * the thread whose end should end the child. Checks for setpriv once per process (synchronously).
 */
export function dieWithParent(command: string, args: readonly string[]): { command: string; args: string[]; bound: boolean } {
  if (setprivPath === undefined) setprivPath = findSetpriv();
  if (setprivPath === null) return { command, args: [...args], bound: false };
  return { command: setprivPath, args: ['--pdeathsig', 'SIGKILL', '--', command, ...args], bound: true };
}

function findSetpriv(): string | null {
  if (process.platform !== 'linux') return null;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.length > 0), '/usr/bin', '/bin'];
  for (const dir of new Set(dirs)) {
    const candidate = join(dir, 'setpriv');
    const help = spawnSync(candidate, ['--help'], { encoding: 'utf8', timeout: 5_000 });
    if (help.error === undefined && help.status === 0 && help.stdout.includes('--pdeathsig')) return candidate;
  }
  return null;
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
