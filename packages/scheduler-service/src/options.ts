/**
 * The service policy's settings: typed, defaulted and validated once, when the policy is built,
 * with an error that names the bad setting. Also the command-line form of the same settings for
 * the `omega-scheduler-service` entry point.
 */
import { TRANSACTION_MODES, type TransactionMode } from '@omega/cell-state';

/**
 * How feasible machines are ranked:
 * - `spread` (least-allocated): prefer the machine with the most free CPU and memory left after
 *   the placement, minus a small penalty per instance of the same job already there;
 * - `bin-pack` (most-allocated): prefer the machine with the least free left, to keep whole
 *   machines empty for large tasks.
 */
export type ScoringMode = 'spread' | 'bin-pack';
export const SCORING_MODES: readonly ScoringMode[] = ['spread', 'bin-pack'];

export interface ServicePolicyOptions {
  /** Ranking of feasible machines. Default `spread`. */
  readonly scoring?: ScoringMode;
  /** Preempt strictly lower-priority claims when a task fits nowhere. Default `true`. */
  readonly preemption?: boolean;
  /**
   * `spread` scoring only: subtracted from a machine's score per live instance of the same job
   * on it (scores are fractions in [0, 1]). Default 0.1. Zero disables the anti-affinity.
   */
  readonly antiAffinityPenalty?: number;
  /**
   * Sampling: when more than `sampleAbove` machines pass the constraints, a task is placed on the
   * best of the first `sampleSize` feasible machines at the best spread tier, visited from a
   * random starting point, instead of the best of all. 0 (the default) never samples.
   */
  readonly sampleSize?: number;
  /** See `sampleSize`. Default 1,000 machines. */
  readonly sampleAbove?: number;
  /** Transaction mode for jobs whose commit mode is `default`. Default `incremental`. */
  readonly defaultTransactionMode?: TransactionMode;
}

/** Every option present and valid. */
export type ResolvedServiceOptions = Required<ServicePolicyOptions>;

export const DEFAULT_SERVICE_OPTIONS: ResolvedServiceOptions = Object.freeze({
  scoring: 'spread',
  preemption: true,
  antiAffinityPenalty: 0.1,
  sampleSize: 0,
  sampleAbove: 1000,
  defaultTransactionMode: 'incremental',
});

/** A setting of the service policy is invalid. Not retryable: the configuration must change. */
export class ServiceOptionsError extends Error {
  readonly retryable = false;
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`service policy setting ${setting}: ${problem}`);
    this.name = 'ServiceOptionsError';
  }
}

/** Fills in defaults and validates; throws {@link ServiceOptionsError} naming the first bad setting. */
export function resolveServiceOptions(options: ServicePolicyOptions = {}): ResolvedServiceOptions {
  const o = { ...DEFAULT_SERVICE_OPTIONS, ...dropUndefined(options) };
  if (!SCORING_MODES.includes(o.scoring)) throw new ServiceOptionsError('scoring', `must be one of ${SCORING_MODES.join(', ')}, got ${String(o.scoring)}`);
  if (typeof o.preemption !== 'boolean') throw new ServiceOptionsError('preemption', `must be true or false, got ${String(o.preemption)}`);
  if (typeof o.antiAffinityPenalty !== 'number' || !Number.isFinite(o.antiAffinityPenalty) || o.antiAffinityPenalty < 0) {
    throw new ServiceOptionsError('antiAffinityPenalty', `must be a finite number >= 0, got ${String(o.antiAffinityPenalty)}`);
  }
  if (!Number.isSafeInteger(o.sampleSize) || o.sampleSize < 0) throw new ServiceOptionsError('sampleSize', `must be an integer >= 0, got ${String(o.sampleSize)}`);
  if (!Number.isSafeInteger(o.sampleAbove) || o.sampleAbove < 0) throw new ServiceOptionsError('sampleAbove', `must be an integer >= 0, got ${String(o.sampleAbove)}`);
  if (!TRANSACTION_MODES.includes(o.defaultTransactionMode)) {
    throw new ServiceOptionsError('defaultTransactionMode', `must be one of ${TRANSACTION_MODES.join(', ')}, got ${String(o.defaultTransactionMode)}`);
  }
  return Object.freeze(o);
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The flags {@link parseServiceArgs} takes (each also as `--flag=value`). */
const FLAGS: Readonly<Record<string, keyof ServicePolicyOptions>> = {
  '--scoring': 'scoring',
  '--preemption': 'preemption',
  '--anti-affinity-penalty': 'antiAffinityPenalty',
  '--sample-size': 'sampleSize',
  '--sample-above': 'sampleAbove',
  '--default-transaction-mode': 'defaultTransactionMode',
};

/**
 * Takes the service policy's own flags out of a command line (`--scoring bin-pack`,
 * `--preemption off`, `--no-preemption`, `--anti-affinity-penalty 0.2`, `--sample-size 64`,
 * `--sample-above 1000`, `--default-transaction-mode all-or-nothing`) and returns the validated
 * options plus the remaining arguments, untouched and in order, for the shared scheduler process.
 * Throws {@link ServiceOptionsError} naming the flag when a value is missing or invalid.
 */
export function parseServiceArgs(argv: readonly string[]): { options: ResolvedServiceOptions; rest: string[] } {
  const raw: Record<string, unknown> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--no-preemption') {
      raw.preemption = false;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const setting = FLAGS[flag];
    if (setting === undefined) {
      rest.push(arg);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || value === '') throw new ServiceOptionsError(flag, 'needs a value');
    raw[setting] = flagValue(flag, setting, value);
  }
  return { options: resolveServiceOptions(raw as ServicePolicyOptions), rest };
}

function flagValue(flag: string, setting: keyof ServicePolicyOptions, value: string): unknown {
  switch (setting) {
    case 'preemption':
      if (['on', 'true', 'yes'].includes(value)) return true;
      if (['off', 'false', 'no'].includes(value)) return false;
      throw new ServiceOptionsError(flag, `must be on or off, got ${JSON.stringify(value)}`);
    case 'antiAffinityPenalty':
    case 'sampleSize':
    case 'sampleAbove': {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new ServiceOptionsError(flag, `must be a number, got ${JSON.stringify(value)}`);
      return n;
    }
    case 'scoring':
    case 'defaultTransactionMode':
      return value;
  }
}
