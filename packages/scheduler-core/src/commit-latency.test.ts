import { describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

describe('commit latency', () => {
  it('is measured once per commit, on the scheduler clock, apart from think time', async () => {
    const h = await SchedulerHarness.open({ machines: 4 });
    try {
      const s = await h.addScheduler(firstFitPolicy(), { settings: { thinkTimeJobMs: 250 } });
      for (let i = 0; i < 3; i++) await h.submit(jobSpec('web').instances(2).cpu(500));
      await h.runUntilIdle();
      const m = s.metrics();
      expect(m.transactionsOk + m.transactionsFailed).toBe(3);
      expect(m.commitLatency.count).toBe(3);
      // The in-memory store answers without the fake clock moving: think time is not in it.
      expect(m.commitLatency.maxMs).toBe(0);
      expect(m.busyUsefulMs).toBe(750);
    } finally {
      await h.close();
    }
  });
});
