/**
 * `omega-api`'s command line, parsed with `util.parseArgs` and validated into a typed
 * configuration. Every problem is an {@link FlagError} naming the flag; the entry point
 * prints it and exits with status 2. Pure but for reading the --ca, --cert and --key files.
 */
import { parseArgs } from 'node:util';
import { FlagError, SECURITY_FLAG_OPTIONS, parseEtcdConnection, parseLogLevel, parseMetricsListen, securityUsage, type ProcessSecurity } from '@omega/cell-state';

export const API_USAGE = `usage: omega-api [flags]

  --etcd URL[,URL...]   etcd endpoints (default https://127.0.0.1:2379, with --insecure
                        http://127.0.0.1:2379)
${securityUsage(24)}  --cell NAME           cell name (default "default")
  --listen HOST:PORT    gRPC address to serve on, TLS with --cert unless --insecure
                        (default 127.0.0.1:7070; port 0: any free port)
  --ui-listen HOST:PORT serve the web UI there (HTTPS with --cert, plain HTTP with --insecure;
                        port 0: any free port; default: no UI)
  --etcd-timeout-ms MS  how long a call waits for etcd before answering UNAVAILABLE
                        (default 5000; 100 to 600000)
  --log-level LEVEL     trace, debug, info, warn, error, fatal, silent (default info)
  --metrics-listen HOST:PORT
                        serve Prometheus metrics at http://HOST:PORT/metrics (default: none)
  --help                this text
`;


export interface ApiConfig {
  readonly help: boolean;
  readonly etcdEndpoints: readonly string[];
  /** TLS to etcd and on the API port with this identity, or plaintext with `--insecure`. */
  readonly security: ProcessSecurity;
  readonly cell: string;
  readonly listen: string;
  /** The web UI's `host:port`; undefined: no UI. */
  readonly uiListen: string | undefined;
  /** Budget of one call's etcd steps, and the deadline of each etcd request. */
  readonly etcdTimeoutMs: number;
  readonly logLevel: string;
  /** Where to serve Prometheus metrics; undefined: nowhere. */
  readonly metricsListen: string | undefined;
}

/** `--etcd-timeout-ms`'s default. */
export const DEFAULT_ETCD_TIMEOUT_MS = 5_000;

const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses and validates the API server's flags. Throws {@link FlagError}. */
export function parseApiArgs(argv: readonly string[]): ApiConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        etcd: { type: 'string' },
        ...SECURITY_FLAG_OPTIONS,
        cell: { type: 'string' },
        listen: { type: 'string' },
        'ui-listen': { type: 'string' },
        'etcd-timeout-ms': { type: 'string' },
        'log-level': { type: 'string' },
        'metrics-listen': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    // parseArgs names the flag in its message ("Unknown option '--x'").
    const message = (error as Error).message;
    throw new FlagError(/'(--?[A-Za-z-]+)/.exec(message)?.[1] ?? 'arguments', message);
  }

  const cell = values.cell ?? 'default';
  if (!CELL.test(cell)) throw new FlagError('--cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);

  const listen = values.listen ?? '127.0.0.1:7070';
  const match = HOST_PORT.exec(listen);
  if (match === null || Number(match[2]) > 65535) throw new FlagError('--listen', `must be HOST:PORT with a port from 0 to 65535, got ${JSON.stringify(listen)}`);

  const uiListen = values['ui-listen'];
  if (uiListen !== undefined) {
    const ui = HOST_PORT.exec(uiListen);
    if (ui === null || Number(ui[2]) > 65535) throw new FlagError('--ui-listen', `must be HOST:PORT with a port from 0 to 65535, got ${JSON.stringify(uiListen)}`);
    if (uiListen === listen && Number(ui[2]) !== 0) throw new FlagError('--ui-listen', `must differ from --listen (${listen}): the UI has its own port`);
  }

  const timeoutText = values['etcd-timeout-ms'] ?? String(DEFAULT_ETCD_TIMEOUT_MS);
  const etcdTimeoutMs = Number(timeoutText);
  if (!/^\d+$/.test(timeoutText) || etcdTimeoutMs < 100 || etcdTimeoutMs > 600_000) {
    throw new FlagError('--etcd-timeout-ms', `must be a whole number of milliseconds from 100 to 600000, got ${JSON.stringify(timeoutText)}`);
  }

  const log = parseLogLevel(values['log-level']);
  if ('problem' in log) throw new FlagError('--log-level', log.problem);
  const logLevel = log.level;
  const metrics = parseMetricsListen(values['metrics-listen']);
  if ('problem' in metrics) throw new FlagError('--metrics-listen', metrics.problem);
  const metricsListen = metrics.listen;

  const help = values.help === true;
  // --help needs no certificates (and main prints the usage before looking at anything else).
  if (help) return { help, etcdEndpoints: [], security: { mode: 'insecure' }, cell, listen, uiListen, etcdTimeoutMs, logLevel, metricsListen };
  const { endpoints: etcdEndpoints, security } = parseEtcdConnection(values);
  return { help, etcdEndpoints, security, cell, listen, uiListen, etcdTimeoutMs, logLevel, metricsListen };
}
