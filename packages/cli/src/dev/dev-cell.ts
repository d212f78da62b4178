/**
 * `omega dev`: a whole cell on this host, in the foreground, supervised.
 *
 * ```
 *   omega dev ─┬─ etcd            <data>/etcd            (or --etcd URL: not started, not stopped)
 *              ├─ api             node packages/api/dist/main.js
 *              ├─ agent-<i>       node packages/node-agent/dist/main.js --machine-id dev-<i>
 *              ├─ hollow          node packages/node-agent/dist/main.js --hollow N
 *              ├─ batch-<i>       node packages/scheduler-batch/dist/main.js --name batch-<i>
 *              └─ service-<i>     node packages/scheduler-service/dist/main.js --name service-<i>
 *   child output: <data>/logs/<name>.log       what runs now: <data>/dev-status.json
 * ```
 *
 * Before anything starts, the API's address must be free to listen on: a port another process
 * serves is refused, naming the port and `--listen`. Start order: etcd, the API (waited for: its
 * own "listening" line and an answer), agents, schedulers. A child that dies unexpectedly (etcd
 * included) is reported with the end of its log and restarted with backoff (1 s doubling to
 * 30 s, forgotten after a minute up); children die with `omega dev` however it dies
 * (parent-death.ts). Stop order (Ctrl-C, SIGTERM): schedulers and API, then agents (they stop
 * their tasks while etcd still records it), then etcd; each stage SIGTERM, a grace period,
 * SIGKILL; nothing is restarted once the stop began. Everything lives in the data directory
 * (etcd's ports are remembered there), so running `omega dev` again on it resumes the cell.
 *
 * Secure by default (dev-security.ts): a private CA and a certificate per component in
 * `<data>/pki/` (created on first start, reused after), etcd with TLS and client-certificate
 * auth, one etcd user per component (set up as root), an admin token, and `<data>/client.yaml`
 * for the CLI. `--insecure` runs the old plaintext cell, with a warning saying what that allows.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { API_USER, HOLLOW_USER, PROTOS_DIR, Progress, SCHEDULER_USER, agentUser, formatBytes, formatCpu, freePort } from '@omega/cell-state';
import type { PkiDirectory } from '@omega/pki';
import { ApiClient } from '../api-client.js';
import { DEFAULT_CONFIG_PATH, writeClientConfig, type ApiSecurity } from '../client-config.js';
import { CliError } from '../errors.js';
import { formatTable } from '../output.js';
import type { CliIo } from '../program.js';
import { submitDemo } from './demo.js';
import { devOptionsFrom, type DevOptions } from './dev-options.js';
import { DevEtcd } from './dev-etcd.js';
import { CLIENT_CONFIG_FILE, DEV_HOLLOW_PREFIX, ETCD_IDENTITY, clientAddress, devMachineId, filesOf, identityFlags, prepareDevPki, setupDevAccess } from './dev-security.js';
import { PARENT_DEATH_DESCRIPTION, parentDeathMode } from './parent-death.js';
import { findLeftovers, isAlive, killLeftovers, processStartTicks } from './leftovers.js';
import { probeListen, splitHostPort } from './port-probe.js';
import { ProcessGroup, currentLog, type ChildExit, type ChildSpec, type ManagedChild } from './process-group.js';
import { STATUS_FILE, StatusFile, type ProcessStatus } from './status-file.js';
import { DEV_UI_HOST, chooseUiPort, uiLoginLink, uiUrl } from './dev-ui.js';

export { devOptionsFrom, type DevOptions };

const REPO_ROOT = dirname(PROTOS_DIR);
/** The entry points `omega dev` runs, relative to the repository. */
export const ENTRY_POINTS = {
  api: 'packages/api/dist/main.js',
  agent: 'packages/node-agent/dist/main.js',
  batch: 'packages/scheduler-batch/dist/main.js',
  service: 'packages/scheduler-service/dist/main.js',
} as const;

/** What `omega dev` remembers in its data directory between runs. */
interface DevState {
  etcdClientPort?: number;
  etcdPeerPort?: number;
  /** Names the demo's request ids: one demo per data directory. */
  runId: string;
  /** How the cell ran last: once etcd's auth is on, a plaintext cell cannot use its data. */
  security?: 'tls' | 'insecure';
  /** The web UI's loopback port, kept across runs while it stays free (dev-ui.ts). */
  uiPort?: number;
}

