/**
 * `runBench(argv)`: the benchmark's command line, for the `omega` CLI (`omega bench ...`) and the
 * `omega-bench` bin. Flags are parsed with node's `util.parseArgs` and validated before anything
 * runs; a bad one is reported with its name and exit code 2.
 *
 *   sim  --experiment E1|E2|E3|E4 [--quick] [--seed N] --out DIR [--jobs N] [--machines N]
 *        [--hours H] [--service-placement first-fit|careful] [--mirror shared|own]
 *   live --experiment T1|E3|churn|agent [--quick] [--seed N] --out DIR [--machines N] [--tasks N]
 *        [--schedulers 1,2,4,8] [--jobs N (churn, agent)] [--instances N] [--clients N] (agent)
 *        [--data-dir DIR]
 *
 * Exit codes: 0 every check passed; 1 a check failed or the run failed; 2 bad flags.
 */
import { accessSync, constants, statSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FlagError } from '@omega/cell-state';
import { SERVICE_PLACEMENTS, type ServicePlacement } from '@omega/simulator';
import { CLI_BENCH_USAGE, parseCliBenchArgs, runCliBench, type CliBenchOptions } from './cli-bench.js';
import { COLD_SYNC_USAGE, parseColdSyncArgs, runColdSync, type ColdSyncOptions } from './cold-sync.js';
import { LIVE_EXPERIMENTS, runLiveCommand, type LiveExperimentId } from './live-command.js';
import { runReportCommand } from './report-command.js';
import { runSimCommand, type Print } from './sim-command.js';
import { SIM_EXPERIMENTS, type SimExperimentId } from './sim-experiments.js';

export const BENCH_USAGE = `usage: omega bench sim  --experiment E1|E2|E3|E4 --out DIR [--quick] [--seed N] [--jobs N]
                        [--machines N] [--hours H] [--service-placement first-fit|careful]
                        [--mirror shared|own]
       omega bench live --experiment T1|E3|churn|agent --out DIR [--quick] [--seed N] [--machines N]
                        [--tasks N] [--schedulers 1,2,4,8] [--jobs N] [--instances N] [--clients N]
                        [--warm-up-jobs N] [--data-dir DIR]
       omega bench report --out DIR
       omega bench sync [--quick] [--machines N] [--tasks N] [--repeats N]
       omega bench cli [--quick] [--runs N] [--bin FILE]

  sim   the Omega paper's experiments, simulated: the real schedulers against the in-memory
        store on a virtual clock (10,000 machines; --quick: a reduced sweep, about a minute)
  live  real etcd, hollow node agents and one process per scheduler, scaled down
        (T1: placement throughput vs the raw etcd ceiling; E3: conflict modes, checked
        against the simulator at the same settings; churn: N short jobs through a whole
        cell with a short retention, checking that every process's memory, etcd's
        database and the cell's keys level off; agent: real /bin/true tasks through one
        real node agent of 64 CPUs, tasks/s end to end and each supervisor's memory and CPU;
        needs root and writable cgroups)
  report  rewrite DIR/result.md, the chart and the checks from DIR/result.json (no new run)
  sync  cold sync: a fresh replica joining a cell of 10,000 machines and 100,000 live tasks
        (see omega bench sync --help)
  cli   the omega command's start: wall time and CPU of omega --help, jobs and submit beside
        node -e 0, against a local etcd and API server (see omega bench cli --help)

  --out DIR                 where result.json, result.md and the chart go
  --quick                   the reduced sweep
  --seed N                  seed of every random choice (default 1)
  --jobs N                  sim: simulations at once, in worker threads (default: CPUs);
                            live churn: jobs in all (default 100,000, quick 5,000)
                            live agent: one-task jobs (default 1,000, quick 100)
  --machines N              cell size (sim default 10,000; live default per experiment)
  --hours H                 sim: simulated hours per point (default per experiment)
  --service-placement P     sim: first-fit (the paper's, default) or careful (the service policy)
  --mirror M                sim: one mirror for all schedulers (shared, default) or one each
  --tasks N                 live T1: tasks in all (1,000-task jobs; default 100,000, quick 20,000)
  --schedulers LIST         live T1: batch scheduler counts (default 1,2,4,8)
  --instances N             live agent: instances of the one big job (default 1,000, quick 100)
  --clients N               live agent: parallel gRPC clients submitting (default 8)
  --warm-up-jobs N          live agent: one-task jobs run first, as the measured ones, while the
                            cell's freshly started processes compile their hot paths; reported
                            apart, not checked (default as many as --jobs; 0: none)
  --data-dir DIR            live: where etcd and the agent keep their data, a fresh directory each,
                            removed after (default the OS temp directory); the output names its
                            file system, which is part of what is measured
`;


