/**
 * `omega bench cli`: how long the `omega` command takes, per command, beside a bare `node -e 0`.
 *
 * ```
 *   etcd + one API server (--insecure) on free loopback ports, a cell of its own
 *   round r = 1..N:  node -e 0 │ omega --help │ omega jobs │ omega submit -f job.yaml
 *                    (each a fresh process, run one after the other, in that order)
 * ```
 *
 * Each run's wall time is measured from spawn to exit; its CPU (user + system) from this
 * process's `cutime + cstime` in /proc/self/stat before and after (the kernel adds a child's
 * CPU there when it is reaped; 10 ms ticks, so a CPU figure is a multiple of 10 ms). The rounds
 * interleave the commands, so a burst of load on a shared machine touches them alike. Prints the
 * median and p90 of each, and the load average before and after: figures from a busy machine
 * are not figures of the CLI.
 *
 * The job file is a one-task batch job; the cell has no machines or schedulers, so the submitted
 * jobs stay pending and `omega jobs` lists at most N of them. The CLI runs as installed: the
 * built `packages/cli/dist/main.js` through its bin, `packages/cli/bin/omega.cjs`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FlagError, freePort } from '@omega/cell-state';
import { API_MAIN } from './churn.js';
import { LiveCluster } from './live-cluster.js';
import type { Print } from './sim-command.js';
import { SubmitClient } from './submit-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The installed `omega` bin (what `node_modules/.bin/omega` links to). */
export const CLI_BIN = `${ROOT}packages/cli/bin/omega.cjs`;

/** The goal the figures are checked against: every command's median wall time at most this. */
export const CLI_WALL_TARGET_MS = 150;

export interface CliBenchOptions {
  /** Runs of each command (default 20; quick 5). */
  readonly runs: number;
  /** The `omega` entry to run (default {@link CLI_BIN}): another build's, to compare before and after. */
  readonly bin?: string;
}

export const CLI_BENCH_USAGE = `usage: omega bench cli [--runs N] [--quick] [--bin FILE]

  Starts etcd and an API server on free loopback ports, then runs, N rounds in turn,
  node -e 0, omega --help, omega jobs and omega submit -f FILE (a one-task batch job), each a
  fresh process, and prints each one's wall time and CPU (user + system), median and p90, and
  the load average before and after. Check: median wall <= ${CLI_WALL_TARGET_MS} ms for the three omega commands.

  --runs N    runs of each command (default 20; at most 200)
  --quick     5 runs of each
  --bin FILE  the omega entry to run (default: this checkout's packages/cli/bin/omega.cjs),
              e.g. another checkout's, to compare two builds against the same cell
`;

