import { jobId, type JobId } from '@omega/cell-state';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSchedulerArgs } from './flags.js';
import { scanIntervalMs } from './janitor.js';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

/** Runs a job of `instances` tasks to `succeeded`; returns its id and when its final status was written. */
async function finished(name: string, options: { instances?: number; retentionMs?: number } = {}): Promise<JobId> {
  const spec = { ...jobSpec(name).instances(options.instances ?? 2).build(), ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }) };
  const job = await h.submit(spec);
  await h.runUntilIdle();
  await h.endTasks(job, 'succeeded', { exitCode: 0 });
  await h.runUntilIdle();
  expect((await h.snapshot()).status(job)?.state).toBe('succeeded');
  return job;
}

/** Every key of the cell named after `job`, and claims of its tasks left on machines. */
async function traces(job: JobId): Promise<{ keys: number; claims: number }> {
  const { kvs } = await h.kv.range({ key: h.cell.keys.root, prefix: true });
  const keys = kvs.filter((kv) => !kv.key.includes('/requests/') && (kv.key.endsWith(`/${job}`) || kv.key.includes(`/${job}/`))).length;
  let claims = 0;
  for (const m of (await h.snapshot()).machines()) claims += m.claims.filter((c) => c.taskId.startsWith(`${job}/`)).length;
  return { keys, claims };
}

/** Advances the clock in steps of a second, stepping every instance after each. */
async function runFor(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 1000) {
    await h.advance(1000);
    await h.runUntilIdle();
  }
}

describe('the janitor', () => {
  it('deletes a finished job with its tasks, status and claims once its retention has passed, and not before', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { jobRetentionMs: 10_000 } });
    const job = await finished('done');
    await runFor(8_000);
    expect((await h.snapshot()).job(job)).toBeDefined();
    await runFor(4_000);
    expect((await h.snapshot()).job(job)).toBeUndefined();
    expect(await traces(job)).toEqual({ keys: 0, claims: 0 });
    expect(s.metrics().jobsDeleted).toBe(1);
    expect(await h.violations()).toEqual([]);
  });

  it("uses a job's own retention over the cell's", async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy(), { settings: { jobRetentionMs: 3_600_000 } });
    const short = await finished('short', { retentionMs: 2_000 });
    const long = await finished('long');
    await runFor(scanIntervalMs(3_600_000) + 2_000);
    expect((await h.snapshot()).job(short)).toBeUndefined();
    expect((await h.snapshot()).job(long)).toBeDefined();
  });

  it('deletes nothing with the default retention of 0, and keeps jobs that did not finish', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    await h.addScheduler(firstFitPolicy());
    const done = await finished('kept');
    const tooLarge = await h.submit(jobSpec('huge').cpu(64_000));
    await h.runUntilIdle();
    await runFor(5_000);
    expect((await h.snapshot()).job(done)).toBeDefined();
    expect((await h.snapshot()).status(tooLarge)?.state).toBe('unschedulable');

    h.schedulers[0]!.close();
    await h.addScheduler(firstFitPolicy(), { name: 'janitor', settings: { jobRetentionMs: 1_000 } });
    await runFor(3_000);
    expect((await h.snapshot()).job(done)).toBeUndefined();
    expect((await h.snapshot()).job(tooLarge)).toBeDefined();
  });

  it('shares the work between instances and deletes each job exactly once', async () => {
    h = await SchedulerHarness.open({ machines: 4 });
    const settings = { jobRetentionMs: 5_000 };
    const a = await h.addScheduler(firstFitPolicy(), { name: 'a', settings });
    const b = await h.addScheduler(firstFitPolicy(), { name: 'b', settings });
    const c = await h.addScheduler(firstFitPolicy({ kind: 'service' }), { name: 'c', settings });
    const jobs: JobId[] = [];
    for (let i = 0; i < 12; i++) jobs.push(await finished(`j${i}`, { instances: 1 }));
    await runFor(8_000);
    const snapshot = await h.snapshot();
    expect(jobs.filter((j) => snapshot.job(j) !== undefined)).toEqual([]);
    const deleted = [a, b, c].map((s) => s.metrics().jobsDeleted);
    expect(deleted.reduce((x, y) => x + y, 0)).toBe(12);
    // Rendezvous over every live instance, whatever its kind: more than one of them took part.
    expect(deleted.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(await h.violations()).toEqual([]);
  });

  it('deletes at most maxDeletionsPerStep jobs in one step', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const s = await h.addScheduler(firstFitPolicy(), { settings: { jobRetentionMs: 1_000, maxDeletionsPerStep: 2 } });
    for (let i = 0; i < 5; i++) await finished(`j${i}`, { instances: 1 });
    await h.advance(2_000);
    await h.step(s);
    expect(s.metrics().jobsDeleted).toBe(2);
    await h.runUntilIdle();
    expect(s.metrics().jobsDeleted).toBe(5);
  });

  it('deletes expired request records from one instance, soon after their retention', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    const settings = { requestRetentionMs: 2_000 };
    const a = await h.addScheduler(firstFitPolicy(), { name: 'a', settings });
    const b = await h.addScheduler(firstFitPolicy(), { name: 'b', settings });
    await h.cell.createJob({ id: jobId('with-request'), spec: jobSpec('with-request').build(), requestId: 'r-1' });
    await h.runUntilIdle();
    expect((await h.kv.range({ key: h.cell.keys.request('r-1') })).kvs).toHaveLength(1);
    await runFor(5_000);
    expect((await h.kv.range({ key: h.cell.keys.request('r-1') })).kvs).toHaveLength(0);
    expect([a.metrics().requestsDeleted, b.metrics().requestsDeleted].sort()).toEqual([0, 1]);
  });
});

describe('scanIntervalMs', () => {
  it('is a tenth of the retention, between a second and a minute', () => {
    expect(scanIntervalMs(10_000)).toBe(1_000);
    expect(scanIntervalMs(100_000)).toBe(10_000);
    expect(scanIntervalMs(24 * 3600 * 1000)).toBe(60_000);
  });
});

describe('the retention flags', () => {
  it('default to a day in a scheduler process, read durations, and name the flag when bad', () => {
    const settings = (argv: string[]) => {
      const config = parseSchedulerArgs(['--insecure', ...argv], 'batch');
      if (config === 'help') throw new Error('help');
      return config.settings;
    };
    expect(settings([])).toMatchObject({ jobRetentionMs: 24 * 3600 * 1000, requestRetentionMs: 24 * 3600 * 1000 });
    expect(settings(['--job-retention', '10s', '--request-retention', '0'])).toMatchObject({ jobRetentionMs: 10_000, requestRetentionMs: 0 });
    expect(settings(['--job-retention', '7d']).jobRetentionMs).toBe(7 * 24 * 3600 * 1000);
    expect(() => settings(['--job-retention', 'soon'])).toThrow(/^--job-retention: must be a duration/);
  });
});
