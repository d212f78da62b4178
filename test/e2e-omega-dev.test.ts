// End to end: the real `omega` CLI against a real `omega dev` cell (etcd, the API, two agents on
// this host, a batch and a service scheduler, each its own process), secured as `omega dev` is by
// default: its own CA, TLS everywhere, etcd users per component, and the admin token in the
// client config it writes, which every CLI call here uses. Everything is started and stopped by
// this file; servers listen on 127.0.0.1 only.
//
// Needs every package built (`npm run build`), including the agents' log server and the
// schedulers' shared process runner; until they exist, the tests are skipped with a warning.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, credentials, loadPackageDefinition, status, type Client, type ServiceError } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@omega/api/client';
import { freePort } from '@omega/cell-state';
import { eventually, repoPath, runNode, startNode, stopAll, type Started } from './support/processes.js';

const CLI = repoPath('packages/cli/dist/main.js');

/** What must be built for an end-to-end run, and how to tell. */
const REQUIREMENTS: readonly [string, () => boolean][] = [
  ['packages/cli/dist/main.js', () => existsSync(CLI)],
  ['packages/api/dist/main.js', () => existsSync(repoPath('packages/api/dist/main.js'))],
  ['packages/node-agent/dist/main.js serving logs (startLogServer wired in)', () => fileIncludes('packages/node-agent/dist/main.js', 'startLogServer') || fileIncludes('packages/node-agent/dist/agent.js', 'startLogServer')],
  ['packages/scheduler-core/dist/index.js exporting runSchedulerProcess', () => fileIncludes('packages/scheduler-core/dist/index.js', 'runSchedulerProcess')],
  ['packages/scheduler-batch/dist/main.js', () => existsSync(repoPath('packages/scheduler-batch/dist/main.js'))],
  ['packages/scheduler-service/dist/main.js', () => existsSync(repoPath('packages/scheduler-service/dist/main.js'))],
];

function fileIncludes(path: string, text: string): boolean {
  try {
    return readFileSync(repoPath(path), 'utf8').includes(text);
  } catch {
    return false;
  }
}

const missing = REQUIREMENTS.filter(([, ok]) => !ok()).map(([what]) => what);
const built = missing.length === 0;
if (!built) {
  console.warn(`\n!!! SKIPPING the omega dev end-to-end tests: not built yet:\n!!!   ${missing.join('\n!!!   ')}\n!!! Run \`npm run build\` once every package has landed.\n`);
}
const isRoot = process.getuid?.() === 0;

let dataDir: string;
let api: string;
let dev: Started | undefined;
let devPids: number[] = [];
const jobIds: string[] = [];

async function startDev(): Promise<void> {
  const { started, match } = await startNode(
    CLI,
    ['dev', '--data-dir', dataDir, '--listen', api, '--machines', '2', '--machine-cpu', '1', '--machine-memory', '1Gi', '--batch-schedulers', '1', '--service-schedulers', '1'],
    /is up[\s\S]*?Ctrl-C/,
    120_000,
  );
  void match;
  dev = started;
  // The PID column of the process table `omega dev` prints.
  devPids = [...started.output().matchAll(/^(?:etcd|api|agent-\d+|batch-\d+|service-\d+)\s+(\d+)\s/gm)].map((m) => Number(m[1]));
  await eventually('both machines to be alive', async () => {
    const machines = JSON.parse((await omega('--json', 'machines')).stdout) as { alive: boolean }[];
    return machines.filter((m) => m.alive).length === 2;
  }, 60_000);
  // A child that died at once (its heartbeat may outlive it for a while) would fail every test.
  expect(started.output()).not.toContain('exited unexpectedly');
  expect(devPids.filter((pid) => !alive(pid))).toEqual([]);
}

async function stopDev(): Promise<void> {
  await dev?.stop();
  expect(dev?.child.exitCode).toBe(0);
  dev = undefined;
}

/** The client config `omega dev` writes: the API's address, its CA and the admin token. */
const clientConfig = (): string => join(dataDir, 'client.yaml');

function omega(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(CLI, ['--config', clientConfig(), ...args], 120_000);
}

