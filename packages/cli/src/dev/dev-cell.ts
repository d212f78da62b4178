/**
 * `omega dev`: a whole cell on this host, in the foreground.
 *
 * ```
 *   omega dev ─┬─ etcd            <data>/etcd            (or --etcd URL: not started, not stopped)
 *              ├─ api             node packages/api/dist/main.js
 *              ├─ agent-<i>       node packages/node-agent/dist/main.js --machine-id dev-<i>
 *              ├─ hollow          node packages/node-agent/dist/main.js --hollow N
 *              ├─ batch-<i>       node packages/scheduler-batch/dist/main.js --name batch-<i>
 *              └─ service-<i>     node packages/scheduler-service/dist/main.js --name service-<i>
 *   child output: <data>/logs/<name>.log
 * ```
 *
 * Start order: etcd, the API (waited for), agents, schedulers. Stop order (Ctrl-C, SIGTERM):
 * schedulers and API, then agents (they stop their tasks while etcd still records it), then
 * etcd; each stage SIGTERM, a grace period, SIGKILL. A child that dies is reported with the end
 * of its log and the cell keeps going; if etcd dies, everything is stopped. Everything lives in
 * the data directory (etcd's ports are remembered there), so running `omega dev` again on it
 * resumes the cell with its jobs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { EtcdStartError, PROTOS_DIR, formatBytes, formatCpu, startEtcd, type RunningEtcd } from '@omega/cell-state';
import { ApiClient, DEFAULT_API_ADDRESS } from '../api-client.js';
import { CliError } from '../errors.js';
import { formatTable } from '../output.js';
import type { CliIo } from '../program.js';
import { submitDemo } from './demo.js';
import { devOptionsFrom, type DevOptions } from './dev-options.js';
import { ProcessGroup, type ChildSpec, type ManagedChild } from './process-group.js';

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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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

/** Starts etcd on the data directory, on the ports it had last time when they are still free. */
async function startDevEtcd(dataDir: string, state: DevState): Promise<RunningEtcd> {
  const base = { dataDir, detached: true } as const;
  if (state.etcdClientPort !== undefined && state.etcdPeerPort !== undefined) {
    try {
      return await startEtcd({ ...base, clientPort: state.etcdClientPort, peerPort: state.etcdPeerPort });
    } catch (error) {
      if (!(error instanceof EtcdStartError)) throw error;
      // The old ports are taken (or the member would not come up there): new ports, same data.
    }
  }
  return startEtcd(base);
}

/** Polls the API until it answers, the process dies, or time runs out. */
async function waitForApi(client: ApiClient, api: ManagedChild, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.call('cells', 'ListMachines', {});
      return;
    } catch (error) {
      if (!api.running) throw new CliError(`the API server exited while starting; the end of ${api.spec.logFile}:\n  ${(await tail(api.spec.logFile, 8)).join('\n  ')}`);
      if (Date.now() > deadline) throw new CliError(`the API server did not answer at ${client.address} within ${timeoutMs / 1000} s: ${(error as Error).message}`);
    }
    await sleep(200);
  }
}

