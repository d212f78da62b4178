/**
 * Declares the operator's setup commands, `omega pki init|issue` and `omega cell init` (see
 * cell-commands.ts for what they do). Apart from their work so that declaring them, which every
 * run of the program does (`--help` included), loads neither @omega/pki nor the store: an action
 * imports cell-commands.ts when it runs.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { DEFAULT_CONFIG_PATH } from './client-config.js';
import type { CliIo } from './command-context.js';

/** @omega/pki's DEFAULT_CA_VALID_DAYS and DEFAULT_CERT_VALID_DAYS, for the help text (cell-program.test.ts keeps them equal). */
export const HELP_CA_VALID_DAYS = 3650;
export const HELP_CERT_VALID_DAYS = 825;
/** @omega/pki's LOOPBACK_HOSTS, for the help text. */
export const HELP_LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', '::1', 'localhost'];

/** `--valid-days`: a whole number of days, 1-36500. */
function days(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 36_500) throw new InvalidArgumentError('must be a whole number of days from 1 to 36500');
  return Number(value);
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Adds `omega pki init` and `omega pki issue`. */
function addPkiCommands(program: Command, io: CliIo): void {
  const say = (line: string): void => void io.stdout.write(`${line}\n`);
  const pki = program.command('pki').description("a cell's private certificate authority and its components' certificates");

  pki
    .command('init')
    .description('create a CA in a directory (kept when one is there)')
    .requiredOption('--dir <dir>', 'where the CA lives (created 0700)')
    .option('--name <cn>', "the CA's common name", 'omega CA')
    .option('--valid-days <n>', `how long the CA is valid (default ${HELP_CA_VALID_DAYS})`, days)
    .action(async (options: { dir: string; name: string; validDays?: number }) => {
      const { pkiInit } = await import('./cell-commands.js');
      await pkiInit(options, say);
    });

  pki
    .command('issue')
    .description("issue a certificate and key for one identity, signed by the directory's CA (replaces that identity's files)")
    .requiredOption('--dir <dir>', 'the directory of the CA (omega pki init)')
    .requiredOption('--name <name>', 'the identity: root, omega-api, omega-scheduler, omega-agent-<machine>, omega-hollow, or your own; its CN (the etcd user) and file names')
    .option('--host <hosts>', `DNS names or IPs the certificate is valid for, beyond ${HELP_LOOPBACK_HOSTS.join(', ')} (comma-separated, repeatable)`, collect)
    .option('--valid-days <n>', `how long it is valid (default ${HELP_CERT_VALID_DAYS}, never past the CA)`, days)
    .action(async (options: { dir: string; name: string; host?: string[]; validDays?: number }) => {
      const { pkiIssue } = await import('./cell-commands.js');
      await pkiIssue(options, say);
    });
}

/** Adds `omega pki init|issue` and `omega cell init`. */
export function registerCellCommands(program: Command, io: CliIo): void {
  addPkiCommands(program, io);
  const cell = program.command('cell').description("set up a cell's etcd access and first admin token");
  cell
    .command('init')
    .description("as etcd's root: one etcd user and role per component, auth on, the first admin token, a client config")
    .option('--etcd <urls>', 'the https:// client URL(s) of etcd, comma-separated')
    .option('--cert <file>', 'the root identity\'s certificate (CN root), signed by --ca')
    .option('--key <file>', 'its private key')
    .option('--cell <name>', 'cell name', 'default')
    .option('--machines <ids>', 'machine ids of the real agents, comma-separated: a user omega-agent-<id> each')
    .option('--hollow', 'also the hollow agent\'s user omega-hollow')
    .option('--hollow-prefix <prefix>', "restrict omega-hollow to machines named <prefix>-* (its --hollow-prefix)")
    .option('--token-name <name>', 'name of the admin token', 'admin')
    .option('--write-config <file>', 'where to write the client config (api, ca, token)', DEFAULT_CONFIG_PATH)
    .action(async (_options: unknown, command: Command) => {
      const { cellInit, cellInitSettings } = await import('./cell-commands.js');
      // --ca and --api are the program's global flags: read them with the command's own.
      const settings = cellInitSettings(command.optsWithGlobals(), io.cwd ?? process.cwd());
      await cellInit(settings, (line) => void io.stdout.write(`${line}\n`));
    });
}
