/**
 * `omega runs ID`: the runs of a cron job (a batch job with `schedule:`), newest first, each an
 * ordinary job (`omega job`, `omega logs`, `omega kill` work on it). The job itself shows its
 * schedule, runs made and skipped, and the next time (`omega job ID`).
 */
import type { Command } from 'commander';
import { type CommandContext, nonNegativeInt, write } from './command-context.js';
import { formatJobs, json } from './output.js';
import { jobOutput } from './wire.js';

/** Registers `runs` on `program`. */
export function registerCronCommands(program: Command, context: CommandContext): void {
  const { io } = context;
  program
    .command('runs')
    .description('list the runs of a cron job, newest first')
    .argument('<id>', 'the cron job (a batch job with schedule:)')
    .option('--limit <n>', 'at most this many (default 1000)', nonNegativeInt('--limit'))
    .action(async (id: string, options: { limit?: number }, command: Command) => {
      const asJson = context.asJson(command);
      const reply = await context.withClient(command, (client) =>
        client.jobs.listJobs({ states: [], limit: options.limit ?? 0, include_tasks: asJson, namespace: '', cron_of: id }),
      );
      const runs = reply.jobs.map(jobOutput);
      if (asJson) await write(io.stdout, `${json(runs)}\n`);
      else await write(io.stdout, `${runs.length === 0 ? `No runs of ${id} yet.` : formatJobs(runs, io.now())}${reply.truncated ? '\n(more runs: raise --limit)' : ''}\n`);
    });
}
