/**
 * Cron jobs' schedules: validation (one place, so the API, the CLI's job file and the scheduler
 * agree on what a schedule means), the times a schedule names, and the identity of each run.
 *
 * ```
 *   schedule: "*\/5 * * * *"        croner's syntax: 5 fields, or 6 with seconds first
 *   timeZone: Europe/Paris          IANA name; empty: UTC
 *   concurrency: allow|forbid|replace
 *   startingDeadline: 10m           a missed time still runs this late (default 10 min)
 * ```
 *
 * A run is the job `<template id>-r<scheduled time in unix seconds>`, created with request id
 * `cron-<same>`: whichever scheduler creates it, however many times (a lost reply, an owner
 * killed before it noted the run), the cell holds one job per scheduled time.
 */
import { Cron } from 'croner';
import type { SpecProblem } from './job-spec.js';
import { CRON_CONCURRENCY, jobId, type CronSchedule, type JobId, type JobSpec } from './types.js';

/** A missed time still runs this late when the job says 0. */
export const DEFAULT_STARTING_DEADLINE_MS = 10 * 60_000;
/** The longest starting deadline a job may ask for: a week. */
export const MAX_STARTING_DEADLINE_MS = 7 * 24 * 3_600_000;
/** At most this many missed times are made up at once (the rest are skipped and counted). */
export const MAX_CATCH_UP_RUNS = 100;

/** Parsed patterns by time zone and expression (bounded: a cell has few distinct schedules). */
const patterns = new Map<string, Cron>();
const MAX_PATTERNS = 1_000;

/** The schedule's parsed pattern; throws croner's error for a bad expression. */
function patternOf(schedule: Pick<CronSchedule, 'cron' | 'timeZone'>): Cron {
  const key = `${schedule.timeZone}\u0000${schedule.cron}`;
  let pattern = patterns.get(key);
  if (pattern === undefined) {
    // UTC as a fixed offset: croner's time zone path is ~100x slower per step (Intl conversions).
    pattern = new Cron(schedule.cron, { paused: true, ...(schedule.timeZone === '' ? { utcOffset: 0 } : { timezone: schedule.timeZone }) });
    if (patterns.size >= MAX_PATTERNS) patterns.clear();
    patterns.set(key, pattern);
  }
  return pattern;
}

function validTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Problems of a job's `schedule`, each naming its field (`<prefix>schedule.<field>`). */
export function cronScheduleProblems(spec: Pick<JobSpec, 'schedule' | 'kind'>, prefix = ''): SpecProblem[] {
  const schedule = spec.schedule;
  if (schedule === undefined) return [];
  const out: SpecProblem[] = [];
  const bad = (field: string, problem: string): void => {
    out.push({ field: `${prefix}schedule${field === '' ? '' : `.${field}`}`, problem });
  };
  if (spec.kind !== 'batch') bad('', 'only batch jobs run on a schedule (a service runs all the time)');
  const timeZoneOk = typeof schedule.timeZone === 'string' && (schedule.timeZone === '' || validTimeZone(schedule.timeZone));
  if (!timeZoneOk) bad('timeZone', `must be an IANA time zone name such as Europe/Paris or America/New_York, got ${JSON.stringify(schedule.timeZone)}`);
  if (typeof schedule.cron !== 'string' || schedule.cron.trim() === '') bad('cron', 'is required: a cron expression such as "*/5 * * * *"');
  else if (timeZoneOk) {
    try {
      if (patternOf(schedule).nextRun() === null) bad('cron', `${JSON.stringify(schedule.cron)} names no future time`);
    } catch (error) {
      bad('cron', `${JSON.stringify(schedule.cron)} is not a cron expression: ${(error as Error).message.replace(/^CronPattern: /, '')}`);
    }
  }
  if (!CRON_CONCURRENCY.includes(schedule.concurrency)) bad('concurrency', `must be one of ${CRON_CONCURRENCY.join(', ')}`);
  const deadline = schedule.startingDeadlineMs;
  if (!Number.isSafeInteger(deadline) || deadline < 0 || deadline > MAX_STARTING_DEADLINE_MS) {
    bad('startingDeadlineMs', `must be an integer number of ms from 0 (${DEFAULT_STARTING_DEADLINE_MS / 60_000} min) to ${MAX_STARTING_DEADLINE_MS} (7 days)`);
  }
  return out;
}

/** The first time the schedule names strictly after `afterMs`; undefined when none. */
export function nextScheduledAt(schedule: Pick<CronSchedule, 'cron' | 'timeZone'>, afterMs: number): number | undefined {
  const next = patternOf(schedule).nextRun(new Date(afterMs));
  return next === null ? undefined : next.getTime();
}

/** What a cron job's owner should do now about the times since the last one it handled. */
export interface DueTimes {
  /** Scheduled times to run now, oldest first: due, and not older than the starting deadline. */
  readonly run: readonly number[];
  /** Times passed but too old (missed past the deadline, or beyond {@link MAX_CATCH_UP_RUNS}); at least this many when more than 1,000. */
  readonly skipped: number;
  /** The latest time these cover (run or skipped): the new `lastScheduledAtMs`. Unchanged when nothing is due. */
  readonly lastMs: number;
  /** The next time still ahead; undefined when the schedule names none. */
  readonly nextMs: number | undefined;
}

/** Skipped times counted one by one at most this many per call; past it the count jumps ahead (and says "at least"). */
const MAX_COUNTED_SKIPS = 1_000;

/**
 * The times named after `sinceMs` (exclusive) up to `nowMs` (inclusive): those within the
 * starting deadline run, older ones are skipped. Pure: the caller keeps `lastMs` in the store.
 */
export function dueTimes(schedule: CronSchedule, sinceMs: number, nowMs: number): DueTimes {
  const deadline = schedule.startingDeadlineMs > 0 ? schedule.startingDeadlineMs : DEFAULT_STARTING_DEADLINE_MS;
  const cutoff = nowMs - deadline;
  const run: number[] = [];
  let skipped = 0;
  let lastMs = sinceMs;
  let at = nextScheduledAt(schedule, sinceMs);
  while (at !== undefined && at <= nowMs) {
    lastMs = at;
    if (at >= cutoff) run.push(at);
    else if (++skipped >= MAX_COUNTED_SKIPS && at < cutoff - 1) {
      // A schedule every second left alone for days: count no further, go to the deadline.
      at = nextScheduledAt(schedule, cutoff - 1);
      continue;
    }
    at = nextScheduledAt(schedule, at);
  }
  while (run.length > MAX_CATCH_UP_RUNS) {
    run.shift();
    skipped++;
  }
  return { run, skipped, lastMs, nextMs: at };
}

/** The job id of a cron job's run at `scheduledAtMs`: one per scheduled time. */
export function cronRunId(templateId: JobId, scheduledAtMs: number): JobId {
  return jobId(`${templateId}-r${Math.floor(scheduledAtMs / 1000)}`);
}

/** The request id a run is created with (a repeat of the same create is recognised as one). */
export function cronRunRequestId(templateId: JobId, scheduledAtMs: number): string {
  return `cron-${cronRunId(templateId, scheduledAtMs)}`;
}

/** The spec of a run: the template's, without the schedule. */
export function cronRunSpec(template: JobSpec): JobSpec {
  const { schedule: _schedule, ...spec } = template;
  return spec;
}
