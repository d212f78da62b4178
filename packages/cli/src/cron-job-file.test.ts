import { describe, expect, it } from 'vitest';
import { JobFileError, parseJobDocument } from './job-file.js';

const base = "name: nightly\nkind: batch\ncommand: [sh, -c, 'date']\ncpu: 100m\nmemory: 32Mi\n";

function problems(text: string): readonly string[] {
  try {
    parseJobDocument(text, 'job.yaml');
  } catch (error) {
    if (error instanceof JobFileError) return error.problems;
    throw error;
  }
  return [];
}

describe('cron job files', () => {
  it('read schedule, timeZone, concurrency and startingDeadline into the spec', () => {
    const { spec } = parseJobDocument(`${base}schedule: "0 3 * * *"\ntimeZone: Europe/Paris\nconcurrency: forbid\nstartingDeadline: 15m\n`, 'job.yaml');
    expect(spec.schedule).toEqual({ cron: '0 3 * * *', timeZone: 'Europe/Paris', concurrency: 'forbid', startingDeadlineMs: 900_000 });
    expect(parseJobDocument(`${base}schedule: "*/5 * * * *"\n`, 'job.yaml').spec.schedule).toEqual({ cron: '*/5 * * * *', timeZone: '', concurrency: 'allow', startingDeadlineMs: 0 });
  });

  it('names each bad field by the file\'s own name', () => {
    expect(problems(`${base}schedule: "every night"\n`)[0]).toMatch(/^schedule: "every night" is not a cron expression/);
    expect(problems(`${base}schedule: "0 3 * * *"\ntimeZone: Atlantis\n`)).toEqual(['timeZone: must be an IANA time zone name such as Europe/Paris or America/New_York, got "Atlantis"']);
    expect(problems(`${base}schedule: "0 3 * * *"\nconcurrency: sometimes\n`)).toEqual(['concurrency: must be one of allow, forbid, replace']);
    expect(problems(`${base}schedule: "0 3 * * *"\nstartingDeadline: soon\n`)[0]).toMatch(/^startingDeadline: "soon" is not a duration/);
    expect(problems(`${base}concurrency: forbid\n`)).toEqual(['concurrency: applies only to a cron job: give schedule: too']);
    expect(problems(`${base.replace('kind: batch', 'kind: service')}schedule: "0 3 * * *"\n`)).toEqual(['schedule: only batch jobs run on a schedule (a service runs all the time)']);
  });
});
