/**
 * `omega plan`: what a submit, an update or a scale would do, changing nothing (PlanJob).
 *
 * ```
 *   plan -f job.yaml            as `omega submit -f job.yaml` would: a new job
 *   plan -f job.yaml ID         as `omega update -f job.yaml ID` would
 *   plan --instances N ID       as `omega scale ID N` would
 * ```
 *
 * The plan is worked out by the API server with the schedulers' placement code on the cell as it
 * is now: which instances would be placed (and where), replaced or stopped, which would wait and
 * why (per filter, as `omega job` says of a pending job), and which lower-priority tasks would be
 * preempted. Secret env values of the file are not sent: a plan needs only their names.
 */
import type { PlanJobRequestInput, PlanJobResponse } from '@omega/api/wire';
import { Command, InvalidArgumentError } from 'commander';
import { type CommandContext, dnsLabel, nonNegativeInt, write } from './command-context.js';
import { CliError, EXIT_USAGE } from './errors.js';
import { loadJobFile } from './job-file-input.js';
import { json } from './output.js';
import { submitSpecToWire } from './wire.js';

/** PlanJobResponse as decoded (the API's own wire shape). */
export type WirePlan = PlanJobResponse;

/** Index lists as ranges: `0-3, 5`. */
function indexes(list: readonly number[]): string {
  const sorted = [...list].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i] as number;
    let end = start;
    while (sorted[i + 1] === end + 1) end = sorted[++i] as number;
    parts.push(end === start ? String(start) : `${start}-${end}`);
  }
  return parts.join(', ');
}

/** `m0: 0-2, m1: 3` for placed tasks. */
function byMachine(tasks: readonly { index: number; machine: string }[]): string {
  const groups = new Map<string, number[]>();
  for (const t of tasks) if (t.machine !== '') groups.set(t.machine, [...(groups.get(t.machine) ?? []), t.index]);
  return [...groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([m, list]) => `${m}: ${indexes(list)}`).join('; ');
}

/** The plan in words, one line per kind of change. */
export function formatPlan(plan: WirePlan, what: string): string {
  const lines = [`${what}${plan.change === '' ? '' : `: ${plan.change}`} (version ${plan.version})`];
  if (plan.refused !== '') lines.push(`  ! would be refused: ${plan.refused}`);
  const placed = plan.create.filter((t) => t.machine !== '');
  if (placed.length > 0) lines.push(`  + place ${placed.length} instance${placed.length === 1 ? '' : 's'} (${byMachine(placed)})`);
  if (plan.replace.length > 0) {
    const moved = plan.replace.filter((t) => t.machine !== '');
    lines.push(`  ~ replace ${plan.replace.length} instance${plan.replace.length === 1 ? '' : 's'}, ${plan.replace_step} at a time${moved.length > 0 ? ` (${byMachine(moved)})` : ''}`);
  }
  const stops = plan.stop.filter((s) => s.reason !== 'updated');
  if (stops.length > 0) lines.push(`  - stop ${indexes(stops.map((s) => s.index))} (${[...new Set(stops.map((s) => s.reason))].join(', ')})`);
  if (plan.unplaced.length > 0) lines.push(`  ! ${indexes(plan.unplaced)} would wait: ${plan.reason}`);
  for (const p of plan.preempt) lines.push(`  x preempt ${p.task_id} on ${p.machine} (priority ${p.priority})`);
  if (lines.length === 1) lines.push('  = nothing to do');
  return lines.join('\n');
}

/** Registers `plan` on `program`. */
export function registerPlanCommand(program: Command, context: CommandContext): void {
  const { io } = context;
  const cwd = io.cwd ?? process.cwd();
  program
    .command('plan')
    .description('show what submit, update or scale would do, changing nothing')
    .option('-f, --file <path>', 'job file (YAML or JSON; - for stdin): a submit, or with ID an update')
    .argument('[id]', 'the job to update (with -f) or scale (with --instances)')
    .option('--instances <n>', 'with ID and no file: plan a scale to this many instances', (value: string) => {
      const n = nonNegativeInt('--instances')(value);
      if (n < 1) throw new InvalidArgumentError('--instances must be a whole number >= 1');
      return n;
    })
    .option('-n, --namespace <ns>', "the job's namespace (default: the file's namespace:, else default)", dnsLabel('--namespace'))
    .action(async (id: string | undefined, options: { file?: string; instances?: number; namespace?: string }, command: Command) => {
      if ((options.file === undefined) === (options.instances === undefined)) throw new CliError('plan: give -f FILE (a submit, or with ID an update) or --instances N with ID (a scale)', EXIT_USAGE);
      if (options.instances !== undefined && id === undefined) throw new CliError('plan --instances: name the job to scale', EXIT_USAGE);
      let request: PlanJobRequestInput;
      let what: string;
      if (options.file !== undefined) {
        const { spec } = await loadJobFile(options.file, options.namespace, io, cwd);
        request = { job: submitSpecToWire(spec), job_id: id ?? '' };
        what = id === undefined ? `submit ${spec.name} (namespace ${spec.namespace})` : `update ${id}`;
      } else {
        request = { job_id: id, instances: options.instances };
        what = `scale ${id ?? ''} to ${options.instances ?? 0}`;
      }
      const plan = await context.withClient(command, (client) => client.jobs.planJob(request));
      await write(io.stdout, `${context.asJson(command) ? json(plan) : formatPlan(plan, what)}\n`);
    });
}
