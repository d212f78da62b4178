import { describe, expect, it } from 'vitest';
import { Progress, formatDuration } from './progress.js';

describe('Progress', () => {
  it('says the step about to start, the share done and, once a step ended, the time left at the mean pace', () => {
    let now = 0;
    const p = new Progress(4, () => now);
    expect(p.starting()).toBe('[1/4, 0% done]');
    now = 30_000;
    p.step();
    expect(p.starting()).toBe('[2/4, 25% done, about 1m30s left]');
    expect(p.finished()).toBe('[1/4, 25% done, about 1m30s left]');
    now = 50_000;
    p.step();
    expect(p.starting()).toBe('[3/4, 50% done, about 50s left]');
    p.step();
    p.step();
    p.step();
    expect(p.finished()).toBe('[4/4, 100% done]');
  });

  it('formats durations in seconds, minutes or hours', () => {
    expect([formatDuration(44_400), formatDuration(130_000), formatDuration(3_900_000)]).toEqual(['44s', '2m10s', '1h05m']);
  });
});
