/**
 * What every Omega process (API server, schedulers, node agents) takes on its command line and
 * checks the same way: the etcd endpoints and a log level, and the error a bad flag is. The parsers
 * return a problem as a value; the caller throws it as a {@link FlagError} naming its flag.
 */

/** A command-line flag was unknown, missing its value, or invalid; `flag` names it. */
export class FlagError extends Error {
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super(`${flag}: ${problem}`);
    this.name = 'FlagError';
  }
}

/** Where etcd is when no `--etcd` is given. */
export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';

/** pino's levels, least to most severe, then `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `--etcd URL[,URL...]` (undefined: the default) → the endpoints, or what is wrong with them. */
export function parseEtcdEndpoints(text: string | undefined): { readonly endpoints: string[] } | { readonly problem: string } {
  const endpoints = (text ?? DEFAULT_ETCD_ENDPOINT).split(',').map((s) => s.trim());
  if (endpoints.every((e) => e.length === 0)) return { problem: 'needs at least one endpoint' };
  for (const endpoint of endpoints) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return { problem: `${JSON.stringify(endpoint)} is not a URL like ${DEFAULT_ETCD_ENDPOINT}` };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: `${JSON.stringify(endpoint)} must be http:// or https://` };
    if (url.hostname === '' || url.pathname !== '/') return { problem: `${JSON.stringify(endpoint)} must be http(s)://host:port, without a path` };
  }
  return { endpoints };
}

/** `--log-level` (undefined: `info`) → the level, or what is wrong with it. */
export function parseLogLevel(text: string | undefined): { readonly level: LogLevel } | { readonly problem: string } {
  const level = text ?? 'info';
  return (LOG_LEVELS as readonly string[]).includes(level) ? { level: level as LogLevel } : { problem: `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}` };
}