const STAGE_GRACE_MS = { frontends: 10_000, agents: 30_000 };
/** How long agents give a task between TERM and KILL: short, so Ctrl-C is quick. */
const AGENT_KILL_GRACE_MS = 3_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A pino JSON line as `message: error` (long stacks left out); other lines as they are. */
function readable(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; err?: { message?: unknown } };
    if (typeof entry.msg !== 'string') return line;
    const error = typeof entry.err?.message === 'string' ? `: ${entry.err.message.split('\n')[0] ?? ''}` : '';
    return `${entry.msg}${error}`;
  } catch {
    return line;
  }
}

/** The last lines of a log worth showing: stack frames are left out, the error itself stays. */
async function tail(file: string, lines: number): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s+at /.test(l))
    .slice(-lines)
    .map(readable);
}

/** One `omega dev` per data directory: a pid file, refused while its owner lives. */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = join(dataDir, 'dev.pid');
  const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
    throw new CliError(`another omega dev (pid ${owner}) is running on ${dataDir}`);
  }
  await writeFile(file, `${process.pid}\n`);
  return () => rm(file, { force: true });
}

async function loadState(file: string): Promise<DevState> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<DevState>;
    return { ...parsed, runId: typeof parsed.runId === 'string' ? parsed.runId : randomBytes(4).toString('hex') };
  } catch {
    return { runId: randomBytes(4).toString('hex') };
  }
}

/** What a listener on the API's address is told when the address cannot be had. */
function listenRefusal(listen: string, code: string, message: string): CliError {
  const { port } = splitHostPort(listen);
  if (code === 'EADDRINUSE') {
    return new CliError(`port ${port} is already in use by another process (--listen ${listen}): stop that process, or give omega dev another address with --listen HOST:PORT (then point the CLI at it with --api HOST:PORT); nothing was started`);
  }
  return new CliError(`cannot listen on ${listen} (--listen): ${message}; nothing was started`);
}

const API_LISTENING = 'omega-api listening on';
const ADDRESS_IN_USE = /EADDRINUSE|address already in use/i;

/**
 * Polls until *our* API answers: its log says it listens (so an answer cannot come from another
 * process on the same port) and a call succeeds. Fails when it exits first (naming the port when
 * the address was taken after all) or time runs out.
 */
async function waitForApi(client: ApiClient, api: ManagedChild, listen: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let problem = 'it has not said it listens';
    if (currentLog(api).includes(API_LISTENING)) {
      try {
        await client.cells.listMachines({});
        return;
      } catch (error) {
        problem = (error as Error).message;
      }
    }
    if (!api.running) {
      if (ADDRESS_IN_USE.test(currentLog(api))) throw listenRefusal(listen, 'EADDRINUSE', 'address in use');
      throw new CliError(`the API server exited while starting; the end of ${api.spec.logFile}:\n  ${(await tail(api.spec.logFile, 8)).join('\n  ')}`);
    }
    if (Date.now() > deadline) throw new CliError(`the API server did not answer at ${client.address} within ${timeoutMs / 1000} s: ${problem}`);
    await sleep(200);
  }
}

/** `12 s`, `3m05s`, `2h10m`: how long a child ran. */
function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function exitText(exit: Pick<ChildExit, 'code' | 'signal'>): string {
  return exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
}

/** Waits (bounded) until at least one machine is alive, so a demo does not start on an empty cell. */
async function waitForMachines(client: ApiClient, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reply = await client.cells.listMachines({}).catch(() => ({ machines: [] as { alive: boolean }[] }));
    if (reply.machines.some((m) => m.alive)) return true;
    await sleep(250);
  }
  return false;
}

/**
 * Where agents keep their task directories. Tasks run as `nobody` when the agent is root, and
 * must be able to enter their directory: if some directory above the data directory is closed
 * to others (a checkout under /root, a mkdtemp directory), the agents' directories go to a
 * fixed place under the system's temporary directory instead (named after the data directory,
 * so a restart finds them again). Logs and etcd stay in the data directory.
 */
