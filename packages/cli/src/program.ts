/**
 * The `omega` command line: one commander program, each command a thin function over the API
 * client and the formatters. Errors become one line on stderr and an exit status (see errors.ts:
 * 1 the work failed, 2 usage or configuration, 3-6 the API's refusals by kind); nothing here
 * calls `process.exit`, so the program runs in tests too.
 *
 * Commands that call the API resolve their connection (client config, flags, env: see
 * client-config.ts) only when they run, so `omega dev`, `omega pki` and `--help` need none.
 */
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { registerAccessCommands } from './access-commands.js';
import type { ApiClient } from './api-client.js';
import { registerCellCommands } from './cell-program.js';
import { resolveConnection, type ConnectionFlags } from './client-config.js';
import { type CliIo, type CommandContext, dnsLabel, nonNegativeInt, write } from './command-context.js';
import { CliError, EXIT_USAGE, errorLine } from './errors.js';
import { JobFileError, parseJobDocument } from './job-file.js';
import { readJobFile } from './job-file-input.js';
import { registerCronCommands } from './cron-commands.js';
import { registerMachineCommands } from './machine-commands.js';
import { registerPlanCommand } from './plan-command.js';
import { registerNamespaceCommands } from './namespace-commands.js';
import { registerVersionCommands } from './version-commands.js';
import { formatJob, formatJobs, formatMachines, formatStats, formatWatchEvent, json } from './output.js';
import { resolveSecretEnv } from './secret-env.js';
import { JOB_VIEW_STATE_WIRE } from '@omega/api/wire';
import type { JobState } from '@omega/cell-state/vocabulary';
import { jobOutput, machineOutput, schedulerOutput, submitSpecToWire } from './wire.js';

export type { CliIo };

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const JOB_STATES = ['pending', 'running', 'succeeded', 'failed', 'killed', 'unschedulable', 'scheduled'];

