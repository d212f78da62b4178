/**
 * `omega cordon|uncordon|drain MACHINE`: an operator's maintenance of a machine (admin).
 *
 * ```
 *   cordon    no new placements; its tasks keep running (kept across agent restarts)
 *   drain     cordon + move its tasks off: service instances replaced within their update's
 *             maxUnavailable, batch tasks let run until the deadline (--deadline, default 1h),
 *             then stopped (machine-drained) and placed again elsewhere
 *   uncordon  takes placements again (ends a drain too)
 * ```
 */
import { Command, InvalidArgumentError } from 'commander';
import { type CommandContext, write } from './command-context.js';
import { parseDuration } from './job-file.js';
import { formatMachines, json } from './output.js';
import type { CellServiceClient } from '@omega/api/wire';
import { machineOutput, type MachineOutput } from './wire.js';

function deadline(value: string): number {
  try {
    const ms = parseDuration(value);
    if (ms <= 0) throw new Error(`${JSON.stringify(value)} must be longer than 0`);
    return ms;
  } catch (error) {
    throw new InvalidArgumentError(`--deadline: ${(error as Error).message}`);
  }
}

function reason(value: string): string {
  if (value.length > 256) throw new InvalidArgumentError('--reason must be at most 256 characters');
  return value;
}

/** What the command did, in one line, then the machine as the cell now has it. */
function describe(verb: string, machine: MachineOutput): string {
  return `${verb} ${machine.id}\n${formatMachines([machine])}`;
}

/** Registers `cordon`, `uncordon` and `drain` on `program`. */
export function registerMachineCommands(program: Command, context: CommandContext): void {
  const { io } = context;
  const call = async (command: Command, method: 'cordonMachine' | 'uncordonMachine' | 'drainMachine', request: { machine_id: string; reason?: string; deadline_ms?: number }, verb: string): Promise<void> => {
    const view = await context.withClient(command, (client) => (client.cells[method] as CellServiceClient['drainMachine'])(request));
    const machine = machineOutput(view);
    await write(io.stdout, `${context.asJson(command) ? json(machine) : describe(verb, machine)}\n`);
  };

  program
    .command('cordon')
    .description('stop new placements on a machine (admin); its tasks keep running')
    .argument('<machine>', 'machine id')
    .option('--reason <text>', 'shown by omega machines', reason)
    .action(async (machine: string, options: { reason?: string }, command: Command) => {
      await call(command, 'cordonMachine', { machine_id: machine, reason: options.reason ?? '' }, 'cordoned');
    });

  program
    .command('uncordon')
    .description('let a cordoned or draining machine take placements again (admin)')
    .argument('<machine>', 'machine id')
    .action(async (machine: string, _options: unknown, command: Command) => {
      await call(command, 'uncordonMachine', { machine_id: machine }, 'uncordoned');
    });

  program
    .command('drain')
    .description('cordon a machine and move its tasks off (admin): services within maxUnavailable, batch tasks at the deadline')
    .argument('<machine>', 'machine id')
    .option('--deadline <duration>', 'how long batch tasks may still run there: 30m, 2h (default 1h)', deadline)
    .option('--reason <text>', 'shown by omega machines', reason)
    .action(async (machine: string, options: { deadline?: number; reason?: string }, command: Command) => {
      await call(command, 'drainMachine', { machine_id: machine, reason: options.reason ?? '', deadline_ms: options.deadline ?? 0 }, 'draining');
    });
}
