import { describe, expect, it } from 'vitest';
import { FlagError } from '@omega/cell-state';
import { parseAgentArgs, USAGE } from './config.js';

const parse = (argv: string[]) => parseAgentArgs(['--insecure', ...argv], { isRoot: false, cwd: '/home/u' });

describe('the --max-health-checks flag', () => {
  it('bounds the health checks run at once: 8 by default, 1 to 1000', () => {
    expect(parse([]).maxConcurrentChecks).toBe(8);
    expect(parse(['--max-health-checks', '32']).maxConcurrentChecks).toBe(32);
    expect(USAGE).toMatch(/--max-health-checks N/);
  });

  it('refuses a value out of range, naming the flag', () => {
    for (const bad of ['0', '1001', 'many']) {
      const error = (() => {
        try {
          parse(['--max-health-checks', bad]);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(FlagError);
      expect((error as FlagError).flag).toBe('--max-health-checks');
    }
  });
});