/** `ListMachines` from a plain gRPC client of the .proto files, with the given channel and metadata. */
function listMachines(channel: ReturnType<typeof credentials.createSsl>, metadata = new Metadata()): Promise<ServiceError | undefined> {
  const definition = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);
  const v1 = (loadPackageDefinition(definition) as unknown as { omega: { v1: Record<string, new (address: string, creds: unknown) => Client & Record<string, (...args: unknown[]) => unknown>> } }).omega.v1;
  const CellService = v1.CellService;
  if (CellService === undefined) throw new Error('no CellService in the protos');
  const client = new CellService(api, channel);
  return new Promise((resolve) => {
    client.ListMachines?.({}, metadata, { deadline: Date.now() + 10_000 }, (error: ServiceError | null) => {
      client.close();
      resolve(error ?? undefined);
    });
  });
}

async function jobFile(name: string, text: string): Promise<string> {
  const path = join(dataDir, 'jobs', `${name}.yaml`);
  await writeFile(path, text);
  return path;
}

async function submit(name: string, text: string, ...extra: string[]): Promise<string> {
  const result = await omega('submit', '-f', await jobFile(name, text), ...extra);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const id = result.stdout.trim();
  jobIds.push(id);
  return id;
}

interface JobJson {
  id: string;
  state: string;
  tasks: { index: number; state: string; machine: string; exitCode: number | null; reason: string; attempt: number; restarts: number }[];
  taskCounts: Record<string, number>;
}

async function job(id: string): Promise<JobJson> {
  const result = await omega('--json', 'job', id);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as JobJson;
}

async function jobCount(): Promise<number> {
  return (JSON.parse((await omega('--json', 'jobs')).stdout) as unknown[]).length;
}

/** Processes whose environment says they belong to `jobId` (optionally one task of it). */
function processesOf(jobId: string, index?: number): number[] {
  const needle = index === undefined ? `OMEGA_JOB_ID=${jobId}\0` : `OMEGA_TASK_ID=${jobId}/${index}\0`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle)) pids.push(Number(entry));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  if (!built) return;
  dataDir = await mkdtemp(join(tmpdir(), 'omega-e2e-'));
  // Tasks run as nobody when the agents are root: they must be able to enter the data directory.
  await chmod(dataDir, 0o755);
  await mkdir(join(dataDir, 'jobs'));
  api = `127.0.0.1:${await freePort()}`;
  await startDev();
}, 240_000);

afterAll(async () => {
  await stopAll();
  // OMEGA_E2E_KEEP=1 keeps the data directory (logs of every process) for a look after a failure.
  if (dataDir !== undefined && process.env.OMEGA_E2E_KEEP === undefined) await rm(dataDir, { recursive: true, force: true });
  else if (dataDir !== undefined) console.warn(`kept ${dataDir}`);
}, 120_000);