/** Waits (bounded) until at least one machine is alive, so a demo does not start on an empty cell. */
async function waitForMachines(client: ApiClient, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reply = await client.call<{ machines: { alive: boolean }[] }>('cells', 'ListMachines', {}).catch(() => ({ machines: [] }));
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

/** The children to start after the API, in order, with what each one is. */
function childSpecs(options: DevOptions, etcdUrl: string, maxTxnOps: number | undefined, dirs: { logs: string; agents: string }, built: (entry: string) => boolean): { specs: ChildSpec[]; missing: string[] } {
  const node = process.execPath;
  const common = ['--etcd', etcdUrl, '--cell', options.cell, '--log-level', options.logLevel];
  // Schedulers split or refuse transactions above the server's op limit: tell them ours.
  const schedulerFlags = [...common, ...(maxTxnOps === undefined ? [] : ['--max-txn-ops', String(maxTxnOps)])];
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
        entry(ENTRY_POINTS.agent), ...common,
        '--machine-id', `dev-${i}`,
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
    const args = [entry(ENTRY_POINTS.agent), ...common, '--hollow', String(options.hollow), '--hollow-prefix', 'dev-hollow', '--cpu', `${cpu}m`, '--memory', String(memory), '--data-dir', join(dirs.agents, 'hollow')];
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

/** Runs the dev cell until SIGINT / SIGTERM (or etcd dies); resolves once everything stopped. */
export async function runDev(options: DevOptions, io: CliIo): Promise<void> {
  const say = (line: string): void => void io.stdout.write(`${line}\n`);
  const warn = (line: string): void => void io.stderr.write(`omega dev: ${line}\n`);
  const built = (e: string): boolean => existsSync(join(REPO_ROOT, e));
  if (!built(ENTRY_POINTS.api)) throw new CliError(`${ENTRY_POINTS.api} is missing: run \`npm run build\` at the repository root first`);

  const logs = join(options.dataDir, 'logs');
  await mkdir(logs, { recursive: true });
  const unlock = await lockDataDir(options.dataDir);
  const stateFile = join(options.dataDir, 'dev.json');
  const state = await loadState(stateFile);
  // Paths under the working directory read best relative; others in full.
  const shown = (path: string): string => {
    const rel = relative(process.cwd(), path);
    return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
  };

  let stopReason: 'signal' | 'etcd' | undefined;
  let resolveStop: (reason: 'signal' | 'etcd') => void = () => undefined;
  const stop = new Promise<'signal' | 'etcd'>((resolve) => (resolveStop = resolve));
  const stopRequested = (reason: 'signal' | 'etcd'): void => {
    stopReason ??= reason;
    resolveStop(reason);
  };
  /** Between startup steps: stop starting things once a stop was asked for. */
  const stopping = (): boolean => {
    if (stopReason === 'etcd') throw new CliError('etcd exited unexpectedly; the cell was stopped');
    return stopReason !== undefined;
  };
  let signals = 0;
  let apiUp = false;
  const group = new ProcessGroup((child, code, signal) => {
    // An API that dies while starting is reported once, as the reason `omega dev` fails.
    if (child.spec.name === 'api' && !apiUp) return;
    void tail(child.spec.logFile, 5).then((lines) => {
      warn(`${child.spec.name} exited unexpectedly (${signal === null ? `exit code ${code}` : `signal ${signal}`}); the cell keeps running without it. The end of ${shown(child.spec.logFile)}:`);
      for (const line of lines) io.stderr.write(`    ${line}\n`);
    });
  });
  let etcd: RunningEtcd | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      say(`\n${signal}: stopping the cell (again to kill everything at once)`);
      stopRequested('signal');
    } else {
      group.beginShutdown();
      void group.stop(() => true, 0);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let etcdWatch: NodeJS.Timeout | undefined;
  let client: ApiClient | undefined;

  try {
    let etcdUrl: string;
    if (options.etcd !== undefined) {
      etcdUrl = options.etcd;
    } else {
      etcd = await startDevEtcd(join(options.dataDir, 'etcd'), state);
      etcdUrl = etcd.clientUrl;
      state.etcdClientPort = etcd.clientPort;
      state.etcdPeerPort = etcd.peerPort;
      const pid = etcd.pid;
      etcdWatch = setInterval(() => {
        if (!isAlive(pid)) {
          clearInterval(etcdWatch);
          warn('etcd exited unexpectedly: stopping the cell');
          stopRequested('etcd');
        }
      }, 1000);
    }
    await writeFile(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    if (stopping()) return;

    const common = ['--etcd', etcdUrl, '--cell', options.cell, '--log-level', options.logLevel];
    const api = await group.start({
      name: 'api',
      command: process.execPath,
      args: [join(REPO_ROOT, ENTRY_POINTS.api), ...common, '--listen', options.listen],
      logFile: join(logs, 'api.log'),
      what: `gRPC API at ${options.listen}`,
    });
    client = new ApiClient(options.listen, 5_000);
    const apiReady = waitForApi(client, api, 30_000);
    // Once a stop wins the race, the API's wait may still fail as the API goes away: ignore it.
    apiReady.catch(() => undefined);
    await Promise.race([apiReady, stop]);
    if (stopping()) return;
    apiUp = true;

    const agents = await agentDataRoot(options.dataDir);
    if (agents !== options.dataDir && options.machines > 0) warn(`tasks run as nobody, who cannot enter ${options.dataDir}: agents keep their task directories in ${agents}`);
    const { specs, missing } = childSpecs(options, etcdUrl, etcd?.limits.maxTxnOps, { logs, agents }, built);
    for (const line of missing) warn(`${line} (build it, then restart omega dev)`);
    if (options.enforcementAutoOff) warn('not running as root: agents run tasks WITHOUT cgroup limits (--no-enforcement)');
    for (const spec of specs) {
      if (stopping()) return;
      await group.start(spec);
    }

    const rows = [
      ['etcd', etcd === undefined ? '-' : String(etcd.pid), etcd === undefined ? `external ${etcdUrl}` : `${etcdUrl} (data ${shown(join(options.dataDir, 'etcd'))})`, '-'],
      ...group.list().map((c) => [c.spec.name, String(c.pid), c.spec.what, shown(c.spec.logFile)]),
    ];
    const apiFlag = options.listen === DEFAULT_API_ADDRESS ? '' : ` --api ${options.listen}`;
    say(`Omega dev cell "${options.cell}" is up. API: ${options.listen}${apiFlag === '' ? '' : ` (use --api ${options.listen} or OMEGA_API=${options.listen})`}\n`);
    say(formatTable(['PROCESS', 'PID', 'WHAT', 'LOG'], rows));
    say(`\nTry: npx omega${apiFlag} machines | npx omega${apiFlag} jobs | npx omega${apiFlag} submit -f job.yaml`);
    say(`Ctrl-C stops everything; \`omega dev\` on ${shown(options.dataDir)} again resumes the cell.`);

    if (options.demo) {
      const machines = options.machines + options.hollow;
      if (machines > 0 && !(await Promise.race([waitForMachines(client, 30_000), stop.then(() => false)]))) {
        warn('no machine is alive yet: the demo jobs will wait for one');
      }
      if (stopping()) return;
      const jobs = await submitDemo(client, state.runId);
      say('\nDemo jobs submitted:');
      for (const job of jobs) say(`  ${job.id}  ${job.spec.kind}, ${job.spec.instances} task(s): ${job.spec.task.command.slice(2).join(' ')}`);
      const first = jobs[0]?.id ?? '<job id>';
      say(`\nWatch them:\n  npx omega${apiFlag} jobs\n  npx omega${apiFlag} watch ${first}\n  npx omega${apiFlag} logs ${first} 0\n  npx omega${apiFlag} machines\n  npx omega${apiFlag} stats`);
    }

    if ((await stop) === 'etcd') throw new CliError('etcd exited unexpectedly; the cell was stopped');
  } finally {
    client?.close();
    clearInterval(etcdWatch);
    group.beginShutdown();
    const isAgent = (c: ManagedChild): boolean => c.spec.name.startsWith('agent-') || c.spec.name === 'hollow';
    await group.stop((c) => !isAgent(c), STAGE_GRACE_MS.frontends);
    await group.stop(isAgent, STAGE_GRACE_MS.agents);
    await etcd?.stop();
    await unlock();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (signals > 0) say('omega dev: stopped');
  }
}
