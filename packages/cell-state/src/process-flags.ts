/**
 * What every Omega process (API server, schedulers, node agents) takes on its command line and
 * checks the same way: the etcd endpoints, how the process secures its connections (`--ca`,
 * `--cert`, `--key`, or `--insecure`), a log level, and the error a bad flag is. The simple
 * parsers return a problem as a value and the caller throws it as a {@link FlagError} naming its
 * flag; {@link parseEtcdConnection}, which weighs several flags together, throws it itself.
 *
 * ```
 *  --etcd, --ca, --cert, --key, --insecure ──► parseEtcdConnection ──► { endpoints, security }
 *     exactly one of: all of --ca --cert --key   (https:// endpoints only; files checked now)
 *                     --insecure                 (http:// endpoints only; loud warning)
 * ```
 */
import type { Logger } from 'pino';
import { parseListen } from '@omega/metrics/seam';
import { FlagError } from './flag-error.js';
import { loadTlsIdentity, type LoadedTlsIdentity, type TlsFiles } from './tls-identity.js';

export { FlagError } from './flag-error.js';

/** Where etcd is when no `--etcd` is given, with `--insecure`. */
export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';
/** Where etcd is when no `--etcd` is given, with `--ca`, `--cert` and `--key`. */
export const DEFAULT_SECURE_ETCD_ENDPOINT = 'https://127.0.0.1:2379';

/** pino's levels, least to most severe, then `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * `--etcd URL[,URL...]` (undefined: `fallback`, by default {@link DEFAULT_ETCD_ENDPOINT}) → the
 * endpoints, or what is wrong with them. Does not weigh the scheme against the security flags:
 * {@link parseEtcdConnection} does.
 */
