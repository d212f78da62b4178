import { FlagError } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { COLD_SYNC_TARGET, parseColdSyncArgs } from './cold-sync.js';
import { parseBenchArgs } from './run-bench.js';

describe('omega bench sync flags', () => {
  it('default to the target cell of 10,000 machines and 100,000 tasks, five repetitions', () => {
    expect(parseColdSyncArgs([])).toEqual({ machines: COLD_SYNC_TARGET.machines, tasks: COLD_SYNC_TARGET.tasks, repeats: 5 });
    expect(parseColdSyncArgs(['--quick'])).toEqual({ machines: 1000, tasks: 10_000, repeats: 3 });
    expect(parseBenchArgs(['sync', '--tasks', '2000', '--repeats', '2'])).toEqual({ command: 'sync', options: { machines: 10_000, tasks: 2000, repeats: 2 } });
    expect(parseBenchArgs(['sync', '--help'])).toEqual({ command: 'sync-help' });
  });

  it('refuse a bad flag with its name', () => {
    expect(() => parseColdSyncArgs(['--repeats', '0'])).toThrow(FlagError);
    expect(() => parseColdSyncArgs(['--machines', 'many'])).toThrow(/--machines/);
    expect(() => parseColdSyncArgs(['--out', 'x'])).toThrow(FlagError);
  });
});
