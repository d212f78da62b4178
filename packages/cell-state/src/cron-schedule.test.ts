import { describe, expect, it } from 'vitest';
import { cronRunId, cronScheduleProblems, dueTimes, nextScheduledAt } from './cron-schedule.js';
import { jobId, type CronSchedule } from './types.js';

const at = (iso: string): number => new Date(iso).getTime();
const schedule = (s: Partial<CronSchedule> = {}): CronSchedule => ({ cron: '*/5 * * * *', timeZone: '', concurrency: 'allow', startingDeadlineMs: 0, ...s });

describe('cron schedules', () => {
  it('refuses what is not a schedule, naming the field', () => {
    const problems = (s: Partial<CronSchedule>, kind: 'batch' | 'service' = 'batch') => cronScheduleProblems({ kind, schedule: schedule(s) }, 'job.').map((p) => `${p.field}: ${p.problem}`);
    expect(problems({})).toEqual([]);
    expect(problems({}, 'service')).toEqual(['job.schedule: only batch jobs run on a schedule (a service runs all the time)']);
    expect(problems({ cron: 'every day' })[0]).toMatch(/^job\.schedule\.cron: "every day" is not a cron expression: /);
    expect(problems({ cron: '' })).toEqual(['job.schedule.cron: is required: a cron expression such as "*/5 * * * *"']);
    expect(problems({ timeZone: 'Mars/Olympus' })).toEqual(['job.schedule.timeZone: must be an IANA time zone name such as Europe/Paris or America/New_York, got "Mars/Olympus"']);
    expect(problems({ concurrency: 'sometimes' as CronSchedule['concurrency'] })).toEqual(['job.schedule.concurrency: must be one of allow, forbid, replace']);
    expect(problems({ startingDeadlineMs: -1 })[0]).toMatch(/^job\.schedule\.startingDeadlineMs: must be an integer/);
  });

  it('reads the expression in its time zone', () => {
    const daily = { cron: '0 9 * * *', timeZone: 'Europe/Paris' };
    expect(new Date(nextScheduledAt(daily, at('2026-12-01T00:00:00Z')) ?? 0).toISOString()).toBe('2026-12-01T08:00:00.000Z');
    expect(new Date(nextScheduledAt({ ...daily, timeZone: '' }, at('2026-12-01T00:00:00Z')) ?? 0).toISOString()).toBe('2026-12-01T09:00:00.000Z');
  });

  it('runs the times within the starting deadline and skips older ones, strictly after the last handled', () => {
    const due = dueTimes(schedule({ startingDeadlineMs: 12 * 60_000 }), at('2026-12-01T10:00:00Z'), at('2026-12-01T10:31:00Z'));
    expect(due.run.map((t) => new Date(t).toISOString().slice(11, 16))).toEqual(['10:20', '10:25', '10:30']);
    expect(due.skipped).toBe(3);
    expect(due.lastMs).toBe(at('2026-12-01T10:30:00Z'));
    expect(due.nextMs).toBe(at('2026-12-01T10:35:00Z'));
    expect(dueTimes(schedule(), at('2026-12-01T10:30:00Z'), at('2026-12-01T10:34:59Z'))).toEqual({ run: [], skipped: 0, lastMs: at('2026-12-01T10:30:00Z'), nextMs: at('2026-12-01T10:35:00Z') });
  });

  it('stays cheap for a schedule every second left alone for a week', () => {
    const since = at('2026-12-01T00:00:00Z');
    const due = dueTimes(schedule({ cron: '* * * * * *', startingDeadlineMs: 5_000 }), since, since + 7 * 86_400_000);
    expect(due.run).toHaveLength(6);
    expect(due.skipped).toBeGreaterThanOrEqual(1_000);
  });

  it('names one run per template and scheduled time', () => {
    expect(cronRunId(jobId('nightly-abc'), at('2026-12-01T10:30:00.000Z'))).toBe(`nightly-abc-r${at('2026-12-01T10:30:00Z') / 1000}`);
  });
});
