import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVICE_OPTIONS, parseServiceArgs, resolveServiceOptions, ServiceOptionsError } from './options.js';

describe('service policy options', () => {
  it('defaults to spread scoring, preemption on, no sampling and incremental commits', () => {
    expect(resolveServiceOptions()).toEqual(DEFAULT_SERVICE_OPTIONS);
    expect(DEFAULT_SERVICE_OPTIONS).toMatchObject({ scoring: 'spread', preemption: true, sampleSize: 0, defaultTransactionMode: 'incremental' });
  });

  it('rejects a bad setting with an error that names it', () => {
    for (const [bad, setting] of [
      [{ scoring: 'random' }, 'scoring'],
      [{ preemption: 'yes' }, 'preemption'],
      [{ antiAffinityPenalty: -1 }, 'antiAffinityPenalty'],
      [{ antiAffinityPenalty: Number.NaN }, 'antiAffinityPenalty'],
      [{ sampleSize: 1.5 }, 'sampleSize'],
      [{ sampleAbove: -3 }, 'sampleAbove'],
      [{ defaultTransactionMode: 'gang' }, 'defaultTransactionMode'],
    ] as const) {
      const error = (() => {
        try {
          resolveServiceOptions(bad as never);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ServiceOptionsError);
      expect((error as ServiceOptionsError).setting).toBe(setting);
      expect((error as Error).message).toContain(setting);
    }
  });

  it('takes its own flags out of a command line and leaves the rest in order', () => {
    const { options, rest } = parseServiceArgs(['--cell', 'c1', '--scoring', 'bin-pack', '--no-preemption', '--name=s1', '--sample-size=64', '--anti-affinity-penalty', '0.2']);
    expect(rest).toEqual(['--cell', 'c1', '--name=s1']);
    expect(options).toMatchObject({ scoring: 'bin-pack', preemption: false, sampleSize: 64, antiAffinityPenalty: 0.2 });
    expect(parseServiceArgs(['--preemption', 'on', '--default-transaction-mode=all-or-nothing']).options).toMatchObject({
      preemption: true,
      defaultTransactionMode: 'all-or-nothing',
    });
  });

  it('names the flag when its value is missing or invalid', () => {
    expect(() => parseServiceArgs(['--scoring'])).toThrow(/--scoring: needs a value/);
    expect(() => parseServiceArgs(['--preemption', 'maybe'])).toThrow(/--preemption: must be on or off/);
    expect(() => parseServiceArgs(['--sample-size', 'lots'])).toThrow(/--sample-size: must be a number/);
    expect(() => parseServiceArgs(['--scoring=best'])).toThrow(/setting scoring: must be one of spread, bin-pack/);
  });
});