const OPTIONS = {
  experiment: { type: 'string' },
  out: { type: 'string' },
  quick: { type: 'boolean' },
  seed: { type: 'string' },
  jobs: { type: 'string' },
  machines: { type: 'string' },
  hours: { type: 'string' },
  'service-placement': { type: 'string' },
  mirror: { type: 'string' },
  tasks: { type: 'string' },
  schedulers: { type: 'string' },
  instances: { type: 'string' },
  clients: { type: 'string' },
  'warm-up-jobs': { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean' },
} as const;

const SIM_ONLY = ['jobs', 'hours', 'service-placement', 'mirror'] as const;
const LIVE_ONLY = ['tasks', 'schedulers', 'instances', 'clients', 'warm-up-jobs', 'data-dir'] as const;

function positive(flag: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isSafeInteger(v))) {
    throw new FlagError(flag, `must be ${integer ? 'a positive integer' : 'a positive number'}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

function nonNegativeInteger(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(v) || v < 0) throw new FlagError(flag, `must be an integer >= 0, got ${JSON.stringify(raw)}`);
  return v;
}

function oneOf<T extends string>(flag: string, raw: string | undefined, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw new FlagError(flag, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

/** Parses `argv` (after `bench`) into a command; throws {@link FlagError} naming the bad flag. */
export function parseBenchArgs(argv: readonly string[]):
  | { readonly command: 'help' }
  | { readonly command: 'report'; readonly out: string }
  | { readonly command: 'sync'; readonly options: ColdSyncOptions }
  | { readonly command: 'sync-help' }
  | { readonly command: 'cli'; readonly options: CliBenchOptions }
  | { readonly command: 'cli-help' }
  | { readonly command: 'sim'; readonly options: Parameters<typeof runSimCommand>[0] }
  | { readonly command: 'live'; readonly options: Parameters<typeof runLiveCommand>[0] } {
  const [mode, ...rest] = argv;
  if (mode === undefined || mode === '--help' || mode === '-h' || mode === 'help') return { command: 'help' };
  if (mode === 'cli') {
    const options = parseCliBenchArgs(rest);
    return options === 'help' ? { command: 'cli-help' } : { command: 'cli', options };
  }
  if (mode === 'sync') {
    const options = parseColdSyncArgs(rest);
    return options === 'help' ? { command: 'sync-help' } : { command: 'sync', options };
  }
  if (mode !== 'sim' && mode !== 'live' && mode !== 'report') throw new FlagError('mode', `must be sim, live, report, sync or cli, got ${JSON.stringify(mode)}`);
  let values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
  try {
    ({ values } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new FlagError(/'([^']+)'/.exec(message)?.[1] ?? 'arguments', message.split('. ')[0] ?? message);
  }
  if (values.help === true) return { command: 'help' };
  if (mode === 'report') {
    for (const [flag, v] of Object.entries(values)) if (flag !== 'out' && v !== undefined) throw new FlagError(`--${flag}`, 'does not apply to omega bench report');
    if (values.out === undefined || values.out === '') throw new FlagError('--out', 'is required (the directory holding result.json)');
    return { command: 'report', out: values.out };
  }
  for (const flag of mode === 'sim' ? LIVE_ONLY : SIM_ONLY) {
    // --jobs means the number of jobs for the live churn.
    if (flag === 'jobs' && mode === 'live' && (values.experiment === 'churn' || values.experiment === 'agent')) continue;
    if (values[flag] !== undefined) throw new FlagError(`--${flag}`, `only applies to omega bench ${mode === 'sim' ? 'live' : 'sim'}`);
  }
  if (values.out === undefined || values.out === '') throw new FlagError('--out', 'is required (a directory for result.json, result.md and the chart)');
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new FlagError('--seed', `must be an integer from 0 to 4294967295, got ${JSON.stringify(values.seed)}`);
  const quick = values.quick === true;
  const machines = positive('--machines', values.machines, true);
  if (mode === 'sim') {
    const experiment = oneOf<SimExperimentId>('--experiment', values.experiment ?? '', SIM_EXPERIMENTS);
    const hours = positive('--hours', values.hours, false);
    const placement = oneOf<ServicePlacement>('--service-placement', values['service-placement'], SERVICE_PLACEMENTS);
    const mirror = oneOf<'shared' | 'own'>('--mirror', values.mirror, ['shared', 'own']);
    return {
      command: 'sim',
      options: {
        experiment: experiment as SimExperimentId,
        out: values.out,
        quick,
        seed,
        jobs: positive('--jobs', values.jobs, true) ?? Math.max(1, Math.min(os.availableParallelism(), 8)),
        ...(machines === undefined ? {} : { machines }),
        ...(hours === undefined ? {} : { durationMs: Math.round(hours * 3600_000) }),
        ...(placement === undefined ? {} : { servicePlacement: placement }),
        ...(mirror === undefined ? {} : { mirror }),
      },
    };
  }
  const experiment = oneOf<LiveExperimentId>('--experiment', values.experiment ?? '', LIVE_EXPERIMENTS);
  const tasks = positive('--tasks', values.tasks, true);
  const jobs = positive('--jobs', values.jobs, true);
  const instances = positive('--instances', values.instances, true);
  const clients = positive('--clients', values.clients, true);
  const warmUpJobs = nonNegativeInteger('--warm-up-jobs', values['warm-up-jobs']);
  const agentOnly = instances !== undefined ? '--instances' : clients !== undefined ? '--clients' : warmUpJobs !== undefined ? '--warm-up-jobs' : undefined;
  if (agentOnly !== undefined && experiment !== 'agent') throw new FlagError(agentOnly, 'only applies to omega bench live --experiment agent');
  if (clients !== undefined && clients > 64) throw new FlagError('--clients', 'at most 64 clients');
  const dataDir = values['data-dir'] === undefined ? undefined : writableDir('--data-dir', values['data-dir']);
  let schedulers: number[] | undefined;
  if (values.schedulers !== undefined) {
    schedulers = values.schedulers.split(',').map((s) => positive('--schedulers', s.trim(), true) as number);
    if (schedulers.some((n) => n > 32)) throw new FlagError('--schedulers', 'at most 32 scheduler processes');
  }
  return {
    command: 'live',
    options: {
      experiment: experiment as LiveExperimentId,
      out: values.out,
      quick,
      seed,
      ...(machines === undefined ? {} : { machines }),
      ...(tasks === undefined ? {} : { tasks }),
      ...(schedulers === undefined ? {} : { schedulers }),
      ...(jobs === undefined ? {} : { jobs }),
      ...(instances === undefined ? {} : { instances }),
      ...(clients === undefined ? {} : { clients }),
      ...(warmUpJobs === undefined ? {} : { warmUpJobs }),
      ...(dataDir === undefined ? {} : { dataDir }),
    },
  };
}

/** An existing directory this process may create entries in, as an absolute path. */
function writableDir(flag: string, raw: string): string {
  if (raw === '') throw new FlagError(flag, 'must name a directory');
  const path = resolve(raw);
  let stat;
  try {
    stat = statSync(path);
  } catch (error) {
    throw new FlagError(flag, `${path} cannot be used: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (!stat.isDirectory()) throw new FlagError(flag, `${path} is not a directory`);
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
  } catch {
    throw new FlagError(flag, `${path} is not writable by this user`);
  }
  return path;
}

/**
 * Runs `omega bench <argv>` and returns the exit code. Output lines go to `print` (stdout by
 * default), errors to `printError` (stderr). Never exits the process.
 */
export async function runBench(argv: string[], print: Print = (l) => process.stdout.write(`${l}\n`), printError: Print = (l) => process.stderr.write(`${l}\n`)): Promise<number> {
  let parsed: ReturnType<typeof parseBenchArgs>;
  try {
    parsed = parseBenchArgs(argv);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    printError(`omega bench: ${error.message}`);
    printError('(see omega bench --help)');
    return 2;
  }
  try {
    switch (parsed.command) {
      case 'help':
        print(BENCH_USAGE);
        return 0;
      case 'sim':
        return await runSimCommand(parsed.options, print);
      case 'live':
        return await runLiveCommand(parsed.options, print);
      case 'report':
        return await runReportCommand(parsed.out, print);
      case 'sync':
        return await runColdSync(parsed.options, print);
      case 'sync-help':
        print(COLD_SYNC_USAGE);
        return 0;
      case 'cli':
        return await runCliBench(parsed.options, print);
      case 'cli-help':
        print(CLI_BENCH_USAGE);
        return 0;
    }
  } catch (error) {
    printError(`omega bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}
