/**
 * `omega namespace create|list` and `omega quota set|get`: the NamespaceService from the command
 * line.
 *
 * `quota set` changes only the resources it is given and keeps the others (it reads the quota
 * first): `omega quota set team-a --memory 16Gi` raises memory and leaves CPU and tasks as they
 * were. A value of 0 removes the limit on that resource; all three at 0 remove the quota. The
 * read and the write are two calls, so two admins setting different resources of one namespace
 * at the same instant may lose one change; admission itself (submits against the quota) is
 * guarded by the server's transactions and is not affected.
 */
import { parseBytes, parseCpuMillis } from '@omega/cell-state/vocabulary';
import { Command, InvalidArgumentError } from 'commander';
import { CliError, EXIT_USAGE } from './errors.js';
import { type CommandContext, dnsLabel, nonNegativeInt, write } from './command-context.js';
import { formatNamespaces, formatQuota, json } from './output.js';
import { namespaceOutput, type Quota } from './wire.js';

/** `--cpu 4`, `--cpu 500m` → millicores (the job files' CPU quantities). */
function cpuQuantity(value: string): number {
  try {
    return parseCpuMillis(value);
  } catch (error) {
    throw new InvalidArgumentError(`--${(error as Error).message} (0: no limit)`);
  }
}

/** `--memory 8Gi` → bytes (the job files' memory quantities). */
function memoryQuantity(value: string): number {
  try {
    return parseBytes(value);
  } catch (error) {
    throw new InvalidArgumentError(`--${(error as Error).message} (0: no limit)`);
  }
}

export interface QuotaChange {
  readonly cpu?: number;
  readonly memory?: number;
  readonly tasks?: number;
}

/**
 * The quota to store: `current` (null: none) with `change` applied. Throws a usage error when
 * `change` changes nothing, so `omega quota set NS` alone cannot silently remove a quota.
 */
export function mergeQuota(current: Quota | null, change: QuotaChange): Quota {
  if (change.cpu === undefined && change.memory === undefined && change.tasks === undefined) {
    throw new CliError('quota set: give at least one of --cpu, --memory, --tasks (0 removes that limit)', EXIT_USAGE);
  }
  return {
    cpu_millis: change.cpu ?? current?.cpu_millis ?? 0,
    memory_bytes: change.memory ?? current?.memory_bytes ?? 0,
    tasks: change.tasks ?? current?.tasks ?? 0,
  };
}

/** Registers `namespace` (create, list) and `quota` (set, get) on `program`. */
export function registerNamespaceCommands(program: Command, context: CommandContext): void {
  const { io } = context;
  const namespace = program.command('namespace').alias('ns').description('namespaces of the cell: create (admin), list');

  namespace
    .command('create')
    .description('create a namespace (admin); jobs name it with namespace: in their file')
    .argument('<name>', 'a DNS label', dnsLabel('<name>'))
    .action(async (name: string, _options: unknown, command: Command) => {
      const view = await context.withClient(command, (client) => client.namespaces.createNamespace({ name }));
      const out = namespaceOutput(view);
      await write(io.stdout, context.asJson(command) ? `${json(out)}\n` : `created namespace ${out.name}\n`);
    });

  namespace
    .command('list')
    .description('the namespaces this token may read, with use and quota')
    .action(async (_options: unknown, command: Command) => {
      const reply = await context.withClient(command, (client) => client.namespaces.listNamespaces({}));
      const namespaces = reply.namespaces.map(namespaceOutput);
      await write(io.stdout, `${context.asJson(command) ? json(namespaces) : formatNamespaces(namespaces, io.now())}\n`);
    });

  const quota = program.command('quota').description("a namespace's quota: CPU, memory and live tasks (set: admin)");

  quota
    .command('set')
    .description('set limits of a namespace; resources not given keep their limit; 0 removes one')
    .argument('<namespace>', 'the namespace', dnsLabel('<namespace>'))
    .option('--cpu <qty>', 'CPU of all live tasks together: 4, 500m', cpuQuantity)
    .option('--memory <qty>', 'memory of all live tasks together: 8Gi, 512Mi', memoryQuantity)
    .option('--tasks <n>', 'live tasks (every instance of a job that has not ended)', nonNegativeInt('--tasks'))
    .action(async (name: string, options: QuotaChange, command: Command) => {
      // Checked before any call: a bare `quota set NS` is a mistake, not a request.
      mergeQuota(null, options);
      const view = await context.withClient(command, async (client) => {
        const current = await client.namespaces.getQuota({ namespace: name });
        return client.namespaces.setQuota({ namespace: name, quota: mergeQuota(current.has_quota ? current.quota : null, options) });
      });
      const out = namespaceOutput(view);
      await write(io.stdout, `${context.asJson(command) ? json(out) : formatQuota(out)}\n`);
    });

  quota
    .command('get')
    .description("a namespace's quota and what its live jobs use")
    .argument('<namespace>', 'the namespace', dnsLabel('<namespace>'))
    .action(async (name: string, _options: unknown, command: Command) => {
      const view = await context.withClient(command, (client) => client.namespaces.getQuota({ namespace: name }));
      const out = namespaceOutput(view);
      await write(io.stdout, `${context.asJson(command) ? json(out) : formatQuota(out)}\n`);
    });
}
