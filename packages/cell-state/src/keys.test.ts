import { describe, expect, it } from 'vitest';
import { CellKeys, type KeyKind } from './keys.js';
import { jobId, machineId, taskId } from './types.js';

describe('CellKeys', () => {
  const keys = new CellKeys('keys');
  const m = machineId('m1');
  const j = jobId('web-1');
  const t = taskId(j, 3);
  const builders: Record<KeyKind, [id: string, key: string]> = {
    machine: [m, keys.machine(m)],
    alive: [m, keys.alive(m)],
    job: [j, keys.job(j)],
    task: [t, keys.task(t)],
    status: [j, keys.status(j)],
    owner: [j, keys.owner(j)],
    scheduler: ['batch-1', keys.scheduler('batch-1')],
    request: ['r1', keys.request('r1')],
    namespace: ['team-a', keys.namespace('team-a')],
  };

  it('builds with of() the same key as each kind’s own builder, and parse() reads it back', () => {
    for (const [kind, [id, key]] of Object.entries(builders) as [KeyKind, [string, string]][]) {
      expect(keys.of(kind, id)).toBe(key);
      expect(keys.parse(key)).toEqual({ kind, id });
    }
  });
});
