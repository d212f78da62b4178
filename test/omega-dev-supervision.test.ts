// `omega dev` supervises its children: one that is killed is restarted and the cell keeps
// working, none outlives `omega dev` when it is SIGKILLed, and a taken API port is refused before
// anything starts. Runs the built CLI (`npm run build` first) with hollow machines only, on a
// temporary data directory and free loopback ports; every process it starts is stopped, even
// when a test fails.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@omega/cell-state';
import { eventually, repoPath, runNode, startNode, stopAll, type Started } from './support/processes.js';

const CLI = repoPath('packages/cli/dist/main.js');
const built = ['packages/cli/dist/dev/process-group.js', 'packages/api/dist/main.js', 'packages/node-agent/dist/main.js', 'packages/scheduler-batch/dist/main.js', 'packages/scheduler-service/dist/main.js'].every((f) =>
  existsSync(repoPath(f)),
);
if (!built) console.warn('\n!!! SKIPPING the omega dev supervision tests: run `npm run build` first\n');

interface ProcessStatus {
  name: string;
  pid: number | null;
  startTicks: string | null;
  state: string;
  restarts: number;
}

let dataDir: string;
let api: string;
let dev: Started | undefined;
/** Every child seen (pid and start time), for the safety net in afterAll. */
const seen = new Map<number, string>();

/** Alive and not a zombie (a child of a killed parent may wait a moment to be reaped). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return startTicks(pid) !== undefined;
}

/** Field 22 of /proc/<pid>/stat (its start time), undefined when gone or a zombie. */
function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function status(dir = dataDir): { pid: number; processes: ProcessStatus[] } {
  const parsed = JSON.parse(readFileSync(join(dir, 'dev-status.json'), 'utf8')) as { pid: number; processes: ProcessStatus[] };
  for (const p of parsed.processes) if (p.pid !== null && p.startTicks !== null) seen.set(p.pid, p.startTicks);
  return parsed;
}

function child(name: string): ProcessStatus {
  const found = status().processes.find((p) => p.name === name);
  if (found === undefined) throw new Error(`no ${name} in dev-status.json`);
  return found;
}

/** Every call goes through the client config `omega dev` wrote (its API, CA and admin token). */
function omega(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(CLI, ['--config', join(dataDir, 'client.yaml'), ...args], 60_000);
}

/** Submits a short hollow batch job and waits for it to succeed: the cell works end to end. */
async function runAJob(name: string): Promise<void> {
  const file = join(dataDir, 'jobs', `${name}.yaml`);
  await writeFile(file, `name: ${name}\nkind: batch\ninstances: 2\ncommand: [sh, -c, 'true']\ncpu: 100m\nmemory: 32Mi\nduration: 500ms\n`);
  // The API may be between two runs right after a restart: retry the submit (same request id).
  const id = await eventually(`${name} to be submitted`, async () => {
    const submitted = await omega('submit', '-f', file, '--request-id', `supervision-${name}`);
    return submitted.code === 0 ? submitted.stdout.trim() : undefined;
  }, 60_000, 1_000);
  await eventually(`${name} to succeed`, async () => {
    const view = JSON.parse((await omega('--json', 'job', id)).stdout) as { state: string };
    if (view.state === 'failed' || view.state === 'killed') throw new Error(`${name} ended ${view.state}`);
    return view.state === 'succeeded';
  }, 90_000, 500);
}

beforeAll(async () => {
  if (!built) return;
  dataDir = await mkdtemp(join(tmpdir(), 'omega-supervision-'));
  // Agents running as root keep their directories elsewhere when the data directory is closed.
  await chmod(dataDir, 0o755);
  await mkdir(join(dataDir, 'jobs'));
  api = `127.0.0.1:${await freePort()}`;
  const { started } = await startNode(
    CLI,
    ['dev', '--data-dir', dataDir, '--listen', api, '--machines', '0', '--hollow', '4', '--batch-schedulers', '1', '--service-schedulers', '1', '--no-enforcement'],
    /is up[\s\S]*?Ctrl-C/,
    120_000,
  );
  dev = started;
  status();
}, 180_000);

