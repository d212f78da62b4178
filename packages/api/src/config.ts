/**
 * `omega-api`'s command line, parsed with `util.parseArgs` and validated into a typed
 * configuration. Every problem is an {@link ApiConfigError} naming the flag; the entry point
 * prints it and exits with status 2. Pure.
 */
import { parseArgs } from 'node:util';

export const API_USAGE = `usage: omega-api [flags]

  --etcd URL[,URL...]   etcd endpoints (default http://127.0.0.1:2379)
  --cell NAME           cell name (default "default")
  --listen HOST:PORT    gRPC address to serve on (default 127.0.0.1:7070; port 0: any free port)
  --log-level LEVEL     trace, debug, info, warn, error, fatal, silent (default info)
  --help                this text
`;

/** A bad flag or value; `flag` names it (`--listen`). */
export class ApiConfigError extends Error {
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super(`${flag}: ${problem}`);
    this.name = 'ApiConfigError';
  }
}

export interface ApiConfig {
  readonly help: boolean;
  readonly etcdEndpoints: readonly string[];
  readonly cell: string;
  readonly listen: string;
  readonly logLevel: string;
}

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses and validates the API server's flags. Throws {@link ApiConfigError}. */
export function parseApiArgs(argv: readonly string[]): ApiConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        etcd: { type: 'string' },
        cell: { type: 'string' },
        listen: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    // parseArgs names the flag in its message ("Unknown option '--x'").
    const message = (error as Error).message;
    throw new ApiConfigError(/'(--?[A-Za-z-]+)/.exec(message)?.[1] ?? 'arguments', message);
  }

  const etcdEndpoints = (values.etcd ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (etcdEndpoints.length === 0) throw new ApiConfigError('--etcd', 'needs at least one endpoint');
  for (const endpoint of etcdEndpoints) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new ApiConfigError('--etcd', `${JSON.stringify(endpoint)} is not a URL like http://127.0.0.1:2379`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ApiConfigError('--etcd', `${JSON.stringify(endpoint)} must be http:// or https://`);
  }

  const cell = values.cell ?? 'default';
  if (!CELL.test(cell)) throw new ApiConfigError('--cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);

  const listen = values.listen ?? '127.0.0.1:7070';
  const match = HOST_PORT.exec(listen);
  if (match === null || Number(match[2]) > 65535) throw new ApiConfigError('--listen', `must be HOST:PORT with a port from 0 to 65535, got ${JSON.stringify(listen)}`);

  const logLevel = values['log-level'] ?? 'info';
  if (!LOG_LEVELS.has(logLevel)) throw new ApiConfigError('--log-level', `must be one of ${[...LOG_LEVELS].join(', ')}, got ${JSON.stringify(logLevel)}`);

  return { help: values.help === true, etcdEndpoints, cell, listen, logLevel };
}
