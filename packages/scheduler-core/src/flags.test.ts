import { describe, expect, it } from 'vitest';
import { FlagError } from '@omega/cell-state';
import { parseSchedulerArgs, takeFlags } from './flags.js';
import { SettingsError, resolveSettings, type SchedulerSettings } from './settings.js';

function flagOf(argv: string[]): string | undefined {
  try {
    parseSchedulerArgs(['--insecure', ...argv], 'batch');
    return undefined;
  } catch (error) {
    if (error instanceof FlagError) return error.flag;
    throw error;
  }
}

describe('scheduler process flags', () => {
  it('fill defaults for everything not given', () => {
    const config = parseSchedulerArgs(['--insecure'], 'batch');
    expect(config).toMatchObject({ etcd: ['http://127.0.0.1:2379'], security: { mode: 'insecure' }, cell: 'default', leaseTtlSeconds: 10, maxTxnOps: 128, logLevel: 'info' });
    if (config === 'help') throw new Error('unexpected help');
    expect(config.name).toMatch(/^batch-/);
    expect(config.settings).toMatchObject({ conflictMode: 'resource-fit', transactionMode: undefined, thinkTimeJobMs: 0, machineLossGraceMs: 5000 });
  });

  it('let the batch scheduler commit 32 jobs at once by default (one with a think time), the others one, and take both per-commit bounds', () => {
    const batch = parseSchedulerArgs(['--insecure'], 'batch');
    const service = parseSchedulerArgs(['--insecure'], 'service');
    const set = parseSchedulerArgs(['--insecure', '--max-jobs-per-commit', '4', '--max-claims-per-commit', '200'], 'service');
    if (batch === 'help' || service === 'help' || set === 'help') throw new Error('unexpected help');
    expect([batch.settings.maxJobsPerCommit, batch.settings.maxClaimsPerCommit]).toEqual([32, 1000]);
    expect(service.settings.maxJobsPerCommit).toBe(1);
    // A think time is the Omega model: one job, then its own transaction.
    const thinking = parseSchedulerArgs(['--insecure', '--t-job-ms', '5'], 'batch');
    if (thinking === 'help') throw new Error('unexpected help');
    expect(thinking.settings.maxJobsPerCommit).toBe(1);
    expect([set.settings.maxJobsPerCommit, set.settings.maxClaimsPerCommit]).toEqual([4, 200]);
    expect(() => parseSchedulerArgs(['--insecure', '--max-jobs-per-commit', '0'], 'batch')).toThrow(/--max-jobs-per-commit: must be an integer >= 1/);
  });

  it('map every flag onto the config and the loop settings', () => {
    const config = parseSchedulerArgs(
      [
        '--insecure', '--etcd', 'http://127.0.0.1:2379,http://127.0.0.1:2479', '--cell', 'prod', '--name', 'b1', '--conflict-mode', 'sequence-numbers',
        '--transaction-mode', 'all-or-nothing', '--t-job-ms', '100', '--t-task-ms', '2.5', '--lease-ttl-s', '2', '--machine-loss-grace-ms', '800',
        '--ownership-grace-ms', '300', '--max-queued-jobs', '9', '--stats-interval-ms', '250', '--max-txn-ops', '10000', '--log-level', 'warn', '--seed', '42',
        '--max-restarts-per-job-per-minute', '30',
      ],
      'batch',
    );
    expect(config).toMatchObject({
      etcd: ['http://127.0.0.1:2379', 'http://127.0.0.1:2479'],
      cell: 'prod',
      name: 'b1',
      leaseTtlSeconds: 2,
      maxTxnOps: 10000,
      logLevel: 'warn',
      seed: 42,
      settings: {
        conflictMode: 'sequence-numbers',
        transactionMode: 'all-or-nothing',
        thinkTimeJobMs: 100,
        thinkTimeTaskMs: 2.5,
        machineLossGraceMs: 800,
        ownershipGraceMs: 300,
        maxQueuedJobs: 9,
        statsIntervalMs: 250,
        maxRestartsPerJobPerMinute: 30,
      },
    });
  });

  it('name the bad flag in the error', () => {
    expect(flagOf(['--t-job-ms', '-1'])).toBe('--t-job-ms');
    expect(flagOf(['--t-task-ms', 'soon'])).toBe('--t-task-ms');
    expect(flagOf(['--lease-ttl-s', '0'])).toBe('--lease-ttl-s');
    expect(flagOf(['--lease-ttl-s', '1.5'])).toBe('--lease-ttl-s');
    expect(flagOf(['--conflict-mode', 'optimistic'])).toBe('--conflict-mode');
    expect(flagOf(['--transaction-mode', 'gang'])).toBe('--transaction-mode');
    expect(flagOf(['--etcd', 'localhost:2379'])).toBe('--etcd');
    expect(flagOf(['--cell', 'Prod'])).toBe('--cell');
    expect(flagOf(['--name', '../x'])).toBe('--name');
    expect(flagOf(['--log-level', 'loud'])).toBe('--log-level');
    expect(flagOf(['--max-queued-jobs', '0'])).toBe('--max-queued-jobs');
    expect(flagOf(['--max-restarts-per-job-per-minute', '0'])).toBe('--max-restarts-per-job-per-minute');
    expect(flagOf(['--frobnicate'])).toBe('--frobnicate');
    expect(flagOf(['stray'])).toBe('stray');
  });

  it('need the certificate files or --insecure', () => {
    const missing = (argv: string[]): string | undefined => {
      try {
        parseSchedulerArgs(argv, 'batch');
        return undefined;
      } catch (error) {
        if (error instanceof FlagError) return error.flag;
        throw error;
      }
    };
    expect(missing([])).toBe('--ca');
    expect(missing(['--ca', 'ca.crt', '--cert', 'c.crt'])).toBe('--key');
    expect(missing(['--insecure', '--etcd', 'https://127.0.0.1:2379'])).toBe('--etcd');
  });

  it('answer --help without validating anything else', () => {
    expect(parseSchedulerArgs(['--help'], 'batch')).toBe('help');
  });

  it('let an entry point take its own flags out first', () => {
    expect(takeFlags(['--choice', 'power-of-two', '--cell', 'c', '--x=1'], ['--choice', '--x'])).toEqual({
      values: new Map([
        ['--choice', 'power-of-two'],
        ['--x', '1'],
      ]),
      rest: ['--cell', 'c'],
    });
    expect(() => takeFlags(['--choice'], ['--choice'])).toThrow(FlagError);
  });
});