export function parseEtcdEndpoints(text: string | undefined, fallback: string = DEFAULT_ETCD_ENDPOINT): { readonly endpoints: string[] } | { readonly problem: string } {
  const endpoints = (text ?? fallback).split(',').map((s) => s.trim());
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

/**
 * `--metrics-listen host:port` (undefined: no metrics server) → the address, or what is wrong.
 * Every process serves Prometheus' `/metrics` there (see @omega/metrics).
 */
export function parseMetricsListen(text: string | undefined): { readonly listen: string | undefined } | { readonly problem: string } {
  if (text === undefined) return { listen: undefined };
  try {
    parseListen(text);
    return { listen: text };
  } catch (error) {
    return { problem: (error as Error).message };
  }
}

/** The `--metrics-listen` line of a process's usage. */
export const METRICS_LISTEN_USAGE = '--metrics-listen HOST:PORT     serve Prometheus metrics at http://HOST:PORT/metrics (default: none)';

// ---- security: --ca, --cert, --key, --insecure ------------------------------------------------

/**
 * How a process secures its connections to etcd and its peers: a TLS identity signed by the
 * cell's CA (its CN is the process's etcd user), or none at all with `--insecure`.
 */
export type ProcessSecurity =
  | { readonly mode: 'tls'; readonly identity: LoadedTlsIdentity; readonly files: TlsFiles }
  | { readonly mode: 'insecure' };

/** The etcd endpoints and the security they are reached with, checked against each other. */
export interface EtcdConnection {
  readonly endpoints: readonly string[];
  readonly security: ProcessSecurity;
}

/** The raw values of the connection flags, as `util.parseArgs` returns them. */
export interface ConnectionFlagValues {
  readonly etcd?: string | undefined;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly insecure?: boolean | undefined;
}

/** `util.parseArgs` options of the security flags; spread them into a process's own options. */
export const SECURITY_FLAG_OPTIONS = {
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
} as const;

/**
 * The line every process logs at warn, once, at start, when run with `--insecure` (with the field
 * `insecure: true`): what the flag gives away.
 */
export const INSECURE_WARNING =
  'INSECURE (--insecure): etcd and the API are reached in plaintext with no credentials: anyone who can reach etcd or the API can read and rewrite the whole cell (every job, secret and token) and run any command on every machine';

/**
 * The usage lines of the security flags, with descriptions starting at `column` (the column the
 * other flags of the process's usage text use).
 */
export function securityUsage(column: number): string {
  const line = (flag: string, text: string): string => `  ${flag.padEnd(Math.max(column - 2, flag.length + 1))}${text}\n`;
  const more = (text: string): string => `${' '.repeat(column)}${text}\n`;
  return (
    line('--ca FILE', "the cell's CA certificate (PEM): verifies etcd and every peer") +
    line('--cert FILE', "this process's certificate (PEM), signed by that CA; its CN is") +
    more('the etcd user it acts as') +
    line('--key FILE', 'the private key of --cert (PEM)') +
    line('--insecure', 'plaintext everywhere, no credentials, instead of --ca/--cert/--key') +
    more('(anyone reaching etcd or the API can then run anything anywhere)')
  );
}

/**
 * Parses `--etcd` with the security flags: exactly one of (`--ca`, `--cert` and `--key`, all
 * three) or `--insecure`; `https://` endpoints only with the files, `http://` only with
 * `--insecure`; without `--etcd`, `https://127.0.0.1:2379` or `http://127.0.0.1:2379` by mode.
 * With the files, reads and checks them now (see `loadTlsIdentity`). Throws a {@link FlagError}
 * (a `TlsFileError` for a bad file) naming the flag at fault; has no other effect.
 */
export function parseEtcdConnection(values: ConnectionFlagValues, now: Date = new Date()): EtcdConnection {
  const given = (['ca', 'cert', 'key'] as const).filter((name) => values[name] !== undefined);
  // A malformed --etcd is named first, whatever else is missing.
  const endpoints = checkedEndpoints(values.etcd, values.insecure === true ? DEFAULT_ETCD_ENDPOINT : DEFAULT_SECURE_ETCD_ENDPOINT);
  if (values.insecure === true) {
    if (given.length > 0) throw new FlagError('--insecure', `cannot be combined with ${given.map((name) => `--${name}`).join(', ')}: choose TLS (--ca, --cert, --key) or plaintext (--insecure)`);
    const secure = endpoints.find((endpoint) => endpoint.startsWith('https:'));
    if (secure !== undefined) throw new FlagError('--etcd', `${JSON.stringify(secure)} is https://, which needs --ca, --cert and --key instead of --insecure`);
    return { endpoints, security: { mode: 'insecure' } };
  }
  if (given.length === 0) {
    throw new FlagError('--ca', "missing: give --ca, --cert and --key (the cell's CA, this process's certificate and its key), or --insecure to run in plaintext without credentials");
  }
  const missing = (['ca', 'cert', 'key'] as const).find((name) => values[name] === undefined);
  if (missing !== undefined) throw new FlagError(`--${missing}`, `missing: --ca, --cert and --key go together (got ${given.map((name) => `--${name}`).join(', ')})`);
  const plain = endpoints.find((endpoint) => endpoint.startsWith('http:'));
  if (plain !== undefined) throw new FlagError('--etcd', `${JSON.stringify(plain)} is plaintext http://: use https:// with --ca, --cert and --key (or --insecure for a plaintext etcd)`);
  const files: TlsFiles = { caFile: values.ca as string, certFile: values.cert as string, keyFile: values.key as string };
  return { endpoints, security: { mode: 'tls', identity: loadTlsIdentity(files, now), files } };
}

/**
 * Logs, once at start, how the process is secured: {@link INSECURE_WARNING} at warn with
 * `--insecure`, else the identity (CN, expiry, files) at info.
 */
export function logProcessSecurity(logger: Logger, security: ProcessSecurity): void {
  if (security.mode === 'insecure') {
    logger.warn({ insecure: true }, INSECURE_WARNING);
    return;
  }
  logger.info({ identity: security.identity.commonName, notAfter: security.identity.notAfter.toISOString(), ca: security.files.caFile, cert: security.files.certFile }, 'TLS identity loaded');
}

function checkedEndpoints(text: string | undefined, fallback: string): string[] {
  const parsed = parseEtcdEndpoints(text, fallback);
  if ('problem' in parsed) throw new FlagError('--etcd', parsed.problem);
  return parsed.endpoints;
}
