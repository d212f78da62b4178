import { createNamespace, cronRunId, jobId, nextScheduledAt, setQuota, type CronSchedule, type Job, type JobId, type JobSpec } from '@omega/cell-state';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

const every10s: CronSchedule = { cron: '*/10 * * * * *', timeZone: '', concurrency: 'allow', startingDeadlineMs: 0 };

function cronSpec(name: string, schedule: Partial<CronSchedule> = {}): JobSpec {
  return { ...jobSpec(name).cpu(100).build(), schedule: { ...every10s, ...schedule } };
}

async function runsOf(template: JobId): Promise<Job[]> {
  return [...(await h.snapshot()).jobs()].filter((j) => j.cronRun?.templateId === template).sort((a, b) => (a.cronRun?.scheduledAtMs ?? 0) - (b.cronRun?.scheduledAtMs ?? 0));
}

/** The times the schedule names in (fromMs, toMs]. */
function timesBetween(schedule: CronSchedule, fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (let at = nextScheduledAt(schedule, fromMs); at !== undefined && at <= toMs; at = nextScheduledAt(schedule, at)) out.push(at);
  return out;
}

describe('cron jobs', () => {
  it('make one run per scheduled time, never placing the template itself, and say when the next is', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const start = h.clock.now();
    const template = await h.submit(cronSpec('nightly'));
    await h.runUntilIdle({ untilMs: start + 35_000 });
    const expected = timesBetween(every10s, start, start + 35_000);
    expect(expected).toHaveLength(3);
    const runs = await runsOf(template);
    expect(runs.map((r) => r.id)).toEqual(expected.map((t) => cronRunId(template, t)));
    expect(runs.map((r) => r.cronRun?.scheduledAtMs)).toEqual(expected);
    expect(runs.every((r) => r.spec.schedule === undefined && r.spec.name === 'nightly')).toBe(true);
    // The runs are ordinary batch jobs: placed. The template never is.
    for (const run of runs) expect((await h.tasks(run.id)).map((t) => t.state)).toEqual(['placed']);
    expect(await h.tasks(template)).toEqual([]);
    const status = (await h.snapshot()).status(template);
    expect(status?.cron).toMatchObject({ runs: 3, skipped: 0, lastScheduledAtMs: expected[2], nextAtMs: (expected[2] ?? 0) + 10_000 });
    expect(status?.reason).toBe(`next run at ${new Date((expected[2] ?? 0) + 10_000).toISOString()}`);
  });

  it('forbid skips a time while a run has not ended; replace kills the run that has not', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const start = h.clock.now();
    const forbid = await h.submit(cronSpec('forbid', { concurrency: 'forbid' }));
    const replace = await h.submit(cronSpec('replace', { concurrency: 'replace' }));
    await h.runUntilIdle({ untilMs: start + 25_000 });
    // Nothing ends the runs (no agent): forbid made the first only; replace made both, killing the first.
    const forbidRuns = await runsOf(forbid);
    expect(forbidRuns).toHaveLength(1);
    expect((await h.snapshot()).status(forbid)?.cron).toMatchObject({ runs: 1, skipped: 1 });
    expect((await h.snapshot()).status(forbid)?.cron?.lastSkipReason).toMatch(/has not ended \(concurrency forbid\)$/);
    const replaceRuns = await runsOf(replace);
    expect(replaceRuns.map((r) => r.desired)).toEqual(['killed', 'running']);
    // Once the run has ended, forbid runs again.
    await h.endTasks(forbidRuns[0]?.id ?? jobId('x'), 'succeeded');
    await h.runUntilIdle({ untilMs: start + 35_000 });
    expect(await runsOf(forbid)).toHaveLength(2);
  });

  it('makes up missed times within the starting deadline and skips and counts older ones', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const start = h.clock.now();
    const template = await h.submit(cronSpec('late', { startingDeadlineMs: 25_000 }));
    // No scheduler runs for two minutes.
    await h.advance(120_000);
    await h.addScheduler(firstFitPolicy());
    await h.runUntilIdle({ untilMs: start + 120_000 });
    const now = start + 120_000;
    const all = timesBetween(every10s, start, now);
    const recent = all.filter((t) => now - t <= 25_000);
    expect((await runsOf(template)).map((r) => r.cronRun?.scheduledAtMs)).toEqual(recent);
    expect((await h.snapshot()).status(template)?.cron).toMatchObject({ runs: recent.length, skipped: all.length - recent.length });
  });

  it('a killed template makes no more runs', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    const start = h.clock.now();
    const template = await h.submit(cronSpec('stop'));
    await h.runUntilIdle({ untilMs: start + 15_000 });
    await h.cell.setJobDesired(template, 'killed');
    await h.runUntilIdle({ untilMs: start + 45_000 });
    expect(await runsOf(template)).toHaveLength(1);
    expect((await h.snapshot()).status(template)?.state).toBe('killed');
  });

  it('never makes a scheduled time twice nor loses one, whatever instances crash and when (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ advanceMs: fc.integer({ min: 1_000, max: 25_000 }), crash: fc.boolean() }), { minLength: 2, maxLength: 8 }), fc.integer({ min: 0, max: 1_000 }), async (steps, seed) => {
        h = await SchedulerHarness.open({ machines: 2, seed });
        await h.addScheduler(firstFitPolicy(), { name: 'batch-a' });
        await h.addScheduler(firstFitPolicy(), { name: 'batch-b' });
        const start = h.clock.now();
        const schedule: CronSchedule = { ...every10s, startingDeadlineMs: 600_000 };
        const template = await h.submit(cronSpec('prop', schedule));
        let names = 0;
        let until = start;
        for (const step of steps) {
          until += step.advanceMs;
          await h.runUntilIdle({ untilMs: until });
          if (step.crash) {
            const victim = h.schedulers[0];
            if (victim !== undefined) await h.crash(victim);
            await h.addScheduler(firstFitPolicy(), { name: `batch-n${names++}` });
          }
        }
        // A last look after the takeover grace, with nothing crashing.
        until += 30_000;
        await h.runUntilIdle({ untilMs: until });
        const runs = (await runsOf(template)).map((r) => r.cronRun?.scheduledAtMs);
        const last = (await h.snapshot()).status(template)?.cron?.lastScheduledAtMs ?? 0;
        // Every time up to the last one handled has its run (the deadline is long: none skipped), and only those.
        expect(until - last).toBeLessThanOrEqual(10_000);
        const expected = timesBetween(schedule, start, last);
        expect(new Set(runs).size).toBe(runs.length);
        expect(runs).toEqual(expected);
        await h.close();
      }),
      { numRuns: 15, seed: 42 },
    );
  }, 120_000);
});

