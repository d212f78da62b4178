/**
 * `omega dev`'s settings: validated from the command line (every problem names its flag, exit
 * status 2) and completed with what the host offers (each agent's share of CPU and memory).
 */
import { availableParallelism, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseBytes, parseCpuMillis } from '@omega/cell-state';
import { CliError, EXIT_USAGE } from '../errors.js';

export interface DevOptions {
  /** Absolute. */
  readonly dataDir: string;
  /** An etcd to use instead of starting one. */
  readonly etcd: string | undefined;
  readonly cell: string;
  /** The API's `host:port`. */
  readonly listen: string;
  readonly machines: number;
  /** Capacity of each real agent's machine. */
  readonly machineCpuMillis: number;
  readonly machineMemoryBytes: number;
  /** Capacity given explicitly (also used for hollow machines). */
  readonly capacityGiven: boolean;
  readonly hollow: number;
  readonly batchSchedulers: number;
  readonly serviceSchedulers: number;
  /** Agents limit tasks with cgroups. */
  readonly enforcement: boolean;
  /** Enforcement was turned off because we are not root (not by the user). */
  readonly enforcementAutoOff: boolean;
  readonly logLevel: string;
  readonly demo: boolean;
  /**
   * `--insecure`: the old plaintext cell (etcd and the API without TLS or credentials). Default
   * false: a private CA, TLS everywhere, etcd users per component and an admin token.
   */
  readonly insecure: boolean;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const CELL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
/** Memory left to the host itself when the agents split it. */
const HOST_RESERVE_BYTES = 1024 ** 3;
const MAX_PROCESSES = 64;

function usage(flag: string, problem: string): CliError {
  return new CliError(`${flag}: ${problem}`, EXIT_USAGE);
}

/** The host's capacity split into `n` equal machines (whole millicores, whole MiB). */
export function hostShare(n: number, host = { cpuMillis: availableParallelism() * 1000, memoryBytes: totalmem() }): { cpuMillis: number; memoryBytes: number } {
  const parts = Math.max(1, n);
  const memory = Math.max(host.memoryBytes - Math.min(HOST_RESERVE_BYTES, host.memoryBytes / 4), host.memoryBytes / 2);
  const mib = 1024 * 1024;
  return { cpuMillis: Math.max(100, Math.floor(host.cpuMillis / parts)), memoryBytes: Math.max(64 * mib, Math.floor(memory / parts / mib) * mib) };
}

/**
 * Settings from commander's parsed options. `enforcementGiven`: the user passed
 * `--no-enforcement` (rather than it being the default).
 */
export function devOptionsFrom(options: Record<string, unknown>, enforcementGiven: boolean, isRoot = process.getuid?.() === 0): DevOptions {
  const text = (name: string): string | undefined => (typeof options[name] === 'string' ? (options[name] as string) : undefined);
  const count = (name: string, flag: string, fallback: number): number => {
    const n = typeof options[name] === 'number' ? (options[name] as number) : fallback;
    if (n > MAX_PROCESSES && name !== 'hollow') throw usage(flag, `must be at most ${MAX_PROCESSES}`);
    return n;
  };

  const cell = text('cell') ?? 'default';
  if (!CELL.test(cell)) throw usage('--cell', `must be a DNS label (lowercase letters, digits, '-'), got ${JSON.stringify(cell)}`);
  const listen = text('listen') ?? '127.0.0.1:7070';
  const port = Number(HOST_PORT.exec(listen)?.[2]);
  if (!HOST_PORT.test(listen) || port === 0 || port > 65535) throw usage('--listen', `must be HOST:PORT with a port from 1 to 65535, got ${JSON.stringify(listen)}`);
  const etcd = text('etcd');
  if (etcd !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(etcd);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw usage('--etcd', `${JSON.stringify(etcd)} is not a URL like http://127.0.0.1:2379`);
    // An etcd that omega dev did not start does not trust omega dev's CA.
    if (options.insecure !== true) throw usage('--etcd', 'an etcd that omega dev does not start can only be used with --insecure (for a secure cell on your own etcd: omega pki and omega cell init)');
    if (url.protocol !== 'http:') throw usage('--etcd', `with --insecure the etcd must be plaintext http://, got ${JSON.stringify(etcd)}`);
  }
  const logLevel = text('logLevel') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw usage('--log-level', `must be one of ${LOG_LEVELS.join(', ')}`);

  const machines = count('machines', '--machines', 2);
  const hollow = count('hollow', '--hollow', 0);
  if (hollow > 100_000) throw usage('--hollow', 'must be at most 100000');
  const share = hostShare(machines);
  let cpuMillis = share.cpuMillis;
  let memoryBytes = share.memoryBytes;
  const cpuText = text('machineCpu');
  const memoryText = text('machineMemory');
  try {
    if (cpuText !== undefined) cpuMillis = parseCpuMillis(cpuText);
  } catch (error) {
    throw usage('--machine-cpu', (error as Error).message.replace(/^cpu: /, ''));
  }
  if (cpuMillis <= 0) throw usage('--machine-cpu', 'must be more than 0');
  try {
    if (memoryText !== undefined) memoryBytes = parseBytes(memoryText);
  } catch (error) {
    throw usage('--machine-memory', (error as Error).message.replace(/^memory: /, ''));
  }
  if (memoryBytes <= 0) throw usage('--machine-memory', 'must be more than 0');

  // cgroups need root: without it, agents could not limit tasks and would refuse to start.
  const wantEnforcement = options.enforcement !== false;
  const enforcementAutoOff = wantEnforcement && !enforcementGiven && !isRoot && machines > 0;

  return {
    dataDir: resolve(text('dataDir') ?? './.omega'),
    etcd,
    cell,
    listen,
    machines,
    machineCpuMillis: cpuMillis,
    machineMemoryBytes: memoryBytes,
    capacityGiven: cpuText !== undefined || memoryText !== undefined,
    hollow,
    batchSchedulers: count('batchSchedulers', '--batch-schedulers', 2),
    serviceSchedulers: count('serviceSchedulers', '--service-schedulers', 1),
    enforcement: wantEnforcement && !enforcementAutoOff,
    enforcementAutoOff,
    logLevel,
    demo: options.demo === true,
    insecure: options.insecure === true,
  };
}
