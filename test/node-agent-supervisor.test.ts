/**
 * The native task supervisor under a real agent on real cgroups: output past the log cap is
 * rotated and the newest bytes kept (and the log server says it was truncated), the task's
 * memory limit leaves room for its supervisor inside the claim, and what one supervisor costs
 * (resident and proportional memory, CPU per task start) is measured and printed. Needs root and
 * writable cgroups; skipped loudly otherwise. Runs the agent in this process on a MemoryKv.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobId, machineId, taskId, type Cell, type CellMirror, type JobSpec, type Task } from '@omega/cell-state';
import { jobSpec } from '@omega/cell-state/testing';
import {
  defaultSupervisorPath,
  LOG_TRUNCATED_HEADER,
  resolveTaskUser,
  startLogServer,
  SUPERVISOR_OVERHEAD_BYTES,
  supervisorsUnder,
  taskInstanceName,
  taskLogPaths,
  type CgroupDriver,
  type LogServer,
} from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded, detectRealCgroups, type RealAgent, startRealAgent } from './support/real-agent.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const CAP = 64 * KiB;
const m1 = machineId('sv-m1');
const parent = `omega-test-sv-${process.pid}`;

const { driver: detected, skip } = await detectRealCgroups(parent, 'native supervisor tests on real cgroups');

/** `seq 1 n` as the task prints it. */
function seqText(n: number): string {
  return `${Array.from({ length: n }, (_, i) => String(i + 1)).join('\n')}\n`;
}