describe('cron jobs and quotas', () => {
  it('a template holds nothing of its namespace; each run is admitted against the quota, a refused one skipped with the reason', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    await h.addScheduler(firstFitPolicy());
    await createNamespace(h.kv, h.cell.keys, 'team', h.clock.now());
    const snapshotAtLeast = async () => h.snapshot();
    // One run's worth: 1 task of 100m.
    const quota = await setQuota(h.kv, h.cell.keys, 'team', { cpuMillis: 100, memoryBytes: 0, tasks: 0 }, { snapshotAtLeast, nowMs: h.clock.now() });
    expect(quota.kind).toBe('set');
    const start = h.clock.now();
    const submitted = await h.cell.submitJob({ id: jobId('team-cron'), spec: { ...cronSpec('team-cron'), namespace: 'team' }, submittedAtMs: start }, { snapshotAtLeast });
    expect(submitted.kind).toBe('admitted');
    await h.runUntilIdle({ untilMs: start + 25_000 });
    // The first run holds the quota (nothing ends it): the second is refused and counted.
    expect(await runsOf(jobId('team-cron'))).toHaveLength(1);
    const cron = (await h.snapshot()).status(jobId('team-cron'))?.cron;
    expect(cron).toMatchObject({ runs: 1, skipped: 1 });
    expect(cron?.lastSkipReason).toMatch(/namespace "team"/);
  });
});
