import { FlagError } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { parseCliBenchArgs, quantile } from './cli-bench.js';
import { parseBenchArgs } from './run-bench.js';

describe('omega bench cli', () => {
  it('is a mode of omega bench, with 20 runs by default and 5 with --quick', () => {
    expect(parseBenchArgs(['cli'])).toEqual({ command: 'cli', options: { runs: 20 } });
    expect(parseBenchArgs(['cli', '--quick'])).toEqual({ command: 'cli', options: { runs: 5 } });
    expect(parseBenchArgs(['cli', '--runs', '7'])).toEqual({ command: 'cli', options: { runs: 7 } });
    expect(parseBenchArgs(['cli', '--help'])).toEqual({ command: 'cli-help' });
  });

  it('refuses a bad --runs, an unknown flag and a --bin that does not exist, naming the flag', () => {
    for (const [argv, flag] of [[['--runs', '0'], '--runs'], [['--runs', 'x'], '--runs'], [['--runs', '201'], '--runs'], [['--bin', '/no/such/omega.js'], '--bin'], [['--fast'], '--fast']] as const) {
      let caught: unknown;
      try {
        parseCliBenchArgs(argv);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(FlagError);
      expect((caught as Error).message).toContain(flag);
    }
  });

  it('takes the median and p90 by nearest rank', () => {
    const values = [50, 10, 40, 20, 30, 60, 70, 80, 90, 100];
    expect(quantile(values, 0.5)).toBe(50);
    expect(quantile(values, 0.9)).toBe(90);
    expect(quantile([7], 0.9)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
  });
});
