import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeHostSpeed, hostSpeedSentence, measureHostSpeed } from './host-speed.js';
import { hostInfo } from './result.js';

describe('the host speed reference', () => {
  it('times both pieces of work and travels in the result host info', () => {
    const speed = measureHostSpeed();
    expect(speed.jsMs).toBeGreaterThan(0);
    expect(Number.isFinite(speed.jsMs)).toBe(true);
    if (existsSync('/bin/true')) expect(speed.spawnMs).toBeGreaterThan(0);
    expect(hostInfo('3.4.23', speed).speed).toEqual(speed);
    expect(hostInfo().speed).toBeUndefined();
  });

  it('says both figures, and nothing for a result written before they were measured', () => {
    expect(describeHostSpeed({ jsMs: 12.34, spawnMs: 0.987 })).toBe('host speed: a fixed JS workload 12.3 ms, a spawn of /bin/true 0.99 ms (smaller is faster)');
    expect(describeHostSpeed({ jsMs: 5 })).toBe('host speed: a fixed JS workload 5.0 ms (smaller is faster)');
    expect(hostSpeedSentence({ speed: { jsMs: 5 } })).toBe(' At the start, host speed: a fixed JS workload 5.0 ms (smaller is faster).');
    expect(hostSpeedSentence({})).toBe('');
  });
});
