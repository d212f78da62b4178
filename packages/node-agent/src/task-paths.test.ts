import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobId, machineId, taskId, type Job, type Task, type TaskPatch } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import type { StatusReporter } from './status-reporter.js';
import { ProcessExecutor } from './task-runner.js';
import { cgroupParentSegments, insideRoot, isTaskInstanceName, taskInstanceName, taskLogPaths, UnsafePathError } from './task-paths.js';

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) out.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  return out.sort();
}

describe('task paths', () => {
  it('lay out an attempt under <data dir>/tasks/<job>~<index>~<attempt>', () => {
    expect(taskLogPaths('/var/lib/omega-agent', 'web-1.v2/7', 3)).toEqual({
      dir: '/var/lib/omega-agent/tasks/web-1.v2~7~3',
      stdout: '/var/lib/omega-agent/tasks/web-1.v2~7~3/stdout.log',
      stderr: '/var/lib/omega-agent/tasks/web-1.v2~7~3/stderr.log',
    });
    expect(isTaskInstanceName('web-1.v2~7~3')).toBe(true);
  });

  it('never give two attempts the same name, even when job ids contain dots and digits', () => {
    expect(taskInstanceName('a.1/2', 3)).not.toBe(taskInstanceName('a/1', 23));
    expect(taskInstanceName('a.1/2', 3)).toBe('a.1~2~3');
  });

  it('refuse ids that could leave the data directory', () => {
    for (const bad of ['../../etc/0', '../x/1', './0', '.hidden/0', 'a/b/0', '/etc/0', 'a\0b/0', 'x/-1', 'x/1.5', '..', 'noindex']) {
      expect(() => taskLogPaths('/data', bad, 1), bad).toThrow(UnsafePathError);
    }
    expect(() => taskLogPaths('/data', 'ok/0', 0)).toThrow(/attempt/);
    expect(() => insideRoot('/data', '..')).toThrow(UnsafePathError);
    expect(() => insideRoot('/data', 'a/../../b')).toThrow(UnsafePathError);
    expect(() => cgroupParentSegments('omega/../..')).toThrow(UnsafePathError);
    expect(cgroupParentSegments('/omega/agents/')).toEqual(['omega', 'agents']);
  });

  it('a task with a job id like ../../etc is refused by the runner and creates no file outside the data dir', async () => {
    const base = await mkdtemp(join(tmpdir(), 'omega-paths-'));
    try {
      const dataDir = join(base, 'a', 'b', 'data');
      await mkdir(dataDir, { recursive: true });
      const reports: [string, TaskPatch][] = [];
      const reporter = { report: async (id: string, _claim: string, patch: TaskPatch) => (reports.push([id, patch]), 'updated' as const) } as unknown as StatusReporter;
      const executor = new ProcessExecutor({ dataDir, machineId: machineId('m1'), reporter, cgroups: undefined, supervisorPath: '/nonexistent/supervisor.js' });
      await executor.init();
      const evil = taskId(jobId('../../etc'), 0);
      const task = { id: evil, jobId: jobId('../../etc'), index: 0, attempt: 1, claimId: 'c1', machineId: machineId('m1'), state: 'placed', resources: { cpuMillis: 100, memoryBytes: 1 << 20 } } as unknown as Task;
      const job = { id: jobId('../../etc'), spec: jobSpec('evil').command('/bin/touch', 'pwned').build(), desired: 'running' } as unknown as Job;
      const attempt = executor.start(task, job);
      await attempt.done;
      expect(reports).toEqual([[evil, { state: 'failed', reason: 'invalid-task-id', finishedAtMs: expect.any(Number) }]]);
      expect(await tree(base)).toEqual(['a', 'a/b', 'a/b/data', 'a/b/data/tasks']);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
