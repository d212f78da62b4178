import { jobId, taskId, type JobKind, type RestartPolicy, type Task, type TaskState } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { MIN_RESTART_BACKOFF_MS, restartDecision, restartRateCap, restartRateReason, throttleRestarts, type JobProgress } from './job-progress.js';
import { LatencyHistogram } from './metrics.js';
import { rendezvousOwner } from './rendezvous.js';

const defaults = { restartBackoffInitialMs: 1000, restartBackoffMaxMs: 60_000 };

function task(state: TaskState, more: Partial<Task> = {}): Task {
  return {
    id: taskId(jobId('j'), 0), jobId: jobId('j'), index: 0, attempt: 1, claimId: 'c' as Task['claimId'], machineId: 'm0' as Task['machineId'], scheduler: 's',
    state, reason: '', message: '', signal: '', pid: 0, placedAtMs: 0, startedAtMs: 0, finishedAtMs: 10_000, cpuSeconds: 0, peakMemoryBytes: 0,
    resources: { cpuMillis: 1, memoryBytes: 1 }, priority: 0, restarts: 0, notBeforeMs: 0, revision: 1, ...more,
  };
}

function policy(kind: RestartPolicy['kind'], more: Partial<RestartPolicy> = {}): RestartPolicy {
  return { kind, maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0, ...more };
}

function restarts(kind: JobKind, p: RestartPolicy, t: Task): boolean {
  return restartDecision(kind, p, t, defaults).restart;
}

describe('restart rules', () => {
  it('follow the table: default is never for batch and always for services', () => {
    const rows: [JobKind, RestartPolicy['kind'], Task, boolean][] = [
      ['batch', 'default', task('failed'), false],
      ['batch', 'default', task('succeeded'), false],
      ['service', 'default', task('succeeded'), true],
      ['service', 'default', task('failed'), true],
      ['batch', 'on-failure', task('failed'), true],
      ['batch', 'on-failure', task('succeeded'), false],
      ['batch', 'on-failure', task('lost', { reason: 'machine-lost' }), true],
      ['batch', 'never', task('lost', { reason: 'machine-lost' }), false],
      ['batch', 'never', task('killed', { reason: 'preempted' }), false],
      ['service', 'never', task('lost', { reason: 'machine-lost' }), true],
      ['service', 'never', task('killed', { reason: 'preempted' }), true],
      ['service', 'never', task('failed'), false],
      ['batch', 'always', task('succeeded'), true],
      ['batch', 'on-failure', task('killed', { reason: 'oom-killed' }), true],
    ];
    for (const [kind, p, t, expected] of rows) expect([kind, p, t.state, t.reason, restarts(kind, policy(p), t)]).toEqual([kind, p, t.state, t.reason, expected]);
  });

  it('wait initialBackoffMs doubled per restart, up to maxBackoffMs, from when the task finished', () => {
    const p = policy('always', { initialBackoffMs: 1500, maxBackoffMs: 5000 });
    const at = (restartsSoFar: number) => restartDecision('service', p, task('failed', { restarts: restartsSoFar }), defaults);
    expect([0, 1, 2, 3, 10, 5000].map((n) => at(n))).toEqual([11_500, 13_000, 15_000, 15_000, 15_000, 15_000].map((notBeforeMs) => ({ restart: true, notBeforeMs })));
    expect(restartDecision('service', policy('always'), task('failed'), defaults)).toEqual({ restart: true, notBeforeMs: 11_000 });
    expect(restartDecision('service', policy('always'), task('failed', { finishedAtMs: 0 }), defaults)).toEqual({ restart: true, notBeforeMs: 0 });
  });

  it('stop after maxRestarts, except for tasks that were not at fault (lost, preempted)', () => {
    const p = policy('on-failure', { maxRestarts: 2 });
    expect(restarts('batch', p, task('failed', { restarts: 1 }))).toBe(true);
    expect(restartDecision('batch', p, task('failed', { restarts: 2, exitCode: 1 }), defaults)).toEqual({ restart: false, why: 'task 0 failed (exit 1) after 2 restarts (maxRestarts 2)' });
    expect(restarts('batch', p, task('lost', { restarts: 2 }))).toBe(true);
    expect(restarts('service', p, task('lost', { restarts: 2 }))).toBe(true);
  });

  it('places a lost or preempted batch task again under the default policy, and fails the job only when the policy says never itself', () => {
    expect(restarts('batch', policy('default'), task('lost'))).toBe(true);
    expect(restarts('batch', policy('default'), task('killed', { reason: 'preempted' }))).toBe(true);
    expect(restarts('batch', policy('default'), task('failed'))).toBe(false);
    expect(restarts('batch', policy('never'), task('lost'))).toBe(false);
    expect(restarts('batch', policy('never'), task('killed', { reason: 'preempted' }))).toBe(false);
  });

  it('places a task replaced by a rolling update or scaled back up again at once, whatever the policy', () => {
    for (const reason of ['updated', 'scaled-down']) {
      expect(restartDecision('batch', policy('never', { maxRestarts: 1 }), task('killed', { reason, restarts: 5 }), defaults)).toEqual({ restart: true, notBeforeMs: 0 });
      expect(restartDecision('service', policy('always'), task('killed', { reason }), defaults)).toEqual({ restart: true, notBeforeMs: 0 });
    }
  });
});

