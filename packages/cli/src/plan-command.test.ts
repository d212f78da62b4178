import { describe, expect, it } from 'vitest';
import { formatPlan, type WirePlan } from './plan-command.js';

const empty: WirePlan = { create: [], replace: [], stop: [], unplaced: [], ruled_out: [], reason: '', preempt: [], replace_step: 0, change: '', refused: '', version: 1 };

describe('formatPlan', () => {
  it('says where instances go, what waits and why, what is preempted, one line each', () => {
    const text = formatPlan(
      {
        ...empty,
        create: [
          { index: 0, machine: 'm0' },
          { index: 1, machine: 'm0' },
          { index: 2, machine: 'm1' },
          { index: 3, machine: '' },
        ],
        unplaced: [3],
        reason: '1 of 4 tasks could not be placed: cpu: 2 machines',
        preempt: [{ task_id: 'low-1/0', job_id: 'low-1', machine: 'm1', priority: 1 }],
      },
      'submit web (namespace default)',
    );
    expect(text).toBe(
      [
        'submit web (namespace default) (version 1)',
        '  + place 3 instances (m0: 0-1; m1: 2)',
        '  ! 3 would wait: 1 of 4 tasks could not be placed: cpu: 2 machines',
        '  x preempt low-1/0 on m1 (priority 1)',
      ].join('\n'),
    );
  });

  it('says what an update replaces and stops, and when it changes nothing or would be refused', () => {
    const update = formatPlan(
      {
        ...empty,
        replace: [0, 1, 2].map((index) => ({ index, machine: 'm2' })),
        stop: [...[0, 1, 2].map((index) => ({ index, machine: 'm0', reason: 'updated' })), { index: 3, machine: 'm0', reason: 'scaled-down' }],
        replace_step: 1,
        change: 'instances 4 -> 3; task.command changed',
        version: 3,
      },
      'update web-1',
    );
    expect(update).toBe(['update web-1: instances 4 -> 3; task.command changed (version 3)', '  ~ replace 3 instances, 1 at a time (m2: 0-2)', '  - stop 3 (scaled-down)'].join('\n'));
    expect(formatPlan({ ...empty, change: 'nothing changed' }, 'update web-1')).toBe('update web-1: nothing changed (version 1)\n  = nothing to do');
    expect(formatPlan({ ...empty, refused: 'namespace "a": tasks 3 requested + 8 in use exceeds the quota of 10' }, 'submit x')).toMatch(/\n {2}! would be refused: namespace "a"/);
  });
});
