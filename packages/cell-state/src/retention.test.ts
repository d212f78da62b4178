import { describe, expect, it } from 'vitest';
import { decodeJob, encodeJob } from './codec.js';
import { JOB_LIMITS, jobSpecProblems } from './job-spec.js';
import { jobSpec } from './testing/builders.js';
import { jobId } from './types.js';

describe('a job spec retention', () => {
  it('is stored and read back, and is absent when 0 (the cell default)', () => {
    const record = { id: jobId('j'), desired: 'running' as const, submittedAtMs: 1, requestId: '' };
    const kept = { ...jobSpec('j').build(), retentionMs: 3_600_000 };
    expect(decodeJob(encodeJob({ ...record, spec: kept }), 7).spec).toEqual(kept);
    const plain = jobSpec('j').build();
    expect(decodeJob(encodeJob({ ...record, spec: { ...plain, retentionMs: 0 } }), 7).spec).toEqual(plain);
    expect(decodeJob(encodeJob({ ...record, spec: plain }), 7).spec.retentionMs).toBeUndefined();
  });

  it('must be an integer number of ms from 0 to a year, and the problem names retentionMs', () => {
    const problems = (retentionMs: number): string[] => jobSpecProblems({ ...jobSpec('j').build(), retentionMs }).map((p) => p.field);
    expect(problems(0)).toEqual([]);
    expect(problems(JOB_LIMITS.maxRetentionMs)).toEqual([]);
    expect(problems(-1)).toEqual(['retentionMs']);
    expect(problems(1.5)).toEqual(['retentionMs']);
    expect(problems(JOB_LIMITS.maxRetentionMs + 1)).toEqual(['retentionMs']);
  });
});