export async function agentDataRoot(dataDir: string, isRoot = process.getuid?.() === 0): Promise<string> {
  if (!isRoot) return dataDir;
  for (let dir = dataDir; ; dir = dirname(dir)) {
    const info = await stat(dir).catch(() => undefined);
    if (info !== undefined && (info.mode & 0o001) === 0) {
      const fallback = join(tmpdir(), `omega-dev-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
      await mkdir(fallback, { recursive: true, mode: 0o755 });
      await chmod(fallback, 0o755);
      return fallback;
    }
    if (dirname(dir) === dir) return dataDir;
  }
}

/** `spec` serving Prometheus metrics on a free loopback port (kept across its restarts). */
async function withMetrics(spec: ChildSpec): Promise<ChildSpec> {
  const port = await freePort();
  return { ...spec, args: [...spec.args, '--metrics-listen', `127.0.0.1:${port}`], metricsUrl: `http://127.0.0.1:${port}/metrics` };
}

/** The children to start after the API, in order, with what each one is. */
function childSpecs(options: DevOptions, etcdUrl: string, maxTxnOps: number | undefined, dirs: { logs: string; agents: string }, built: (entry: string) => boolean, credentials: (identity: string) => string[]): { specs: ChildSpec[]; missing: string[] } {
  const node = process.execPath;
  const common = ['--etcd', etcdUrl, '--cell', options.cell, '--log-level', options.logLevel];
  // Schedulers split or refuse transactions above the server's op limit: tell them ours.
  const schedulerFlags = [...common, ...credentials(SCHEDULER_USER), ...(maxTxnOps === undefined ? [] : ['--max-txn-ops', String(maxTxnOps)])];
  const entry = (e: string): string => join(REPO_ROOT, e);
  const specs: ChildSpec[] = [];
  const missing: string[] = [];
  const need = (e: string, what: string): boolean => {
    if (built(e)) return true;
    missing.push(`${e} is not built: no ${what} runs`);
    return false;
  };
  if (options.machines > 0 && need(ENTRY_POINTS.agent, 'agent')) {
    for (let i = 0; i < options.machines; i++) {
      const args = [
        entry(ENTRY_POINTS.agent), ...common, ...credentials(agentUser(devMachineId(i))),
        '--machine-id', devMachineId(i),
        '--cpu', `${options.machineCpuMillis}m`,
        '--memory', String(options.machineMemoryBytes),
        '--attr', `rack=rack-${i}`,
        '--data-dir', join(dirs.agents, `agent-${i}`),
        // Agents share this host: each its own cgroup subtree, so none takes another's for its own.
        '--cgroup-parent', `omega-dev-${options.cell}-${i}`,
        // Stopping `omega dev` must leave no task running.
        '--drain-on-exit',
        '--kill-grace-ms', String(AGENT_KILL_GRACE_MS),
        ...(options.enforcement ? [] : ['--no-enforcement']),
      ];
      specs.push({ name: `agent-${i}`, command: node, args, logFile: join(dirs.logs, `agent-${i}.log`), what: `machine dev-${i}: ${formatCpu(options.machineCpuMillis)} CPU, ${formatBytes(options.machineMemoryBytes)}${options.enforcement ? '' : ', NO LIMITS'}` });
    }
  }
  if (options.hollow > 0 && need(ENTRY_POINTS.agent, 'hollow agent')) {
    const cpu = options.capacityGiven ? options.machineCpuMillis : 4000;
    const memory = options.capacityGiven ? options.machineMemoryBytes : 8 * 1024 ** 3;
    const args = [entry(ENTRY_POINTS.agent), ...common, ...credentials(HOLLOW_USER), '--hollow', String(options.hollow), '--hollow-prefix', DEV_HOLLOW_PREFIX, '--cpu', `${cpu}m`, '--memory', String(memory), '--data-dir', join(dirs.agents, 'hollow')];
    specs.push({ name: 'hollow', command: node, args, logFile: join(dirs.logs, 'hollow.log'), what: `${options.hollow} hollow machines: ${formatCpu(cpu)} CPU, ${formatBytes(memory)} each` });
  }
  if (options.batchSchedulers > 0 && need(ENTRY_POINTS.batch, 'batch scheduler')) {
    for (let i = 0; i < options.batchSchedulers; i++) {
      specs.push({ name: `batch-${i}`, command: node, args: [entry(ENTRY_POINTS.batch), ...schedulerFlags, '--name', `batch-${i}`], logFile: join(dirs.logs, `batch-${i}.log`), what: 'batch scheduler' });
    }
  }
  if (options.serviceSchedulers > 0 && need(ENTRY_POINTS.service, 'service scheduler')) {
    for (let i = 0; i < options.serviceSchedulers; i++) {
      specs.push({ name: `service-${i}`, command: node, args: [entry(ENTRY_POINTS.service), ...schedulerFlags, '--name', `service-${i}`], logFile: join(dirs.logs, `service-${i}.log`), what: 'service scheduler' });
    }
  }
  return { specs, missing };
}

/** Runs the dev cell until SIGINT / SIGTERM; resolves once everything stopped. */
export async function runDev(options: DevOptions, io: CliIo): Promise<void> {
  const say = (line: string): void => void io.stdout.write(`${line}\n`);
  const warn = (line: string): void => void io.stderr.write(`omega dev: ${line}\n`);
  const built = (e: string): boolean => existsSync(join(REPO_ROOT, e));
  if (!built(ENTRY_POINTS.api)) throw new CliError(`${ENTRY_POINTS.api} is missing: run \`npm run build\` at the repository root first`);

  const logs = join(options.dataDir, 'logs');
  await mkdir(logs, { recursive: true });
  const unlock = await lockDataDir(options.dataDir);
  // An omega dev that was killed may have left children (no setpriv, or a death mid-spawn); one
  // of them could hold the API's port. Only processes with the recorded start time are touched.
  const leftovers = await findLeftovers(join(options.dataDir, STATUS_FILE));
  if (leftovers.length > 0) {
    warn(`the previous omega dev on ${options.dataDir} was killed and left ${leftovers.map((l) => `${l.name} (pid ${l.pid})`).join(', ')} running: stopping them`);
    const stuck = await killLeftovers(leftovers);
    if (stuck.length > 0) {
      await unlock();
      throw new CliError(`could not stop ${stuck.map((l) => `${l.name} (pid ${l.pid})`).join(', ')} left by the previous omega dev; stop them by hand`);
    }
  }
  // Refused before anything starts: otherwise the API child fails to bind while the process on
  // the port answers the readiness check, and the cell looks up when it is not.
  const { host, port } = splitHostPort(options.listen);
  const taken = await probeListen(host, port);
  if (taken !== undefined) {
    await unlock();
    throw listenRefusal(options.listen, taken.code, taken.message);
  }
  const stateFile = join(options.dataDir, 'dev.json');
  const state = await loadState(stateFile);
  if (options.insecure && state.security === 'tls' && options.etcd === undefined) {
    await unlock();
    throw new CliError(`${options.dataDir} holds a secure cell (its etcd requires client certificates and has auth on): --insecure cannot run it; drop --insecure, or give --data-dir another directory`);
  }
  // Paths under the working directory read best relative; others in full.
  const shown = (path: string): string => {
    const rel = relative(process.cwd(), path);
    return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
  };
  const parentDeath = parentDeathMode();
  if (parentDeath === 'pipe') warn(`${PARENT_DEATH_DESCRIPTION.pipe}; if omega dev is killed (kill -9), stop its children by hand (pids in ${shown(join(options.dataDir, STATUS_FILE))})`);

  let stopRequested = false;
  let resolveStop: () => void = () => undefined;
  const stop = new Promise<void>((resolve) => (resolveStop = resolve));
  let signals = 0;
  let apiUp = false;
  let etcd: DevEtcd | undefined;
  let group: ProcessGroup | undefined;

  const startTicks = new Map<number, string | null>();
  const ticksOf = (pid: number): string | null => {
    if (!startTicks.has(pid)) startTicks.set(pid, processStartTicks(pid) ?? null);
    return startTicks.get(pid) ?? null;
  };
  const processStatus = (): ProcessStatus[] => {
    const rows: ProcessStatus[] = [];
    if (etcd !== undefined) {
      rows.push({ name: 'etcd', pid: etcd.pid, startTicks: ticksOf(etcd.pid), state: etcd.state, restarts: etcd.restarts, startedAtMs: etcd.startedAtMs, lastExit: etcd.lastExit === undefined ? null : { code: null, signal: null, atMs: etcd.lastExit.atMs }, log: null });
    } else if (options.etcd !== undefined) {
      rows.push({ name: 'etcd', pid: null, startTicks: null, state: 'external', restarts: 0, startedAtMs: null, lastExit: null, log: null });
    }
    for (const c of group?.list() ?? []) {
      rows.push({ name: c.spec.name, pid: c.pid, startTicks: c.running ? ticksOf(c.pid) : null, state: c.state, restarts: c.restarts, startedAtMs: c.startedAtMs, lastExit: c.lastExit === undefined ? null : { code: c.lastExit.code, signal: c.lastExit.signal, atMs: c.lastExit.atMs }, log: c.spec.logFile });
    }
    return rows;
  };
  const status = new StatusFile(join(options.dataDir, STATUS_FILE), () => ({ pid: process.pid, cell: options.cell, api: options.listen, parentDeath, updatedAtMs: Date.now(), processes: processStatus() }));

  group = new ProcessGroup({
    exited: (child, exit, restartInMs) => {
      // An API that dies while starting is reported once, as the reason `omega dev` fails.
      if (child.spec.name === 'api' && !apiUp) return;
      const next = restartInMs === undefined ? 'it stays down' : `restarting it in ${duration(restartInMs)} (restart ${child.restarts + 1})`;
      void tail(child.spec.logFile, 5).then((lines) => {
        warn(`${child.spec.name} (pid ${child.pid}) exited unexpectedly (${exitText(exit)}) after ${duration(exit.upMs)}; ${next}. The end of ${shown(child.spec.logFile)}:`);
        for (const line of lines) io.stderr.write(`    ${line}\n`);
      });
    },
    restarted: (child) => warn(`${child.spec.name} restarted (pid ${child.pid}, restart ${child.restarts})`),
    restartFailed: (child, error, retryInMs) => warn(`${child.spec.name} could not be restarted (${error.message}); trying again in ${duration(retryInMs)}`),
    changed: () => status.update(),
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      say(`\n${signal}: stopping the cell (again to kill everything at once)`);
      stopRequested = true;
      resolveStop();
    } else {
      void group?.stop(() => true, 0);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let client: ApiClient | undefined;
  const securitySettings = { dataDir: options.dataDir, cell: options.cell, listen: options.listen, machines: options.machines, hollow: options.hollow };
  const apiAddress = clientAddress(options.listen);
  const clientConfig = join(options.dataDir, CLIENT_CONFIG_FILE);

  try {
    let pki: PkiDirectory | undefined;
    if (options.insecure) {
      warn('--insecure: etcd and the API run in PLAINTEXT with NO credentials: any process that reaches them (every task of this cell included) can read and rewrite the whole cell and run any command on every machine');
    } else {
      pki = await prepareDevPki(securitySettings).catch((error: unknown) => {
        throw new CliError(`cannot set up the cell's certificates in ${shown(join(options.dataDir, 'pki'))}: ${(error as Error).message}`, 1, { cause: error });
      });
      if (pki.createdCa) say(`Created a private CA and a certificate per component in ${shown(pki.dir)} (reused on every start).`);
      else for (const issued of pki.issued) say(`Issued a certificate for ${issued.name} (${issued.reason}).`);
    }
    const credentials = (identity: string): string[] => (pki === undefined ? ['--insecure'] : identityFlags(pki, identity));

    // Every process it starts, said as it starts with an estimate: a start is not minutes of silence.
    const processes = (options.etcd === undefined ? 1 : 0) + 1 + options.machines + (options.hollow > 0 ? 1 : 0) + options.batchSchedulers + options.serviceSchedulers;
    const progress = new Progress(processes);
    const starting = (what: string): void => say(`starting ${what} ${progress.starting()}`);
    let etcdUrl: string;
    if (options.etcd !== undefined) {
      etcdUrl = options.etcd;
    } else {
      starting('etcd');
      etcd = await DevEtcd.start(join(options.dataDir, 'etcd'), state, {
        exited: (pid, upMs, restartInMs) => warn(`etcd (pid ${pid}) exited unexpectedly after ${duration(upMs)}; restarting it in ${duration(restartInMs)} on the same data directory and ports (restart ${(etcd?.restarts ?? 0) + 1})`),
        restarted: (pid) => warn(`etcd restarted (pid ${pid}, restart ${etcd?.restarts ?? 0})`),
        restartFailed: (error, retryInMs) => warn(`etcd could not be restarted (${error.message.split('\n')[0] ?? ''}); trying again in ${duration(retryInMs)}`),
        changed: () => status.update(),
      }, pki === undefined ? {} : { tls: filesOf(pki, ETCD_IDENTITY) });
      progress.step();
      etcdUrl = etcd.clientUrl;
      state.etcdClientPort = etcd.clientPort;
      state.etcdPeerPort = etcd.peerPort;
    }
    let security: ApiSecurity = { kind: 'insecure' };
    if (pki !== undefined) {
      // Before auth is on, so remembered even if what follows fails half way.
      state.security = 'tls';
      await writeFile(stateFile, `${JSON.stringify(state, null, 2)}\n`);
      const { admin } = await setupDevAccess(etcdUrl, pki, securitySettings).catch((error: unknown) => {
        throw new CliError(`cannot set up etcd's users and the admin token: ${(error as Error).message}`, 1, { cause: error });
      });
      if (admin.outcome === 'created' && admin.reason !== 'none') say(`Created a new admin token (${admin.reason}).`);
      security = { kind: 'tls', ca: readFileSync(pki.caFile), caPath: pki.caFile, token: admin.token };
      writeClientConfig(clientConfig, { api: apiAddress, ca: pki.caFile, token: admin.token });
    } else {
      state.security = 'insecure';
      writeClientConfig(clientConfig, { api: apiAddress, insecure: true });
    }
    await writeFile(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    status.update();
    if (stopRequested) return;

    const common = ['--etcd', etcdUrl, '--cell', options.cell, '--log-level', options.logLevel];
    state.uiPort = await chooseUiPort(state.uiPort);
    await writeFile(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    const ui = uiUrl(state.uiPort, pki !== undefined);
    starting('api');
    const api = await group.start(
      await withMetrics({
        name: 'api',
        command: process.execPath,
        args: [join(REPO_ROOT, ENTRY_POINTS.api), ...common, ...credentials(API_USER), '--listen', options.listen, '--ui-listen', `${DEV_UI_HOST}:${state.uiPort}`],
        logFile: join(logs, 'api.log'),
        what: `gRPC API at ${options.listen}${pki === undefined ? ' (PLAINTEXT, no tokens)' : ' (TLS, tokens)'}; web UI at ${ui}`,
      }),
      // Not while starting: an API that cannot start is the reason omega dev fails.
      { restart: false },
    );
    client = new ApiClient(apiAddress, 5_000, security);
    const apiReady = waitForApi(client, api, options.listen, 30_000);
    // Once a stop wins the race, the API's wait may still fail as the API goes away: ignore it.
    apiReady.catch(() => undefined);
    await Promise.race([apiReady, stop]);
    if (stopRequested) return;
    apiUp = true;
    api.restart = true;
    progress.step();

    // Only real machines run tasks as nobody: hollow machines alone need no directory outside the data dir.
    const agents = options.machines > 0 ? await agentDataRoot(options.dataDir) : options.dataDir;
    if (agents !== options.dataDir) warn(`tasks run as nobody, who cannot enter ${options.dataDir}: agents keep their task directories in ${agents}`);
    const { specs, missing } = childSpecs(options, etcdUrl, etcd?.maxTxnOps, { logs, agents }, built, credentials);
    for (const line of missing) warn(`${line} (build it, then restart omega dev)`);
    if (options.enforcementAutoOff) warn('not running as root: agents run tasks WITHOUT cgroup limits (--no-enforcement)');
    for (const spec of specs) {
      if (stopRequested) return;
      starting(spec.name);
      await group.start(await withMetrics(spec));
      progress.step();
    }

    // "up" means the status file names every child already.
    await status.flush();
    const rows = [
      ['etcd', etcd === undefined ? '-' : String(etcd.pid), '0', etcd === undefined ? `external ${etcdUrl}` : `${etcdUrl} (data ${shown(join(options.dataDir, 'etcd'))})`, etcd === undefined ? '-' : `${etcdUrl}/metrics`, '-'],
      ...group.list().map((c) => [c.spec.name, String(c.pid), String(c.restarts), c.spec.what, c.spec.metricsUrl ?? '-', shown(c.spec.logFile)]),
    ];
    // The CLI finds ./.omega/client.yaml by itself; any other data directory needs the export.
    const found = clientConfig === resolve(DEFAULT_CONFIG_PATH);
    say(`Omega dev cell "${options.cell}" is up. API: ${options.listen}${pki === undefined ? ' (PLAINTEXT: --insecure)' : ' (TLS; bearer token in the client config)'}\n`);
    say(formatTable(['PROCESS', 'PID', 'RESTARTS', 'WHAT', 'METRICS', 'LOG'], rows));
    say(`\nUI: ${ui}${pki === undefined ? ' (PLAINTEXT, no login: --insecure)' : ''}`);
    if (pki !== undefined && security.kind === 'tls') {
      say(`  Its certificate is from this cell's own CA: trust ${shown(pki.caFile)} in the browser, or accept the warning once.`);
      say(`  Log in as admin (the link holds the admin token: keep it private): ${uiLoginLink(ui, security.token)}`);
    }
    say(`\nChildren that die are restarted (1 s doubling to 30 s); ${parentDeath === 'pdeathsig' ? PARENT_DEATH_DESCRIPTION.pdeathsig : 'see the warning above about omega dev being killed'}.`);
    say(`Current pids, states and restart counts: ${shown(join(options.dataDir, STATUS_FILE))}`);
    say(`\nClient config (API address, ${pki === undefined ? 'plaintext' : 'CA certificate, admin token: keep it private'}): ${shown(clientConfig)}`);
    say(`export OMEGA_CONFIG=${clientConfig}`);
    say(`\n${found ? 'Try (here, or with the export anywhere)' : 'After the export, try'}: omega machines | omega jobs | omega submit -f job.yaml`);
    const bin = omegaBinHint();
    if (bin !== undefined) say(`  (omega is not on PATH: export PATH="${bin}:$PATH")`);
    say(`Ctrl-C stops everything; \`omega dev\` on ${shown(options.dataDir)} again resumes the cell.`);

    if (options.demo) {
      const machines = options.machines + options.hollow;
      if (machines > 0 && !(await Promise.race([waitForMachines(client, 30_000), stop.then(() => false)]))) {
        warn('no machine is alive yet: the demo jobs will wait for one');
      }
      if (stopRequested) return;
      const jobs = await submitDemo(client, state.runId);
      say('\nDemo jobs submitted:');
      for (const job of jobs) say(`  ${job.id}  ${job.spec.kind}, ${job.spec.instances} task(s): ${job.spec.task.command.slice(2).join(' ')}`);
      const first = jobs[0]?.id ?? '<job id>';
      say(`\nWatch them${found ? '' : ' (after the export above)'}:\n  omega jobs\n  omega watch ${first}\n  omega logs ${first} 0\n  omega machines\n  omega stats`);
    }

    await stop;
  } finally {
    client?.close();
    group.beginShutdown();
    const isAgent = (c: ManagedChild): boolean => c.spec.name.startsWith('agent-') || c.spec.name === 'hollow';
    await group.stop((c) => !isAgent(c), STAGE_GRACE_MS.frontends);
    await group.stop(isAgent, STAGE_GRACE_MS.agents);
    await etcd?.stop();
    await status.remove();
    await unlock();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (signals > 0) say('omega dev: stopped');
  }
}

/**
 * The directory to put on PATH for the `omega` command (the repository's `node_modules/.bin`),
 * when no `omega` is on PATH yet; undefined when one is (or the link cannot be found).
 */
function omegaBinHint(): string | undefined {
  const onPath = (process.env['PATH'] ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, 'omega')));
  if (onPath) return undefined;
  // dist/dev/dev-cell.js -> the repository root holding node_modules/.bin/omega.
  const bin = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../node_modules/.bin');
  return existsSync(join(bin, 'omega')) ? bin : undefined;
}