/** GET a log from the agent's log server (plain HTTP here): its body and truncation header. */
function getLog(server: LogServer, path: string): Promise<{ status: number; truncated: string | undefined; body: string }> {
  const [host, port] = server.address.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, truncated: res.headers[LOG_TRUNCATED_HEADER] as string | undefined, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A field of /proc/<pid>/status or smaps_rollup, in bytes. */
function procKb(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (m === null) throw new Error(`no ${field} in ${text.slice(0, 200)}`);
  return Number(m[1]) * KiB;
}

describe('the native task supervisor', () => {
  let real: RealAgent | undefined;
  let cell: Cell;
  let mirror: CellMirror;
  let dataDir: string;
  let driver: CgroupDriver;
  let logServer: LogServer;

  beforeAll(async () => {
    if (skip) return;
    driver = detected as CgroupDriver;
    real = await startRealAgent({ driver, parent, machineId: m1, dataDirPrefix: 'omega-agent-sv-', executor: { taskUser: resolveTaskUser('nobody'), killGraceMs: 500, logCapBytes: CAP } });
    ({ cell, mirror, dataDir } = real);
    logServer = await startLogServer({ dataDir, host: '127.0.0.1', port: 0, logPathFor: (job, index, attempt, stream) => taskLogPaths(dataDir, taskId(job, index), attempt)[stream] });
  });

  afterAll(async () => {
    await logServer?.close();
    await real?.stop();
  });

  async function run(name: string, spec: JobSpec): Promise<void> {
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: m1, resources: spec.task.resources }]);
  }
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const ended = (name: string): boolean => attemptEnded(record(name));

  it.skipIf(skip)('a task that writes three times the log cap keeps the newest bytes in two files, and the log server says the output was truncated', async () => {
    // 40,000 numbered lines: 229 KiB, about 3.5 caps.
    const n = 40_000;
    const full = seqText(n);
    expect(full.length).toBeGreaterThan(3 * CAP);
    await run('chatty', jobSpec('chatty').cpu(500).memory('32Mi').command('/bin/sh', '-c', `seq 1 ${n}; echo done >&2`).build());
    await eventually('the task to end', () => ended('chatty'));
    expect(record('chatty')).toMatchObject({ state: 'succeeded', exitCode: 0 });

    const logs = taskLogPaths(dataDir, taskId('chatty', 0), 1);
    const current = await readFile(logs.stdout, 'utf8');
    const rotated = await readFile(`${logs.stdout}.1`, 'utf8');
    expect(rotated.length).toBe(CAP);
    expect(current.length).toBeGreaterThan(0);
    expect(current.length).toBeLessThanOrEqual(CAP);
    // Together: exactly the newest bytes of the output, in order.
    expect(full.endsWith(rotated + current)).toBe(true);
    expect(await readFile(logs.stderr, 'utf8')).toBe('done\n');
    const exit = JSON.parse(await readFile(join(logs.dir, 'exit.json'), 'utf8')) as Record<string, unknown>;
    expect(exit).toMatchObject({ exitCode: 0, signal: null, stdoutTruncated: true, stderrTruncated: false });
    // Root-owned and closed to the task user: another task cannot write into them.
    const st = await stat(logs.stdout);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o777).toBe(0o640);

    const served = await getLog(logServer, '/logs/chatty/0/1/stdout');
    expect(served).toMatchObject({ status: 200, truncated: 'true' });
    expect(served.body).toBe(rotated + current);
    expect(await getLog(logServer, '/logs/chatty/0/1/stderr')).toMatchObject({ status: 200, truncated: 'false', body: 'done\n' });
  });

  it.skipIf(skip)('output of one cap and a half is rotated once and served whole, not marked truncated', async () => {
    const n = 15_000;
    const full = seqText(n);
    expect(full.length).toBeGreaterThan(CAP);
    expect(full.length).toBeLessThan(2 * CAP);
    await run('rotated', jobSpec('rotated').cpu(500).memory('32Mi').command('seq', '1', String(n)).build());
    await eventually('the task to end', () => ended('rotated'));
    const served = await getLog(logServer, '/logs/rotated/0/1/stdout');
    expect(served).toMatchObject({ status: 200, truncated: 'false' });
    expect(served.body).toBe(full);
  });

  it.skipIf(skip)("a job's own log limit below the agent's cap is the cap of its files", async () => {
    const base = jobSpec('small').cpu(500).memory('32Mi').command('seq', '1', '10000').build();
    await run('small', { ...base, task: { ...base.task, logLimitBytes: 8 * KiB } });
    await eventually('the task to end', () => ended('small'));
    const logs = taskLogPaths(dataDir, taskId('small', 0), 1);
    expect((await stat(`${logs.stdout}.1`)).size).toBe(8 * KiB);
    expect((await stat(logs.stdout)).size).toBeLessThanOrEqual(8 * KiB);
    expect(seqText(10_000).endsWith((await readFile(`${logs.stdout}.1`, 'utf8')) + (await readFile(logs.stdout, 'utf8')))).toBe(true);
  });

  it.skipIf(skip)("the task's memory limit is its claim minus the supervisor's reserved overhead", async () => {
    await run('limited', jobSpec('limited').cpu(100).memory('32Mi').command('sleep', '30').build());
    await eventually('the task to run', () => record('limited')?.state === 'running');
    const name = taskInstanceName(taskId('limited', 0), 1);
    const file = driver.version === 'v2' ? join(driver.root, parent, name, 'memory.max') : join(driver.root, 'memory', parent, name, 'memory.limit_in_bytes');
    expect(Number((await readFile(file, 'utf8')).trim())).toBe(32 * MiB - SUPERVISOR_OVERHEAD_BYTES);
    await cell.setJobDesired(jobId('limited'), 'killed');
    await eventually('the task to be killed', () => ended('limited'));
  });

  it.skipIf(skip)('one supervisor holding a task stays under 2 MiB of memory (measured and printed)', async () => {
    await run('held', jobSpec('held').cpu(100).memory('16Mi').command('sleep', '30').build());
    await eventually('the task to run', () => record('held')?.state === 'running');
    const dir = taskLogPaths(dataDir, taskId('held', 0), 1).dir;
    const pid = supervisorsUnder(`${dirname(dir)}/`).get(dir) as number;
    expect(pid).toBeGreaterThan(0);
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
    const rss = procKb(status, 'VmRSS');
    const pss = procKb(rollup, 'Pss');
    const privateBytes = procKb(rollup, 'Private_Clean') + procKb(rollup, 'Private_Dirty');
    console.log(`supervisor pid ${pid}: VmRSS ${(rss / KiB).toFixed(0)} KiB, Pss ${(pss / KiB).toFixed(0)} KiB, private ${(privateBytes / KiB).toFixed(0)} KiB (reserved per task: ${SUPERVISOR_OVERHEAD_BYTES / KiB} KiB)`);
    expect(rss).toBeLessThanOrEqual(2 * MiB);
    expect(pss).toBeLessThanOrEqual(SUPERVISOR_OVERHEAD_BYTES);
    await cell.setJobDesired(jobId('held'), 'killed');
    await eventually('the task to be killed', () => ended('held'));
  });

  it.skipIf(skip)('the CPU one supervisor costs to start a task is measured and printed', async () => {
    // The supervisor alone, without the agent, from a shell loop; `times` prints the CPU of the
    // shell's reaped children (the supervisors and their /bin/true). The same loop running
    // /bin/true directly is subtracted: what remains is the supervisor's own cost.
    const binary = defaultSupervisorPath();
    const scratch = await mkdtemp(join(tmpdir(), 'omega-sv-cpu-'));
    const count = 200;
    const childSeconds = (loopBody: string): number => {
      const script = `mkdir -p "$1/work"; i=0; while [ $i -lt ${count} ]; do ${loopBody}; i=$((i+1)); done; times`;
      const out = spawnSync('/bin/bash', ['-c', script, 'bash', scratch, binary], { encoding: 'utf8' });
      expect(out.status, out.stderr).toBe(0);
      const lines = out.stdout.trim().split('\n');
      const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[lines.length - 1] ?? '');
      expect(m).not.toBeNull();
      const [, um, us, sm, ss] = m as RegExpExecArray;
      return Number(um) * 60 + Number(us) + Number(sm) * 60 + Number(ss);
    };
    try {
      const supervised = childSeconds(`printf 'PATH=/bin\\0\\0' | "$2" -w "$1/work" "$1" -- /bin/true || exit 1`);
      const bare = childSeconds('/bin/true || exit 1');
      const perStartMs = ((supervised - bare) * 1000) / count;
      console.log(`supervisor CPU per task start: ${perStartMs.toFixed(2)} ms (${count} starts of /bin/true: ${(supervised * 1000).toFixed(0)} ms supervised, ${(bare * 1000).toFixed(0)} ms bare)`);
      const exit = JSON.parse(await readFile(join(scratch, 'exit.json'), 'utf8')) as Record<string, unknown>;
      expect(exit).toMatchObject({ exitCode: 0, signal: null });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