describe.sequential('omega dev driven by the omega CLI', () => {
  it.skipIf(!built)('runs a batch job to succeeded, with its output readable through omega logs', async () => {
    const id = await submit('hello', "name: e2e-hello\nkind: batch\ninstances: 2\ncommand: [sh, -c, 'echo hello from $OMEGA_TASK_ID']\ncpu: 100m\nmemory: 32Mi\n");
    const watched = await omega('watch', id);
    expect(watched.code).toBe(0);
    expect(watched.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`${id}\\s+succeeded`));
    const view = await job(id);
    expect(view.state).toBe('succeeded');
    expect(view.tasks.map((t) => [t.state, t.exitCode])).toEqual([
      ['succeeded', 0],
      ['succeeded', 0],
    ]);
    const logs = await omega('logs', id, '1');
    expect(logs.stderr).toBe('');
    expect(logs.stdout).toBe(`hello from ${id}/1\n`);
  });

  it.skipIf(!built)('keeps a service job at its instance count after one of its processes is killed from outside', async () => {
    const id = await submit('web', "name: e2e-web\nkind: service\ninstances: 2\ncommand: [sh, -c, 'while true; do sleep 1; done']\ncpu: 100m\nmemory: 32Mi\n");
    await eventually('both instances to run', async () => (await job(id)).taskCounts.running === 2);
    const victims = processesOf(id, 0);
    expect(victims.length).toBeGreaterThan(0);
    for (const pid of victims) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (error) {
        // A short-lived child (the loop's `sleep 1`) may have exited since it was listed.
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    const replaced = await eventually('instance 0 to be replaced and both to run again', async () => {
      const view = await job(id);
      return view.taskCounts.running === 2 && (view.tasks[0]?.attempt ?? 0) >= 2 ? view : undefined;
    }, 90_000);
    expect(replaced.tasks[0]?.restarts).toBeGreaterThanOrEqual(1);
    await omega('kill', id);
  });

  it.skipIf(!built)('stops every process of a job on omega kill', async () => {
    const id = await submit('kill', "name: e2e-kill\nkind: service\ninstances: 2\ncommand: [sh, -c, 'while true; do sleep 1; done']\ncpu: 100m\nmemory: 32Mi\n");
    await eventually('both instances to run', async () => (await job(id)).taskCounts.running === 2 && processesOf(id).length > 0);
    const killed = await omega('kill', id);
    expect(killed.code).toBe(0);
    await eventually('the job to be killed', async () => (await job(id)).state === 'killed');
    await eventually('no process of the job to remain', () => processesOf(id).length === 0, 30_000);
    expect((await job(id)).tasks.every((t) => t.state === 'killed')).toBe(true);
  });

  it.skipIf(!built || !isRoot)('ends a job that uses more memory than it asked for as oom-killed', async () => {
    // `tail` keeps the whole last "line" in memory: 400 MB of zero bytes with no newline.
    const id = await submit('oom', "name: e2e-oom\nkind: batch\ncommand: [sh, -c, 'head -c 400000000 /dev/zero | tail > /dev/null']\ncpu: 100m\nmemory: 32Mi\n");
    const view = await eventually('the job to end', async () => {
      const current = await job(id);
      return ['succeeded', 'failed', 'killed'].includes(current.state) ? current : undefined;
    }, 90_000);
    expect(view.state).toBe('failed');
    expect(view.tasks[0]?.reason).toBe('oom-killed');
  });

  it.skipIf(!built)('drains a machine: its service instances move off with at most maxUnavailable down, then uncordon opens it again', async () => {
    const id = await submit('drain', "name: e2e-drain\nkind: service\ninstances: 3\ncommand: [sh, -c, 'while true; do sleep 1; done']\ncpu: 100m\nmemory: 32Mi\n");
    const placed = await eventually('three instances to run', async () => {
      const view = await job(id);
      return view.taskCounts.running === 3 ? view : undefined;
    });
    const target = placed.tasks[0]?.machine ?? '';
    const onTarget = placed.tasks.filter((t) => t.machine === target).length;
    const drained = await omega('drain', target, '--deadline', '10m', '--reason', 'e2e');
    expect(drained.stderr).toBe('');
    expect(drained.stdout).toMatch(new RegExp(`^draining ${target}\n[\\s\\S]*draining until \\S+ \\(e2e\\)`));
    // Sampled until every instance runs elsewhere: the default maxUnavailable is 1.
    let fewest = 3;
    const moved = await eventually('every instance to run off the drained machine', async () => {
      const view = await job(id);
      fewest = Math.min(fewest, view.taskCounts.running ?? 0);
      return view.taskCounts.running === 3 && view.tasks.every((t) => t.machine !== target) ? view : undefined;
    }, 120_000, 100);
    expect(fewest).toBeGreaterThanOrEqual(2);
    expect(moved.tasks.filter((t) => t.attempt >= 2).length).toBe(onTarget);
    expect(moved.tasks.every((t) => t.restarts === 0)).toBe(true);
    const machines = JSON.parse((await omega('--json', 'machines')).stdout) as { id: string; cordon: { reason: string } | null }[];
    expect(machines.find((m) => m.id === target)?.cordon?.reason).toBe('e2e');
    const reopened = await omega('uncordon', target);
    expect(reopened.code).toBe(0);
    expect(JSON.parse((await omega('--json', 'machines')).stdout).find((m: { id: string }) => m.id === target).cordon).toBeNull();
    await omega('kill', id);
  });

  it.skipIf(!built)('plans a submit, then the submit does what the plan said: where it runs, and what waits and why', async () => {
    const text = "name: e2e-plan\nkind: service\ninstances: 3\ncommand: [sh, -c, 'while true; do sleep 1; done']\ncpu: 100m\nmemory: 32Mi\nconstraints:\n  - {attribute: rack, equals: rack-0}\n  - {attribute: rack, maxPerMachine: 2}\n";
    const planned = await omega('--json', 'plan', '-f', await jobFile('plan', text));
    expect(planned.stderr).toBe('');
    const plan = JSON.parse(planned.stdout) as { create: { index: number; machine: string }[]; unplaced: number[]; ruled_out: { filter: string; machines: number }[]; refused: string };
    expect(plan.refused).toBe('');
    expect(plan.create.filter((t) => t.machine !== '').map((t) => t.machine)).toEqual(['dev-0', 'dev-0']);
    expect(plan.unplaced).toHaveLength(1);
    // dev-1 is the wrong rack; dev-0 holds its two already.
    expect(plan.ruled_out.map((r) => r.machines)).toEqual([1, 1]);
    expect(plan.ruled_out.map((r) => r.filter).join(' ')).toMatch(/rack[\s\S]*|max-per-machine/);
    const words = await omega('plan', '-f', await jobFile('plan', text));
    expect(words.stdout).toMatch(/\+ place 2 instances \(dev-0: 0-1\)\n {2}! 2 would wait: /);
    expect(JSON.parse((await omega('--json', 'jobs')).stdout).some((j: { name: string }) => j.name === 'e2e-plan')).toBe(false);

    const id = await submit('plan', text);
    const view = await eventually('two instances to run and one to wait', async () => {
      const v = await job(id);
      return v.taskCounts.running === 2 ? v : undefined;
    });
    expect(view.tasks.filter((t) => t.state === 'running').map((t) => t.machine)).toEqual(['dev-0', 'dev-0']);
    const shown = JSON.parse((await omega('--json', 'job', id)).stdout) as { ruledOut: { filter: string; machines: number }[] };
    expect(shown.ruledOut).toEqual(plan.ruled_out.map((r) => ({ filter: r.filter, machines: r.machines })));
    await omega('kill', id);
  });

  it.skipIf(!built)('follows a running task\'s output with omega logs -f until the task has ended', async () => {
    const id = await submit('follow', "name: e2e-follow\nkind: batch\ncommand: [sh, -c, 'echo first; sleep 3; echo second']\ncpu: 100m\nmemory: 32Mi\n");
    await eventually('the task to run', async () => (await job(id)).tasks[0]?.state === 'running');
    const followed = await omega('logs', '-f', id, '0');
    expect(followed.stderr).toBe('');
    expect(followed.code).toBe(0);
    expect(followed.stdout).toBe('first\nsecond\n');
    await eventually('the job to succeed', async () => (await job(id)).state === 'succeeded');
  });

  it.skipIf(!built)('serves Prometheus metrics from every process at the address its process table prints', async () => {
    const urls = new Map([...(dev?.output() ?? '').matchAll(/^(api|agent-\d+|batch-\d+|service-\d+)\s+\d+\s.*?(http:\/\/127\.0\.0\.1:\d+\/metrics)/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
    expect([...urls.keys()].sort()).toEqual(['agent-0', 'agent-1', 'api', 'batch-0', 'service-0']);
    const text = async (name: string): Promise<string> => (await fetch(urls.get(name) ?? '')).text();
    expect(await text('batch-0')).toMatch(/^omega_scheduler_claims_total\{result="committed",scheduler="batch-0"\} \d+$/m);
    expect(await text('api')).toMatch(/^omega_api_requests_total\{method="ListMachines",code="OK",component="api"\} \d+$/m);
    expect(await text('agent-0')).toMatch(/^omega_agent_up\{agent="dev-0"\} 1$/m);
  });

  it.skipIf(!built)('refuses invalid specs naming the field, from the file or from the server, and stores no job', async () => {
    const before = await jobCount();
    const local = await omega('submit', '-f', await jobFile('bad-local', 'name: e2e-bad\nkind: batch\ncommand: [true]\ncpu: 100m\nmemory: 0\n'));
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/^omega: .*bad-local\.yaml: memory: must be > 0\n$/);
    const long = 'x'.repeat(300);
    const remote = await omega('submit', '-f', await jobFile('bad-remote', `name: e2e-bad\nkind: batch\ncommand: [true]\ncpu: 100m\nmemory: 32Mi\nconstraints: [{attribute: zone, in: [${long}]}]\n`));
    expect(remote.code).toBe(1);
    expect(remote.stderr).toBe('omega: refused: job.constraints[0].values[0]: must be at most 256 characters\n');
    expect(await jobCount()).toBe(before);
  });

  it.skipIf(!built)('creates one job for the same request id submitted twice', async () => {
    const before = await jobCount();
    const text = "name: e2e-once\nkind: batch\ncommand: [sh, -c, 'true']\ncpu: 100m\nmemory: 32Mi\n";
    const first = await submit('once', text, '--request-id', 'e2e-once-1');
    const second = await submit('once', text, '--request-id', 'e2e-once-1');
    expect(second).toBe(first);
    expect(await jobCount()).toBe(before + 1);
  });

  it.skipIf(!built)('writes a private client config that the CLI uses from OMEGA_CONFIG, naming the API, its CA and an admin token', async () => {
    const config = await readFile(clientConfig(), 'utf8');
    expect(statSync(clientConfig()).mode & 0o777).toBe(0o600);
    expect(config).toContain(`api: ${api}\n`);
    expect(config).toContain('ca: pki/ca.pem\n');
    expect(config).toMatch(/\ntoken: omg1\.dev-admin\.[A-Za-z0-9_-]{43}\n/);
    expect(dev?.output()).toContain(`export OMEGA_CONFIG=${clientConfig()}`);
    const previous = process.env.OMEGA_CONFIG;
    process.env.OMEGA_CONFIG = clientConfig();
    try {
      const whoami = await runNode(CLI, ['--json', 'whoami'], 60_000);
      expect(whoami.stderr).toBe('');
      expect(JSON.parse(whoami.stdout)).toMatchObject({ name: 'dev-admin', role: 'admin' });
    } finally {
      if (previous === undefined) delete process.env.OMEGA_CONFIG;
      else process.env.OMEGA_CONFIG = previous;
    }
  });

  it.skipIf(!built)('refuses a call without the token, with a token it does not know, and a plaintext client', async () => {
    const ca = await readFile(join(dataDir, 'pki', 'ca.pem'));
    const tls = credentials.createSsl(ca);
    // The same client with the token is let in: the refusals below are about the credential.
    const withToken = new Metadata();
    withToken.set('authorization', `Bearer ${/\ntoken: (\S+)\n/.exec(await readFile(clientConfig(), 'utf8'))?.[1] ?? ''}`);
    expect(await listMachines(tls, withToken)).toBeUndefined();
    expect((await listMachines(tls))?.code).toBe(status.UNAUTHENTICATED);
    const unknown = await omega('--token', `omg1.dev-admin.${'A'.repeat(43)}`, 'jobs');
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe('');
    const plaintext = await listMachines(credentials.createInsecure() as ReturnType<typeof credentials.createSsl>);
    expect(plaintext?.code).toBe(status.UNAVAILABLE);
  });

  it.skipIf(!built)('leaves no process behind when stopped, and resumes the cell with its jobs, its CA and its token when started again', async () => {
    const pids = devPids;
    expect(pids.length).toBe(6);
    const before = { ca: await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8'), config: await readFile(clientConfig(), 'utf8') };
    await stopDev();
    expect(pids.filter(alive)).toEqual([]);
    for (const id of jobIds) expect(processesOf(id)).toEqual([]);
    await startDev();
    expect(await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8')).toBe(before.ca);
    expect(await readFile(clientConfig(), 'utf8')).toBe(before.config);
    expect(dev?.output()).not.toContain('Created a private CA');
    const listed = (JSON.parse((await omega('--json', 'jobs')).stdout) as { id: string }[]).map((j) => j.id);
    expect(listed).toEqual(expect.arrayContaining([...new Set(jobIds)]));
  });
});
