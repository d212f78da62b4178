import { describe, expect, it } from 'vitest';
import { parseUidRange, TaskUidPool } from './task-uids.js';

describe('parseUidRange', () => {
  it('takes FIRST-LAST at 1000 or above and names the problem otherwise', () => {
    expect(parseUidRange('100000-165535')).toEqual({ first: 100_000, last: 165_535 });
    expect(parseUidRange('5000-5000')).toEqual({ first: 5000, last: 5000 });
    expect(parseUidRange('0-10')).toEqual({ problem: expect.stringMatching(/1000 or above/) });
    expect(parseUidRange('2000-1000')).toEqual({ problem: expect.stringMatching(/below the first/) });
    expect(parseUidRange('1000-4294967295')).toEqual({ problem: expect.stringMatching(/at most/) });
    expect(parseUidRange('a-b')).toEqual({ problem: expect.stringMatching(/FIRST-LAST/) });
  });
});

describe('TaskUidPool', () => {
  it('gives each attempt its own uid, the same one when asked again, and none when the range is used up', () => {
    const pool = new TaskUidPool({ first: 2000, last: 2002 });
    expect([pool.take('a~0~1'), pool.take('b~0~1'), pool.take('c~0~1')]).toEqual([2000, 2001, 2002]);
    expect(pool.take('a~0~1')).toBe(2000);
    expect(pool.take('d~0~1')).toBeUndefined();
    expect(pool.used).toBe(3);
  });

  it('hands a released uid out again only after the rest of the range (next fit)', () => {
    const pool = new TaskUidPool({ first: 2000, last: 2002 });
    pool.take('a~0~1');
    pool.release('a~0~1');
    expect(pool.take('b~0~1')).toBe(2001);
    expect(pool.take('c~0~1')).toBe(2002);
    expect(pool.take('d~0~1')).toBe(2000);
  });

  it('keeps the uids of adopted attempts out of new hands, and refuses one outside the range or held by another', () => {
    const pool = new TaskUidPool({ first: 2000, last: 2001 });
    expect(pool.mark('old~0~1', 2000)).toBe(true);
    expect(pool.mark('old~0~1', 2000)).toBe(true);
    expect(pool.mark('other~0~1', 2000)).toBe(false);
    expect(pool.mark('far~0~1', 9999)).toBe(false);
    expect(pool.take('new~0~1')).toBe(2001);
    expect(pool.take('newer~0~1')).toBeUndefined();
  });

  it('makes a start on a used-up range wait for the uid of an attempt that has ended, and only for such a one', async () => {
    const pool = new TaskUidPool({ first: 2000, last: 2000 });
    expect(pool.take('a~0~1')).toBe(2000);
    // Held by a live attempt: no wait, none.
    expect(await pool.takeSoon('b~0~1', 5_000)).toBeUndefined();
    pool.ended('a~0~1');
    const waited = pool.takeSoon('b~0~1', 5_000);
    pool.release('a~0~1');
    expect(await waited).toBe(2000);
    // An ended attempt whose cleanup failed keeps its uid, and nobody waits for it.
    pool.ended('b~0~1');
    pool.stayHeld('b~0~1');
    expect(await pool.takeSoon('c~0~1', 5_000)).toBeUndefined();
    // Bounded: an ended attempt that never gives its uid back makes a start wait only so long.
    pool.ended('b~0~1');
    expect(await pool.takeSoon('c~0~1', 20)).toBeUndefined();
  });
});