/** Builds the program. `io` is where it prints; every action resolves when its output is written. */
export function createProgram(io: CliIo): Command {
  const program = new Command();
  program
    .name('omega')
    .description('Omega: submit and inspect jobs on a cell, or run a local cell with `omega dev`')
    .addOption(new Option('--config <file>', 'client config: api, ca, token (default: $OMEGA_CONFIG, else ./.omega/client.yaml if present)'))
    .addOption(new Option('--api <host:port>', "the Omega API (default: $OMEGA_API, else the config's api, else 127.0.0.1:7070)"))
    .addOption(new Option('--token <token>', 'bearer token (prefer $OMEGA_TOKEN or the config file: a flag shows in ps and shell history)'))
    .addOption(new Option('--ca <file>', "the cell's CA certificate, PEM (default: $OMEGA_CA, else the config's ca)"))
    .option('--insecure', 'plaintext API (started with --insecure): no TLS, no token sent')
    .option('--json', 'machine-readable output')
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // One line per error, like every other error of the CLI.
      outputError: (text, writeErr) => writeErr(`omega: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .exitOverride();

  const cwd = io.cwd ?? process.cwd();
  const globals = (command: Command): ConnectionFlags & { json?: boolean } => command.optsWithGlobals();
  /** Runs `work` with a client of the API, closing it afterwards. */
  const withClient = async <T>(command: Command, work: (client: ApiClient) => Promise<T>): Promise<T> => {
    const connection = resolveConnection(globals(command), io.env, cwd);
    // Loaded only by the commands that call the API (the client, its wire definitions and protobufjs).
    const { ApiClient } = await import('./api-client.js');
    const client = new ApiClient(connection.address, undefined, connection.security);
    try {
      return await work(client);
    } finally {
      client.close();
    }
  };
  const context: CommandContext = { io, withClient, asJson: (command) => globals(command).json === true };

  program
    .command('submit')
    .description('submit a job from a YAML or JSON file; prints the job id')
    .requiredOption('-f, --file <path>', 'job file (YAML or JSON; - for stdin)')
    .option('-n, --namespace <ns>', "the job's namespace (default: the file's namespace:, else default)", dnsLabel('--namespace'))
    .option('--request-id <id>', 'idempotency key, kept 24 h: the same id and spec never create a second job; the same id with another spec is refused (default: a new one)')
    .action(async (options: { file: string; namespace?: string; requestId?: string }, command: Command) => {
      if (options.requestId !== undefined && !REQUEST_ID.test(options.requestId)) {
        throw new CliError("--request-id: must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", EXIT_USAGE);
      }
      const text = await readJobFile(options.file, cwd);
      let spec;
      let secretEnv;
      try {
        const parsed = parseJobDocument(text, options.file);
        spec = parsed.spec;
        // Like kubectl -n: the flag fills in a file without namespace:, and must agree with one that has it.
        if (options.namespace !== undefined) {
          if (parsed.namespaceGiven && parsed.spec.namespace !== options.namespace) {
            throw new CliError(`--namespace ${options.namespace} contradicts ${options.file}: namespace: ${parsed.spec.namespace}`, EXIT_USAGE);
          }
          spec = { ...spec, namespace: options.namespace };
        }
        // Read last, after every other check: a bad file never makes us touch a secret.
        secretEnv = resolveSecretEnv(parsed.secretEnv, spec, { env: io.env, baseDir: options.file === '-' ? cwd : dirname(resolve(cwd, options.file)) }, options.file);
      } catch (error) {
        if (error instanceof JobFileError) throw new CliError(error.message);
        throw error;
      }
      const requestId = options.requestId ?? `cli-${randomUUID()}`;
      const reply = await withClient(command, async (client) => {
        const { isRetryable } = await import('./api-client.js');
        // Retries reuse the request id, so a submit whose answer was lost never makes two jobs.
        for (let attempt = 1; ; attempt++) {
          try {
            return await client.jobs.submitJob({ job: submitSpecToWire(spec, secretEnv), request_id: requestId });
          } catch (error) {
            if (attempt < 3 && isRetryable(error)) continue;
            if (isRetryable(error)) throw new CliError(`${(error as Error).message} (to retry safely: --request-id ${requestId})`);
            throw error;
          }
        }
      });
      await write(io.stdout, globals(command).json === true ? `${json({ id: reply.job_id, created: reply.created, requestId })}\n` : `${reply.job_id}\n`);
    });

  program
    .command('jobs')
    .description('list jobs, newest first')
    .addOption(new Option('--state <state...>', 'only jobs in these states').choices(JOB_STATES))
    .option('-n, --namespace <ns>', 'only jobs of this namespace (default: every namespace the token may read)', dnsLabel('--namespace'))
    .option('--limit <n>', 'at most this many (default 1000)', nonNegativeInt('--limit'))
    .action(async (options: { state?: string[]; namespace?: string; limit?: number }, command: Command) => {
      const asJson = globals(command).json === true;
      const reply = await withClient(command, (client) =>
        client.jobs.listJobs({
          states: (options.state ?? []).map((s) => JOB_VIEW_STATE_WIRE[s as JobState]),
          limit: options.limit ?? 0,
          // JSON output lists every job's tasks, the same shape as `omega job ID --json`.
          include_tasks: asJson,
          namespace: options.namespace ?? '',
        }),
      );
      const jobs = reply.jobs.map(jobOutput);
      if (asJson) await write(io.stdout, `${json(jobs)}\n`);
      else await write(io.stdout, `${formatJobs(jobs, io.now(), options.namespace)}${reply.truncated ? '\n(more jobs exist: use --limit or --state)' : ''}\n`);
    });

  program
    .command('job')
    .description('show one job and its tasks')
    .argument('<id>', 'job id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const view = await withClient(command, (client) => client.jobs.getJob({ job_id: id }));
      const job = jobOutput(view);
      await write(io.stdout, `${globals(command).json === true ? json(job) : formatJob(job, io.now())}\n`);
    });

  program
    .command('kill')
    .description('kill a job: every task is stopped')
    .argument('<id>', 'job id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const reply = await withClient(command, (client) => client.jobs.killJob({ job_id: id }));
      if (reply.job === null) throw new CliError(`the API answered KillJob without the job ${id}`);
      const job = jobOutput(reply.job);
      await write(io.stdout, globals(command).json === true ? `${json(job)}\n` : `kill requested for ${job.id} (${job.state})\n`);
    });

  program
    .command('logs')
    .description("print a task's output (stdout unless --stderr)")
    .argument('<id>', 'job id')
    .argument('<index>', 'task index', nonNegativeInt('<index>'))
    .option('--stderr', 'print standard error instead of standard output')
    .option('--attempt <n>', 'which attempt (default: the current one)', nonNegativeInt('--attempt'))
    .option('-f, --follow', 'keep printing what the task writes until its attempt has ended (Ctrl-C stops)')
    .action(async (id: string, index: number, options: { stderr?: boolean; attempt?: number; follow?: boolean }, command: Command) => {
      await withClient(command, (client) =>
        client.jobs.getTaskLogs({ job_id: id, index, stream: options.stderr === true ? 'STREAM_STDERR' : 'STREAM_STDOUT', attempt: options.attempt ?? 0, follow: options.follow === true }, async (chunk) => {
          if (chunk.data.length > 0) await write(io.stdout, chunk.data);
          // On stderr: the output itself stays exactly the task's bytes.
          if (chunk.truncated === true) await write(io.stderr, `omega: the ${options.stderr === true ? 'stderr' : 'stdout'} of ${id}/${index} was truncated by the agent's log cap: only its newest part is shown\n`);
        }),
      );
    });

  program
    .command('watch')
    .description('print the job, then a line per change, until the job ends')
    .argument('<id>', 'job id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const asJson = globals(command).json === true;
      await withClient(command, (client) =>
        client.jobs.watchJob({ job_id: id }, (event) => {
          if (event.job === null) return;
          const job = jobOutput(event.job);
          return write(io.stdout, `${asJson ? JSON.stringify({ revision: event.revision, job }) : formatWatchEvent(job, io.now())}\n`);
        }),
      );
    });

  program
    .command('machines')
    .description("list the cell's machines with what is allocated on them")
    .action(async (_options: unknown, command: Command) => {
      const reply = await withClient(command, (client) => client.cells.listMachines({}));
      const machines = reply.machines.map(machineOutput);
      await write(io.stdout, `${globals(command).json === true ? json(machines) : formatMachines(machines)}\n`);
    });

  program
    .command('stats')
    .description("the schedulers' transactions, conflicts and busyness")
    .action(async (_options: unknown, command: Command) => {
      const reply = await withClient(command, (client) => client.cells.getSchedulerStats({}));
      const schedulers = reply.schedulers.map(schedulerOutput);
      await write(io.stdout, `${globals(command).json === true ? json(schedulers) : formatStats(schedulers)}\n`);
    });

  registerAccessCommands(program, context);
  registerNamespaceCommands(program, context);
  registerMachineCommands(program, context);
  registerPlanCommand(program, context);
  registerCronCommands(program, context);
  registerVersionCommands(program, context);
  registerCellCommands(program, io);

  const dev = program
    .command('dev')
    .description('run a local cell in the foreground: etcd, the API, agents and schedulers (Ctrl-C stops it all)')
    .option('--data-dir <dir>', 'where the cell keeps its state and logs', './.omega')
    .option('--etcd <url>', 'use this etcd instead of starting one')
    .option('--cell <name>', 'cell name', 'default')
    .option('--listen <host:port>', 'address of the API', '127.0.0.1:7070')
    .option('--machines <n>', 'real agents on this host', nonNegativeInt('--machines'), 2)
    .option('--machine-cpu <qty>', "each agent's CPU (default: an equal share of the host)")
    .option('--machine-memory <qty>', "each agent's memory (default: an equal share of the host)")
    .option('--hollow <n>', 'simulated machines, served by one hollow agent', nonNegativeInt('--hollow'), 0)
    .option('--batch-schedulers <n>', 'batch scheduler processes', nonNegativeInt('--batch-schedulers'), 2)
    .option('--service-schedulers <n>', 'service scheduler processes', nonNegativeInt('--service-schedulers'), 1)
    .option('--no-enforcement', 'run tasks without cgroup limits (the default when not root)')
    .option('--log-level <level>', "children's log level", 'info')
    .option('--demo', 'submit a small demo workload once the cell is up')
    .option('--insecure', 'the old plaintext cell: no TLS, no tokens, no etcd users (anyone reaching it can run anything)');
  dev.action(async (options: Record<string, unknown>, command: Command) => {
    // --insecure is also a global flag, which commander may hand to the program instead.
    const { runDev, devOptionsFrom } = await import('./dev/dev-cell.js');
    const settings = devOptionsFrom({ ...options, insecure: command.optsWithGlobals().insecure }, command.getOptionValueSource('enforcement') === 'cli');
    await runDev(settings, io);
  });

  program
    .command('bench')
    .description("reproduce the Omega paper's experiments: `omega bench sim|live --experiment ...` (omega bench --help)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      // Loaded only here: the benchmark pulls in the schedulers and the chart renderer.
      const { runBench } = await import('@omega/bench');
      const code = await runBench(args.length === 0 ? ['--help'] : args, (line) => io.stdout.write(`${line}\n`), (line) => io.stderr.write(`${line}\n`));
      if (code !== 0) throw new SilentExit(code);
    });

  return program;
}

/** A command that has already said what went wrong and only needs its exit status returned. */
class SilentExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** Runs the program on `argv` (as `process.argv`); resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof SilentExit) return error.exitCode;
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; they exit 0 and have printed already.
      if (error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      return EXIT_USAGE;
    }
    io.stderr.write(`${errorLine(error)}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}
