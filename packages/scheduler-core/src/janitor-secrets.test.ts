import { jobId } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

describe('the janitor and secret env values', () => {
  it("deletes a finished job's secret record with the job once its retention has passed, and not before", async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy(), { settings: { jobRetentionMs: 5_000 } });
    const id = jobId('with-secret');
    await h.cell.createJob({ id, spec: jobSpec('with-secret').build(), submittedAtMs: h.clock.now(), secretEnv: { TOKEN: 'x' } });
    await h.runUntilIdle();
    await h.endTasks(id, 'succeeded', { exitCode: 0 });
    await h.runUntilIdle();
    const secret = async (): Promise<number> => (await h.kv.range({ key: h.cell.keys.secret(id) })).kvs.length;
    expect(await secret()).toBe(1);
    for (let t = 0; t < 8_000; t += 1000) {
      await h.advance(1000);
      await h.runUntilIdle();
    }
    expect((await h.snapshot()).job(id)).toBeUndefined();
    expect(await secret()).toBe(0);
  });
});