afterAll(async () => {
  await stopAll();
  // Whatever the tests did, no child of theirs stays behind (a recycled pid is left alone).
  for (const [pid, ticks] of seen) {
    if (startTicks(pid) !== ticks) continue;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
  if (dataDir !== undefined && process.env.OMEGA_E2E_KEEP === undefined) await rm(dataDir, { recursive: true, force: true });
  else if (dataDir !== undefined) console.warn(`kept ${dataDir}`);
}, 120_000);

describe.sequential('omega dev supervising its children', () => {
  it.skipIf(!built)('lists every child with its pid in dev-status.json', () => {
    const names = status().processes.map((p) => p.name);
    expect(names).toEqual(['etcd', 'api', 'hollow', 'batch-0', 'service-0']);
    for (const p of status().processes) {
      expect(p.state).toBe('running');
      expect(alive(p.pid as number)).toBe(true);
    }
  });

  it.skipIf(!built)('restarts a SIGKILLed scheduler under a new pid, says so, and the cell keeps placing jobs', async () => {
    const before = child('batch-0');
    process.kill(before.pid as number, 'SIGKILL');
    const after = await eventually('batch-0 to run again under a new pid', () => {
      const now = child('batch-0');
      return now.state === 'running' && now.pid !== before.pid ? now : undefined;
    }, 30_000);
    expect(after.restarts).toBe(before.restarts + 1);
    expect(alive(after.pid as number)).toBe(true);
    expect(dev?.output()).toMatch(new RegExp(`batch-0 \\(pid ${before.pid}\\) exited unexpectedly \\(signal SIGKILL\\)[^\\n]*restarting it in`));
    expect(dev?.output()).toContain(`batch-0 restarted (pid ${after.pid}`);
    await runAJob('after-scheduler-kill');
  });

  it.skipIf(!built)('restarts a SIGKILLed etcd on the same data and ports, and the cell keeps its jobs and places new ones', async () => {
    const jobsBefore = (JSON.parse((await omega('--json', 'jobs')).stdout) as unknown[]).length;
    const before = child('etcd');
    process.kill(before.pid as number, 'SIGKILL');
    await eventually('etcd to run again under a new pid', () => {
      const now = child('etcd');
      return now.state === 'running' && now.pid !== before.pid ? now : undefined;
    }, 60_000);
    expect(dev?.output()).toMatch(/etcd \(pid \d+\) exited unexpectedly/);
    await runAJob('after-etcd-kill');
    expect((JSON.parse((await omega('--json', 'jobs')).stdout) as unknown[]).length).toBe(jobsBefore + 1);
  });

  it.skipIf(!built)('leaves no child running once omega dev itself is SIGKILLed', async () => {
    const pids = status().processes.map((p) => p.pid).filter((pid): pid is number => pid !== null);
    expect(pids.length).toBe(5);
    expect(pids.filter(alive)).toEqual(pids);
    dev?.child.kill('SIGKILL');
    // A bound, not a measurement: the kernel's parent-death signal is immediate.
    await eventually('every child of omega dev to be gone', () => pids.filter(alive).length === 0, 15_000);
  });

  it.skipIf(!built)('refuses to start when its API port is taken, naming the port and --listen, and starts nothing', async () => {
    const server: Server = createServer();
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    const other = await mkdtemp(join(tmpdir(), 'omega-supervision-taken-'));
    try {
      const result = await runNode(CLI, ['dev', '--data-dir', other, '--listen', `127.0.0.1:${port}`, '--machines', '0', '--hollow', '1', '--no-enforcement'], 60_000);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`port ${port} is already in use`);
      expect(result.stderr).toContain('--listen');
      expect(result.stdout).not.toContain('is up');
      // Nothing started: no etcd data, no child log, no status file.
      expect(existsSync(join(other, 'etcd'))).toBe(false);
      expect(existsSync(join(other, 'pki'))).toBe(false);
      expect(readdirSync(join(other, 'logs'))).toEqual([]);
      expect(existsSync(join(other, 'dev-status.json'))).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await rm(other, { recursive: true, force: true });
    }
  });

  it.skipIf(!built)('refuses --insecure on the data directory of a secure cell, and starts nothing', async () => {
    // The cell of this file was secure (and omega dev is gone since the SIGKILL test).
    const result = await runNode(CLI, ['dev', '--data-dir', dataDir, '--listen', api, '--insecure', '--machines', '0', '--hollow', '1', '--no-enforcement'], 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${dataDir} holds a secure cell`);
    expect(result.stdout).not.toContain('is up');
  });

  it.skipIf(!built)('runs the old plaintext cell with --insecure, warning what that allows, with a client config that says so', async () => {
    const other = await mkdtemp(join(tmpdir(), 'omega-supervision-insecure-'));
    try {
      const otherApi = `127.0.0.1:${await freePort()}`;
      const { started } = await startNode(CLI, ['dev', '--data-dir', other, '--listen', otherApi, '--insecure', '--machines', '0', '--hollow', '1', '--batch-schedulers', '0', '--service-schedulers', '0', '--no-enforcement'], /is up[\s\S]*?Ctrl-C/, 120_000);
      expect(started.output()).toMatch(/--insecure: etcd and the API run in PLAINTEXT with NO credentials/);
      expect(existsSync(join(other, 'pki'))).toBe(false);
      expect(readFileSync(join(other, 'client.yaml'), 'utf8')).toContain(`api: ${otherApi}\ninsecure: true\n`);
      const machines = await eventually('the hollow machine to be listed', async () => {
        const listed = await runNode(CLI, ['--config', join(other, 'client.yaml'), '--json', 'machines'], 60_000);
        return listed.code === 0 && (JSON.parse(listed.stdout) as unknown[]).length === 1 ? listed : undefined;
      }, 60_000, 500);
      expect(machines.stderr).toBe('');
      await started.stop();
      expect(started.child.exitCode).toBe(0);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