describe('rendezvous hashing', () => {
  it('moves only the keys of a member that leaves', () => {
    const members = ['a', 'b', 'c', 'd'];
    const keys = Array.from({ length: 400 }, (_, i) => `job-${i}`);
    const before = new Map(keys.map((k) => [k, rendezvousOwner(k, members)]));
    const counts = new Map<string, number>();
    for (const owner of before.values()) counts.set(owner ?? '', (counts.get(owner ?? '') ?? 0) + 1);
    for (const m of members) expect(counts.get(m)).toBeGreaterThan(60);
    for (const k of keys) {
      const after = rendezvousOwner(k, ['a', 'b', 'd']);
      if (before.get(k) !== 'c') expect(after).toBe(before.get(k));
    }
    expect(rendezvousOwner('x', [])).toBeUndefined();
  });
});

describe('latency histogram', () => {
  it('reports an exact mean and a p90 within 1%', () => {
    const h = new LatencyHistogram();
    for (let v = 1; v <= 1000; v++) h.add(v);
    const s = h.summary();
    expect(s.count).toBe(1000);
    expect(s.meanMs).toBeCloseTo(500.5);
    expect(Math.abs(s.p90Ms - 900) / 900).toBeLessThan(0.01);
    expect(s.maxMs).toBe(1000);
    expect(new LatencyHistogram().summary()).toEqual({ count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 });
  });
});

describe('crash-loop throttling', () => {
  it('never restarts sooner than 1 s after the end, whatever the job or the defaults ask', () => {
    const tiny = policy('always', { initialBackoffMs: 1, maxBackoffMs: 1 });
    expect(MIN_RESTART_BACKOFF_MS).toBe(1000);
    for (const restartsSoFar of [0, 1, 5, 100]) {
      expect(restartDecision('service', tiny, task('failed', { restarts: restartsSoFar }), defaults)).toEqual({ restart: true, notBeforeMs: 11_000 });
    }
    expect(restartDecision('service', policy('always'), task('failed'), { restartBackoffInitialMs: 1, restartBackoffMaxMs: 1 })).toEqual({ restart: true, notBeforeMs: 11_000 });
    // A terminal record without finishedAtMs waits from its placement instead of not at all.
    expect(restartDecision('service', tiny, task('failed', { finishedAtMs: 0, placedAtMs: 4000 }), defaults)).toEqual({ restart: true, notBeforeMs: 5000 });
  });

  it('cap a job at max(setting, instances) restarts a minute', () => {
    expect([restartRateCap(1, 10), restartRateCap(3, 10), restartRateCap(500, 10), restartRateCap(1, 1)]).toEqual([10, 10, 500, 1]);
  });

  function progress(indices: number[], restarting: number[], nextRestartAtMs?: number): JobProgress {
    return {
      toPlace: indices.map((index) => ({ taskId: taskId(jobId('j'), index), index })),
      restarting: new Set(restarting),
      nextRestartAtMs,
      live: [],
      fullyPlaced: false,
      outcome: { kind: 'active' },
    };
  }

  it('let restarts through while the last minute holds fewer than the cap', () => {
    const p = progress([0, 1, 2], [0, 1, 2]);
    expect(throttleRestarts(p, [1000, 2000], 5, 60_000)).toBe(p);
    // Restarts older than a minute no longer count.
    expect(throttleRestarts(p, [0, 100, 200, 300, 400], 5, 60_500)).toBe(p);
  });

  it('hold back the restarts over the cap, until the oldest counted one leaves the minute', () => {
    const now = 100_000;
    // Four restarts in the last minute, in any order, and one older than that (39 000).
    const held = throttleRestarts(progress([0, 1, 2, 3], [1, 2, 3], 120_000), [50_000, 45_000, 90_000, 60_000, 39_000], 6, now);
    // 4 in the window, cap 6: two more may go now (lowest indices first); index 0 was never placed and always goes.
    expect(held.toPlace.map((t) => t.index)).toEqual([0, 1, 2]);
    expect([...held.restarting]).toEqual([1, 2]);
    // After those two the window is full; the next slot frees when 45 000 leaves it.
    expect(held.throttled).toEqual({ recent: 4, held: 1, untilMs: 105_000 });
    expect(held.nextRestartAtMs).toBe(105_000);
    expect(held.fullyPlaced).toBe(false);
    expect(restartRateReason(held.throttled!)).toBe('restart rate limit: 4 restarts in the last minute');

    const full = throttleRestarts(progress([3], [3]), [95_000, 41_000, 70_000], 3, now);
    expect(full.toPlace).toEqual([]);
    expect(full.throttled).toEqual({ recent: 3, held: 1, untilMs: 101_000 });
  });
});
