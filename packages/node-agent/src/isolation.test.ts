import { describe, expect, it } from 'vitest';
import { IsolationUnavailableError, taskIsolation } from './isolation.js';
import { supervisorArgs } from './supervisor-command.js';

describe('the namespaces a task starts in', () => {
  const full = { pid: true, networkNone: true };
  it('are the PID and mount namespaces by default where the host gives them, and a network namespace only for network: none', () => {
    expect(taskIsolation(full, undefined)).toEqual({ pidNamespace: true, networkNone: false });
    expect(taskIsolation(full, 'host')).toEqual({ pidNamespace: true, networkNone: false });
    expect(taskIsolation(full, 'none')).toEqual({ pidNamespace: true, networkNone: true });
    expect(taskIsolation(undefined, 'host')).toBeUndefined();
  });

  it('refuse network: none where the host cannot give it, naming what is missing', () => {
    expect(() => taskIsolation({ pid: true, networkNone: false }, 'none')).toThrow(IsolationUnavailableError);
    expect(() => taskIsolation(undefined, 'none')).toThrow(/network: none/);
  });

  it('reach the supervisor as -i and -N', () => {
    const base = { dir: '/d', argv: ['true'], cwd: '/d/work', procsFiles: [], logCapBytes: 4096 };
    expect(supervisorArgs({ ...base, isolation: { pidNamespace: true, networkNone: true } })).toEqual(['-c', '4096', '-i', '-N', '-w', '/d/work', '/d', '--', 'true']);
    expect(supervisorArgs(base)).toEqual(['-c', '4096', '-w', '/d/work', '/d', '--', 'true']);
  });
});
