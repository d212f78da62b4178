import { claimId, jobId, machineId, taskId, type CellSnapshot, type Claim, type ClaimId, type Machine } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { compareChoices, planPreemption, type PreemptionQuestion } from './preemption.js';

const claim = (task: string, cpu: number, priority: number, memory = 0): Claim => ({
  id: claimId(`c-${task}`),
  taskId: taskId(jobId(task.split('/')[0] ?? ''), Number(task.split('/')[1])),
  machineId: machineId('m'),
  attempt: 1,
  resources: { cpuMillis: cpu, memoryBytes: memory },
  priority,
  scheduler: 's',
});

function question(claims: Claim[], request: number, options: { free?: number; priority?: number; dead?: string[]; evicted?: ClaimId[] } = {}): PreemptionQuestion {
  const machine: Machine = {
    id: machineId('m'),
    capacity: { cpuMillis: 4000, memoryBytes: 4000 },
    attributes: {},
    schedulable: true,
    unschedulableReason: '',
    enforcementDisabled: false,
    hollow: false,
    claims,
    seq: 1,
  };
  const dead = new Set(options.dead ?? []);
  const snapshot = { isLive: (c: Claim) => !dead.has(c.taskId) } as unknown as CellSnapshot;
  return {
    machine,
    free: { cpuMillis: options.free ?? 0, memoryBytes: 4000 },
    request: { cpuMillis: request, memoryBytes: 0 },
    priority: options.priority ?? 5,
    job: jobId('web'),
    snapshot,
    evicted: new Set(options.evicted ?? []),
  };
}

const victims = (q: PreemptionQuestion) => planPreemption(q)?.victims.map((c) => c.taskId);

describe('preemption plans', () => {
  it('needs no victims when the task already fits', () => {
    expect(victims(question([claim('a/0', 1000, 1)], 500, { free: 500 }))).toEqual([]);
  });

  it('gives up when evicting every eligible claim would not make room', () => {
    expect(planPreemption(question([claim('a/0', 1000, 1), claim('b/0', 3000, 5)], 2000))).toBeUndefined();
  });

  it('only takes strictly lower priorities, live claims, other jobs, and claims not already evicted', () => {
    const claims = [claim('same/0', 1000, 5), claim('high/0', 1000, 7), claim('dead/0', 1000, 1), claim('web/3', 1000, 1), claim('gone/0', 1000, 1), claim('ok/0', 1000, 4)];
    expect(victims(question(claims, 1000, { dead: ['dead/0'], evicted: [claimId('c-gone/0')] }))).toEqual(['ok/0']);
    expect(victims(question(claims, 2000, { dead: ['dead/0'], evicted: [claimId('c-gone/0')] }))).toBeUndefined();
  });

  it('takes the lowest priorities first, largest first, and gives back the unnecessary', () => {
    const claims = [claim('a/0', 500, 1), claim('b/0', 1500, 1), claim('c/0', 1000, 2), claim('d/0', 3000, 3)];
    expect(victims(question(claims, 1500))).toEqual(['b/0']);
    expect(victims(question(claims, 2000))).toEqual(['b/0', 'a/0']);
    // 2500: a+b (2000) short, + c (1000) = 3000; then a is unnecessary.
    expect(victims(question(claims, 2500))).toEqual(['b/0', 'c/0']);
  });

  it('skips claims that free nothing of what is short', () => {
    const claims = [claim('memory-only/0', 0, 0, 1000), claim('cpu/0', 1000, 1)];
    expect(victims(question(claims, 1000))).toEqual(['cpu/0']);
  });

  it('prefers choices with a lower highest priority, then fewer victims, then less resources', () => {
    const low = planPreemption(question([claim('a/0', 1000, 1), claim('b/0', 1000, 1)], 2000))!;
    const high = planPreemption(question([claim('c/0', 2000, 2)], 2000))!;
    const one = planPreemption(question([claim('d/0', 2000, 1)], 2000))!;
    const big = planPreemption(question([claim('e/0', 3000, 1)], 2000))!;
    expect(compareChoices(low, high)).toBeLessThan(0);
    expect(compareChoices(one, low)).toBeLessThan(0);
    expect(compareChoices(one, big)).toBeLessThan(0);
    const none = planPreemption(question([], 0))!;
    expect(compareChoices(none, none)).toBe(0);
  });
});
