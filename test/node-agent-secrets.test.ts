/**
 * Secret env values reach the task's environment and nothing else: not the agent's logs, not a
 * file in the agent's data directory (meta.json, started.json, anything). Runs the agent in this
 * process on a MemoryKv with real task processes (the built supervisor: `tsc -b` first), without
 * cgroups (not what is under test here).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type JobSpec, type SecretEnv, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, ProcessExecutor, taskLogPaths } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';

const SECRET = 'sup3r-s3cret-value-for-the-task';
const m1 = machineId('secret-m1');

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

describe('the node agent with secret env values', () => {
  let kv: MemoryKv;
  let cell: Cell;
  let mirror: CellMirror;
  let agent: Agent;
  let dataDir: string;
  let logged = '';
  const reads: string[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-secrets-'));
    kv = new MemoryKv();
    cell = new Cell(kv, freshCellName());
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged += chunk.toString();
        done();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    agent = new Agent({
      cell,
      machines: [{ id: m1, capacity: { cpuMillis: 8_000, memoryBytes: 8 * 1024 ** 3 } }],
      executor: async ({ reporter, logger: log }) => {
        const executor = new ProcessExecutor({
          dataDir,
          machineId: m1,
          reporter,
          cgroups: undefined,
          killGraceMs: 500,
          logger: log,
          secretEnv: async (job) => {
            reads.push(job);
            return cell.readSecretEnv(job);
          },
          secretEnvRetry: { initialMs: 10, maxMs: 20, attempts: 2 },
        });
        await executor.init();
        return executor;
      },
      logger,
      flushIntervalMs: 20,
    });
    await agent.start();
    mirror = cell.mirror();
    await mirror.start();
  });

  afterAll(async () => {
    await agent?.stop({ drain: true });
    await mirror?.stop();
    await kv?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function run(name: string, spec: JobSpec, secretEnv?: SecretEnv): Promise<Task> {
    await cell.createJob({ id: jobId(name), spec, ...(secretEnv === undefined ? {} : { secretEnv }) });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
    await eventually(`task ${name} to end`, () => {
      const t = mirror.snapshot().task(taskId(name, 0));
      return t !== undefined && t.finishedAtMs > 0;
    });
    return mirror.snapshot().task(taskId(name, 0)) as Task;
  }

  it('the task finds the value in its environment; no log line and no file of the agent holds it', async () => {
    // The task prints a hash of what it got (not the value: its log file is on disk), and
    // sleeps a little so the test sees it while it runs too.
    const spec = jobSpec('sees').cpu(100).memory('32Mi').env('PLAIN', 'visible').command('/bin/sh', '-c', 'printf %s "$DB_TOKEN" | sha256sum; echo "plain=$PLAIN"; sleep 0.3').build();
    const task = await run('sees', spec, { DB_TOKEN: SECRET });
    expect(task).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const stdout = await readFile(taskLogPaths(dataDir, taskId('sees', 0), task.attempt).stdout, 'utf8');
    expect(stdout).toContain(createHash('sha256').update(SECRET).digest('hex'));
    expect(stdout).toContain('plain=visible');
    expect(reads).toContain('sees');

    const files = await filesUnder(dataDir);
    expect(files.length).toBeGreaterThan(2);
    for (const file of files) {
      if ((await stat(file)).size > 10 * 1024 * 1024) continue;
      expect((await readFile(file)).toString('latin1'), file).not.toContain(SECRET);
    }
    expect(logged).toContain('task ended');
    expect(logged).not.toContain(SECRET);
  });

  it('a job without secrets never asks for them', async () => {
    reads.length = 0;
    const task = await run('plain', jobSpec('plain').cpu(100).memory('32Mi').command('/bin/true').build());
    expect(task.state).toBe('succeeded');
    expect(reads).toEqual([]);
  });

  it('a task whose secret record is gone ends failed with reason secret-env-missing, without running', async () => {
    const spec = jobSpec('gone').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'exit 0').build();
    await cell.createJob({ id: jobId('gone'), spec, secretEnv: { DB_TOKEN: SECRET } });
    await kv.delete(cell.keys.secret(jobId('gone')));
    await placeTasks(cell, mirror, [{ taskId: taskId('gone', 0), machineId: m1, resources: spec.task.resources }]);
    await eventually('task gone to end', () => (mirror.snapshot().task(taskId('gone', 0))?.finishedAtMs ?? 0) > 0);
    expect(mirror.snapshot().task(taskId('gone', 0))).toMatchObject({ state: 'failed', reason: 'secret-env-missing', pid: 0 });
  });
});