/** Parses `omega bench cli`'s flags; throws {@link FlagError} naming the bad one. */
export function parseCliBenchArgs(argv: readonly string[]): CliBenchOptions | 'help' {
  let values: { runs?: string; quick?: boolean; bin?: string; help?: boolean };
  try {
    ({ values } = parseArgs({ args: [...argv], options: { runs: { type: 'string' }, quick: { type: 'boolean' }, bin: { type: 'string' }, help: { type: 'boolean' } }, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new FlagError(/'([^']+)'/.exec(message)?.[1] ?? 'arguments', message.split('. ')[0] ?? message);
  }
  if (values.help === true) return 'help';
  let bin: string | undefined;
  if (values.bin !== undefined) {
    bin = path.resolve(values.bin);
    if (!existsSync(bin)) throw new FlagError('--bin', `${JSON.stringify(values.bin)} does not exist`);
  }
  const runs = values.runs === undefined ? (values.quick === true ? 5 : 20) : Number(values.runs);
  if (values.runs !== undefined && (values.runs.trim() === '' || !Number.isSafeInteger(runs) || runs <= 0)) throw new FlagError('--runs', `must be a positive integer, got ${JSON.stringify(values.runs)}`);
  if (runs > 200) throw new FlagError('--runs', `at most 200, got ${runs}`);
  return bin === undefined ? { runs } : { runs, bin };
}

/** One measured run. */
export interface CliRun {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** CPU (ms) of this process's reaped children so far: cutime + cstime of /proc/self/stat. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces), from field 3 on.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** The environment of every run: no client config or token of the caller's leaks in. */
const CHILD_ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !['OMEGA_CONFIG', 'OMEGA_TOKEN', 'OMEGA_API', 'OMEGA_CA'].includes(name)));

/** Runs `argv` to its end; rejects naming the command if it exits non-zero. */
function measure(argv: readonly string[], cwd: string): Promise<CliRun> {
  const cpuBefore = childrenCpuMs();
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: CHILD_ENV });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`node ${argv.join(' ')} exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      else resolve({ wallMs, cpuMs: childrenCpuMs() - cpuBefore });
    });
  });
}

/** The q-quantile (0..1) of `values`, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

const JOB_FILE = `# omega bench cli: one small batch task
name: cli-bench
kind: batch
instances: 1
command: [sh, -c, "echo hello"]
cpu: 100m
memory: 32Mi
`;

const load = (): string => os.loadavg().map((l) => l.toFixed(2)).join(', ');

/** Runs the benchmark; resolves to the exit code (1 when a median misses the target). */
export async function runCliBench(options: CliBenchOptions, print: Print): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'omega-cli-bench-'));
  const cluster = await LiveCluster.start();
  try {
    const address = `127.0.0.1:${await freePort()}`;
    const api = cluster.startNode('api', [API_MAIN, '--insecure', '--etcd', cluster.etcd.clientUrl, '--cell', 'cli-bench', '--listen', address, '--log-level', 'warn']);
    const probe = new SubmitClient(address);
    try {
      await probe.ready(60_000).catch((error: unknown) => {
        throw new Error(`the API server did not come up: ${String(error)}; ${api.stderrTail.slice(-5).join(' | ')}`);
      });
    } finally {
      probe.close();
    }
    const jobFile = path.join(dir, 'job.yaml');
    await writeFile(jobFile, JOB_FILE);
    const connection = ['--api', address, '--insecure'];
    const bin = options.bin ?? CLI_BIN;
    const commands: readonly { readonly name: string; readonly argv: readonly string[] }[] = [
      { name: 'node -e 0', argv: ['-e', '0'] },
      { name: 'omega --help', argv: [bin, '--help'] },
      { name: 'omega jobs', argv: [bin, ...connection, 'jobs'] },
      { name: 'omega submit -f FILE', argv: [bin, ...connection, 'submit', '-f', jobFile] },
    ];
    const loadBefore = load();
    print(`cli: ${options.runs} runs of each command of ${bin}, node ${process.version}, ${os.availableParallelism()} CPUs, load average ${loadBefore}`);
    // One warm-up round: the first runs pay for a cold disk cache, which is not the CLI's cost.
    for (const command of commands) await measure(command.argv, dir);
    const runs = new Map(commands.map((c) => [c.name, [] as CliRun[]]));
    for (let round = 0; round < options.runs; round++) {
      for (const command of commands) runs.get(command.name)?.push(await measure(command.argv, dir));
    }
    const loadAfter = load();
    print('');
    print('| command | wall median | wall p90 | CPU median | CPU p90 |');
    print('|---|---:|---:|---:|---:|');
    let missed = 0;
    for (const command of commands) {
      const list = runs.get(command.name) ?? [];
      const wall = list.map((r) => r.wallMs);
      const cpu = list.map((r) => r.cpuMs);
      print(`| \`${command.name}\` | ${quantile(wall, 0.5).toFixed(0)} ms | ${quantile(wall, 0.9).toFixed(0)} ms | ${quantile(cpu, 0.5).toFixed(0)} ms | ${quantile(cpu, 0.9).toFixed(0)} ms |`);
      if (command.name.startsWith('omega') && quantile(wall, 0.5) > CLI_WALL_TARGET_MS) missed++;
    }
    print('');
    print(`load average before ${loadBefore}, after ${loadAfter}`);
    print(`check: median wall <= ${CLI_WALL_TARGET_MS} ms for every omega command: ${missed === 0 ? 'PASS' : `FAIL (${missed} above)`}`);
    return missed === 0 ? 0 : 1;
  } finally {
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}
