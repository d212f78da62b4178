// End to end: job versions through the real `omega` CLI against a real `omega dev` cell (etcd,
// the API, a hollow agent serving 4 machines, a batch and a service scheduler, each its own
// process, secured as `omega dev` is by default). Scale up and down; a 4-instance service
// updated to a new command replaced in steps, with its healthy instances sampled all along; an
// update whose health check fails rolled back automatically. Everything is started and stopped
// by this file; servers listen on 127.0.0.1 only.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@omega/cell-state';
import { eventually, repoPath, runNode, startNode, stopAll, type Started } from './support/processes.js';

const CLI = repoPath('packages/cli/dist/main.js');
const built = ['packages/cli/dist/main.js', 'packages/api/dist/main.js', 'packages/node-agent/dist/main.js', 'packages/scheduler-service/dist/main.js', 'packages/scheduler-batch/dist/main.js'].every((p) => existsSync(repoPath(p)));
if (!built) console.warn('\n!!! SKIPPING the rolling update end-to-end tests: run `npx tsc -b` first\n');

let dataDir: string;
let dev: Started | undefined;

function omega(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(CLI, ['--config', join(dataDir, 'client.yaml'), ...args], 60_000);
}

async function jobFile(name: string, text: string): Promise<string> {
  const path = join(dataDir, 'jobs', `${name}.yaml`);
  await writeFile(path, text);
  return path;
}

interface TaskJson {
  index: number;
  state: string;
  reason: string;
  attempt: number;
  restarts: number;
  version: number;
  startedAtMs: number;
  health: string | null;
}
interface JobJson {
  id: string;
  state: string;
  version: number;
  instances: number;
  spec: { command: string[] };
  deployment: { version: number; state: string; healthy: number; updated: number; total: number; reason: string } | null;
  tasks: TaskJson[];
}

async function job(id: string): Promise<JobJson> {
  const result = await omega('--json', 'job', id);
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as JobJson;
}

async function ok(...args: string[]): Promise<string> {
  const result = await omega(...args);
  expect(result.stderr, args.join(' ')).toBe('');
  expect(result.code, args.join(' ')).toBe(0);
  return result.stdout;
}

/**
 * Healthy as a rolling update counts it, from one view: running and, at the version being
 * deployed, running for `minHealthyMs` (the instances of these tests have no check of their own
 * in the old version; the new ones with a failing check never count).
 */
function healthyOf(view: JobJson, minHealthyMs: number, now: number): number {
  const deploying = view.deployment?.version ?? 0;
  return view.tasks.filter((t) => t.state === 'running' && t.health !== 'failing' && (t.version < deploying || now - t.startedAtMs >= minHealthyMs)).length;
}