describe('loop settings', () => {
  function settingOf(input: Partial<SchedulerSettings>): string | undefined {
    try {
      resolveSettings(input);
      return undefined;
    } catch (error) {
      if (error instanceof SettingsError) return error.setting;
      throw error;
    }
  }

  it('name the bad setting', () => {
    expect(settingOf({ maxAttempts: 0 })).toBe('maxAttempts');
    expect(settingOf({ retryBackoffInitialMs: 1.5 })).toBe('retryBackoffInitialMs');
    expect(settingOf({ retryBackoffInitialMs: 100, retryBackoffMaxMs: 10 })).toBe('retryBackoffMaxMs');
    expect(settingOf({ conflictMode: 'optimistic' as SchedulerSettings['conflictMode'] })).toBe('conflictMode');
    expect(settingOf({ jobKinds: [] })).toBe('jobKinds');
    expect(settingOf({ thinkTimeByKind: { batch: { jobMs: -1, taskMs: 0 } } })).toBe('thinkTimeByKind.batch');
    expect(settingOf({ thinkTimeJobMs: 0.5, jobKinds: ['batch', 'service'] })).toBeUndefined();
    expect(settingOf({ maxRestartsPerJobPerMinute: 0 })).toBe('maxRestartsPerJobPerMinute');
  });

  it('refuse a default restart backoff under the 1 s floor, and cap crash loops at 10 restarts a minute by default', () => {
    expect(settingOf({ restartBackoffInitialMs: 999 })).toBe('restartBackoffInitialMs');
    expect(() => resolveSettings({ restartBackoffInitialMs: 10 })).toThrow('restartBackoffInitialMs: must be >= 1000 (restarts are never less than 1 s apart), got 10');
    expect(resolveSettings({}).maxRestartsPerJobPerMinute).toBe(10);
  });
});
