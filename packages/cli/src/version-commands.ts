/**
 * `omega update | scale | history | rollback`: new versions of a running job (UpdateJob) and its
 * list of versions (GetJobHistory).
 *
 * ```
 *   update -f job.yaml [ID]   a new spec; without ID, the one running job of the file's name
 *                             (and namespace), as `nomad job run` finds a job by its name
 *   scale ID N                only the instance count
 *   history ID                versions, newest first: number, when, who, what changed
 *   rollback ID [VERSION]     an earlier version's spec as a NEW version (default: the previous)
 * ```
 * Services replace their instances by a rolling update (`omega job ID` shows its progress);
 * batch jobs use the new spec for attempts placed after it. An unchanged spec stores nothing
 * and says so. `--expect-version N` refuses the change unless the job is still at version N.
 */
import { Command, InvalidArgumentError } from 'commander';
import { type CommandContext, nonNegativeInt, write, dnsLabel } from './command-context.js';
import { loadJobFile } from './job-file-input.js';
import { formatHistory, json } from './output.js';
import type { UpdateJobRequestInput } from '@omega/api/wire';
import { CliError } from './errors.js';
import { jobOutput, submitSpecToWire, versionOutput } from './wire.js';

function positiveInt(name: string): (value: string) => number {
  const parse = nonNegativeInt(name);
  return (value) => {
    const n = parse(value);
    if (n < 1) throw new InvalidArgumentError(`${name} must be a whole number >= 1`);
    return n;
  };
}

/** Registers the commands on `program`. */
export function registerVersionCommands(program: Command, context: CommandContext): void {
  const { io } = context;
  const cwd = io.cwd ?? process.cwd();

  /** Sends an UpdateJob and prints what it did: one line, or the job as JSON with `changed`, `version`, `change`. */
  const update = async (command: Command, request: UpdateJobRequestInput, options: { expectVersion?: number }): Promise<void> => {
    const reply = await context.withClient(command, (client) => client.jobs.updateJob({ ...request, expected_version: options.expectVersion ?? 0 }));
    if (reply.job === null) throw new CliError('the API answered UpdateJob without the job');
    const job = jobOutput(reply.job);
    if (context.asJson(command)) {
      await write(io.stdout, `${json({ changed: reply.changed, version: reply.version, change: reply.change, job })}\n`);
      return;
    }
    const line = reply.changed ? `${job.id}: version ${reply.version}: ${reply.change}` : `${job.id}: unchanged at version ${reply.version} (nothing changed: no new version)`;
    // Only a new task spec or new constraints replace instances (a scale or a new priority does not).
    const rolling = reply.changed && job.kind === 'service' && /task\.|constraints/.test(reply.change) ? ' (instances are replaced by a rolling update: omega job shows its progress)' : '';
    await write(io.stdout, `${line}${rolling}\n`);
  };

  program
    .command('update')
    .description('store a new version of a running job from a job file (services: a rolling update)')
    .requiredOption('-f, --file <path>', 'job file (YAML or JSON; - for stdin)')
    .argument('[id]', "job id (default: the one running job of the file's name and namespace)")
    .option('-n, --namespace <ns>', "the job's namespace (default: the file's namespace:, else default)", dnsLabel('--namespace'))
    .option('--expect-version <n>', 'refuse unless the job is still at this version', positiveInt('--expect-version'))
    .action(async (id: string | undefined, options: { file: string; namespace?: string; expectVersion?: number }, command: Command) => {
      const { spec, secretEnv } = await loadJobFile(options.file, options.namespace, io, cwd);
      await update(command, { job_id: id ?? '', job: submitSpecToWire(spec, secretEnv) }, options);
    });

  program
    .command('scale')
    .description("change only a job's instance count (down stops the highest indexes, reason scaled-down)")
    .argument('<id>', 'job id')
    .argument('<instances>', 'the new instance count', positiveInt('<instances>'))
    .option('--expect-version <n>', 'refuse unless the job is still at this version', positiveInt('--expect-version'))
    .action(async (id: string, instances: number, options: { expectVersion?: number }, command: Command) => {
      await update(command, { job_id: id, scale: true, instances }, options);
    });

  program
    .command('rollback')
    .description("store an earlier version's spec as a new version (default: the previous version)")
    .argument('<id>', 'job id')
    .argument('[version]', 'the version to return to', positiveInt('[version]'))
    .option('--expect-version <n>', 'refuse unless the job is still at this version', positiveInt('--expect-version'))
    .action(async (id: string, version: number | undefined, options: { expectVersion?: number }, command: Command) => {
      await update(command, { job_id: id, rollback: true, rollback_to: version ?? 0 }, options);
    });

  program
    .command('history')
    .description("list a job's versions, newest first: when, who, what changed")
    .argument('<id>', 'job id')
    .action(async (id: string, _options: unknown, command: Command) => {
      const reply = await context.withClient(command, (client) => client.jobs.getJobHistory({ job_id: id }));
      const versions = reply.versions.map(versionOutput);
      await write(io.stdout, `${context.asJson(command) ? json(versions) : formatHistory(versions)}\n`);
    });
}
