/**
 * `omega token create|list|revoke` and `omega whoami`: the AccessService from the command line.
 *
 * A new token's bearer text is printed once, alone on stdout (so `$(omega token create ...)`
 * captures exactly it), with a hint on stderr to store it; the cell keeps only its hash, so it
 * cannot be shown again. Nothing else ever prints a token, and no error quotes one.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { CliError, EXIT_USAGE } from './errors.js';
import { parseDuration } from './job-file.js';
import { type CommandContext, dnsLabel, write } from './command-context.js';
import { formatTokens, formatWhoami, json } from './output.js';
import type { Role } from '@omega/api/wire';
import { ROLE_WIRE, tokenOutput, type RoleName } from './wire.js';

const ALL_NAMESPACES = '*';
const NAMESPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** `a,b` → `['a', 'b']`; `*` for every namespace. Refuses empty entries and non-labels. */
export function parseNamespaceList(value: string): string[] {
  const list = value.split(',').map((n) => n.trim());
  for (const n of list) {
    if (n !== ALL_NAMESPACES && !NAMESPACE.test(n)) {
      throw new InvalidArgumentError(`--namespaces must be namespace names separated by commas (DNS labels), or * for every namespace; ${JSON.stringify(n)} is not one`);
    }
  }
  return [...new Set(list)];
}

/** `30d`, `12h`, `90m`: a token's lifetime in ms (0: never expires). */
export function parseTtl(value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new InvalidArgumentError(`--ttl: ${(error as Error).message}`);
  }
}

/**
 * The CreateToken request of `omega token create`, after the checks that need no server: a
 * read or submit token names its namespaces; an admin token covers every namespace, so naming
 * some would mislead. Throws a usage {@link CliError}.
 */
export function createTokenRequest(name: string, options: { role: RoleName; namespaces?: string[]; ttl?: number }): { name: string; role: Role; namespaces: string[]; ttl_ms: number } {
  const namespaces = options.namespaces ?? [];
  if (options.role === 'admin') {
    if (namespaces.some((n) => n !== ALL_NAMESPACES)) throw new CliError('--namespaces: an admin token covers every namespace; leave --namespaces out (or give *)', EXIT_USAGE);
  } else if (namespaces.length === 0) {
    throw new CliError(`--namespaces: a ${options.role} token needs the namespaces it may use (a,b, or * for every namespace)`, EXIT_USAGE);
  }
  return { name, role: ROLE_WIRE[options.role], namespaces: options.role === 'admin' ? [ALL_NAMESPACES] : namespaces, ttl_ms: options.ttl ?? 0 };
}

/** Registers `token` (create, list, revoke) and `whoami` on `program`. */
export function registerAccessCommands(program: Command, context: CommandContext): void {
  const { io } = context;
  const token = program.command('token').description('bearer tokens of the cell (admin only): create, list, revoke');

  token
    .command('create')
    .description('create a token and print it once (the cell keeps only its hash)')
    .argument('<name>', 'the token name (a DNS label, unique in the cell)', dnsLabel('<name>'))
    .addOption(new Option('--role <role>', 'read: see jobs, machines, stats, logs; submit: also submit and kill; admin: everything').choices(Object.keys(ROLE_WIRE)).makeOptionMandatory())
    .option('--namespaces <list>', 'namespaces it may use, comma-separated, * for every one (required for read and submit)', parseNamespaceList)
    .option('--ttl <duration>', 'expires after this long: 30d, 12h, 90m (default: never)', parseTtl)
    .action(async (name: string, options: { role: RoleName; namespaces?: string[]; ttl?: number }, command: Command) => {
      const request = createTokenRequest(name, options);
      const reply = await context.withClient(command, (client) => client.access.createToken(request));
      if (reply.token === null) throw new CliError('the API answered CreateToken without the token');
      const info = tokenOutput(reply.token);
      if (context.asJson(command)) await write(io.stdout, `${json({ token: info, secret: reply.secret })}\n`);
      else await write(io.stdout, `${reply.secret}\n`);
      // On stderr, so stdout is the token alone.
      await write(
        io.stderr,
        `omega: created token ${info.name} (${info.role}${info.role === 'admin' ? '' : ` in ${info.namespaces.join(',')}`}${info.expiresAtMs > 0 ? `, expires ${new Date(info.expiresAtMs).toISOString()}` : ''}). ` +
          'It is shown only now: store it, e.g. in a client config (token: ...) or a secret manager, and use it with OMEGA_TOKEN.\n',
      );
    });

  token
    .command('list')
    .description('every token: name, role, namespaces, expiry (never the secrets)')
    .action(async (_options: unknown, command: Command) => {
      const reply = await context.withClient(command, (client) => client.access.listTokens({}));
      const tokens = reply.tokens.map(tokenOutput);
      await write(io.stdout, `${context.asJson(command) ? json(tokens) : formatTokens(tokens, io.now())}\n`);
    });

  token
    .command('revoke')
    .description('revoke a token: every API server refuses it from now on')
    .argument('<name>', 'the token name', dnsLabel('<name>'))
    .action(async (name: string, _options: unknown, command: Command) => {
      await context.withClient(command, (client) => client.access.revokeToken({ name }));
      await write(io.stdout, context.asJson(command) ? `${json({ revoked: name })}\n` : `revoked token ${name}\n`);
    });

  program
    .command('whoami')
    .description("the caller's token: name, role, namespaces, expiry")
    .action(async (_options: unknown, command: Command) => {
      const reply = await context.withClient(command, (client) => client.access.whoAmI({}));
      const info = tokenOutput(reply);
      await write(io.stdout, `${context.asJson(command) ? json(info) : formatWhoami(info, io.now())}\n`);
    });
}