/** Samples the job until `done` says so; returns the views seen. */
async function sample(id: string, done: (view: JobJson) => boolean, timeoutMs: number): Promise<{ views: JobJson[]; healthy: number[] }> {
  const views: JobJson[] = [];
  const healthy: number[] = [];
  const until = Date.now() + timeoutMs;
  for (;;) {
    const view = await job(id);
    views.push(view);
    healthy.push(healthyOf(view, 2_000, Date.now()));
    if (done(view)) return { views, healthy };
    if (Date.now() > until) throw new Error(`timed out; last view: ${JSON.stringify(view)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const service = (command: string, extra = ''): string =>
  `name: e2e-roll\nkind: service\ninstances: 4\ncommand: [${command}]\ncpu: 100m\nmemory: 32Mi\nduration: 1h\nupdate: {maxUnavailable: 1, minHealthyTime: 2s, healthyDeadline: 20s, autoRollback: true}\n${extra}`;

beforeAll(async () => {
  if (!built) return;
  dataDir = await mkdtemp(join(tmpdir(), 'omega-e2e-roll-'));
  await chmod(dataDir, 0o755);
  await mkdir(join(dataDir, 'jobs'));
  const api = `127.0.0.1:${await freePort()}`;
  const { started } = await startNode(
    CLI,
    ['dev', '--data-dir', dataDir, '--listen', api, '--machines', '0', '--hollow', '4', '--machine-cpu', '1', '--machine-memory', '1Gi', '--batch-schedulers', '1', '--service-schedulers', '1'],
    /is up[\s\S]*?Ctrl-C/,
    120_000,
  );
  dev = started;
  await eventually('the 4 hollow machines to be alive', async () => {
    const result = await omega('--json', 'machines');
    return result.code === 0 && (JSON.parse(result.stdout) as { alive: boolean }[]).filter((m) => m.alive).length === 4;
  }, 60_000);
}, 180_000);

afterAll(async () => {
  await dev?.stop();
  await stopAll();
  if (dataDir !== undefined && process.env.OMEGA_E2E_KEEP === undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe.sequential('job versions through omega update, scale, rollback and history', () => {
  it.skipIf(!built)('scales a service up and down through omega scale: down stops the highest indexes (scaled-down), and the history lists each version', async () => {
    const id = (await ok('submit', '-f', await jobFile('scale', 'name: e2e-scale\nkind: service\ninstances: 2\ncommand: [run]\ncpu: 100m\nmemory: 32Mi\nduration: 1h\n'))).trim();
    await eventually('2 instances to run', async () => (await job(id)).tasks.filter((t) => t.state === 'running').length === 2);
    expect(await ok('scale', id, '4')).toBe(`${id}: version 2: instances 2 -> 4\n`);
    await eventually('4 instances to run', async () => (await job(id)).tasks.filter((t) => t.state === 'running').length === 4);
    await ok('scale', id, '1');
    await eventually('3 instances to stop as scaled-down', async () => {
      const view = await job(id);
      return view.instances === 1 && view.tasks.length === 1 && view.tasks[0]?.state === 'running' ? view : undefined;
    });
    const history = await ok('history', id);
    expect(history.split('\n')[1]).toMatch(/^3 \(current\)\s+\S+\s+\S+\s+instances 4 -> 1$/);
    expect(history).toMatch(/\n1\s+\S+\s+-\s+submitted\n/);
    const view = await job(id);
    expect(view.version).toBe(3);
    expect(view.deployment).toBeNull();
    await ok('kill', id);
  });

  it.skipIf(!built)('replaces a 4-instance service updated to a new command in steps, never with fewer than 3 healthy', async () => {
    const file = await jobFile('roll', service('v1'));
    const id = (await ok('submit', '-f', file)).trim();
    await eventually('4 instances to run', async () => (await job(id)).tasks.filter((t) => t.state === 'running').length === 4, 60_000);
    await writeFile(file, service('v2'));
    // Without an id: the one running job of the file's name, as `nomad job run` finds it.
    expect(await ok('update', '-f', file)).toMatch(new RegExp(`^${id}: version 2: task.command changed`));
    const { views, healthy } = await sample(id, (v) => v.deployment?.version === 2 && v.deployment.state !== 'running', 90_000);
    const last = views.at(-1);
    expect(last?.deployment).toMatchObject({ version: 2, state: 'succeeded', healthy: 4, updated: 4, total: 4 });
    expect(last?.tasks.map((t) => [t.state, t.version, t.restarts])).toEqual([0, 1, 2, 3].map(() => ['running', 2, 0]));
    // Replaced in steps: some view shows the deployment part way.
    expect(views.some((v) => v.deployment?.state === 'running' && v.deployment.updated > 0 && v.deployment.updated < 4)).toBe(true);
    console.log(`healthy instances sampled during the rollout (${healthy.length} samples): min ${Math.min(...healthy)}`);
    expect(Math.min(...healthy)).toBeGreaterThanOrEqual(3);
    // The same file again: nothing changed, no new version.
    expect(await ok('update', '-f', file, id)).toBe(`${id}: unchanged at version 2 (nothing changed: no new version)\n`);
  }, 150_000);

  it.skipIf(!built)('rolls an update whose health check fails back to the last good version automatically, never with fewer than 3 healthy', async () => {
    const file = join(dataDir, 'jobs', 'roll.yaml');
    const id = JSON.parse((await ok('--json', 'jobs', '--state', 'running')))
      .map((j: { id: string; name: string }) => j)
      .find((j: { name: string }) => j.name === 'e2e-roll')?.id as string;
    expect(id).toBeDefined();
    await writeFile(file, service('v3', 'healthCheck: {command: [check], interval: 1s, failureThreshold: 2, hollowFailing: true}\n'));
    expect(await ok('update', '-f', file, id)).toMatch(/version 3: task.command, task.healthCheck changed/);
    const { views, healthy } = await sample(id, (v) => v.version >= 4 && v.deployment?.version === 4 && v.deployment.state === 'succeeded', 120_000);
    // The failed deployment's state lasts only until the rollback's own begins: the samples may miss it, the history does not.
    expect(views.some((v) => v.version === 3 && v.tasks.some((t) => t.version === 3))).toBe(true);
    const last = views.at(-1);
    expect(last?.spec.command).toEqual(['v2']);
    // Instances still at version 2 run the spec rolled back to: only those moved to version 3 were replaced.
    expect(last?.tasks.every((t) => t.state === 'running' && (t.version === 4 || t.version === 2))).toBe(true);
    expect(last?.tasks.filter((t) => t.version === 4).length).toBeGreaterThan(0);
    console.log(`healthy instances sampled during the failed update and its rollback (${healthy.length} samples): min ${Math.min(...healthy)}`);
    expect(Math.min(...healthy)).toBeGreaterThanOrEqual(3);
    const history = await ok('history', id);
    expect(history.split('\n')[1]).toMatch(/^4 \(current\)\s+\S+\s+scheduler\s+auto-rollback to version 2: /);
    await ok('kill', id);
  }, 180_000);
});
