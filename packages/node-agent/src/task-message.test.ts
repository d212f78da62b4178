import { MAX_TASK_MESSAGE_LENGTH } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { taskMessage } from './task-message.js';

describe('taskMessage', () => {
  it('keeps a short text as it is, on one line and trimmed', () => {
    expect(taskMessage('could not start the task: exec /nonexistent/binary: No such file or directory')).toBe('could not start the task: exec /nonexistent/binary: No such file or directory');
    expect(taskMessage(' line one\nline two\t\u0007end \n')).toBe('line one line two end');
    expect(taskMessage('')).toBe('');
  });

  it(`cuts a longer text to ${MAX_TASK_MESSAGE_LENGTH} characters ending in "...", never within a surrogate pair`, () => {
    const exact = 'x'.repeat(MAX_TASK_MESSAGE_LENGTH);
    expect(taskMessage(exact)).toBe(exact);
    const cut = taskMessage(`${exact}y`);
    expect(cut).toHaveLength(MAX_TASK_MESSAGE_LENGTH);
    expect(cut).toBe(`${'x'.repeat(MAX_TASK_MESSAGE_LENGTH - 3)}...`);
    // An emoji (two UTF-16 units) across the cut goes whole.
    const pair = taskMessage(`${'x'.repeat(MAX_TASK_MESSAGE_LENGTH - 4)}😀${'z'.repeat(10)}`);
    expect(pair).toBe(`${'x'.repeat(MAX_TASK_MESSAGE_LENGTH - 4)}...`);
    expect(pair.length).toBeLessThanOrEqual(MAX_TASK_MESSAGE_LENGTH);
  });
});
