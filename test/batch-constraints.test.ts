/**
 * Batch jobs honour their constraints end to end: a real etcd, the API server, one
 * `omega-scheduler-batch` and two hollow agents of three machines each, one agent's machines
 * `rack=rack-0`, the other's `rack=rack-1`, all driven through the `omega` CLI.
 * - a batch job constrained to `rack=rack-1` runs, and every one of its tasks is on a rack-1
 *   machine;
 * - a batch job constrained to a rack no machine has stays pending: no task is placed, and
 *   `omega job` names the filter that ruled the machines out.
 *
 * Runs the built entry points (`tsc -b` runs before vitest). Every process started here is
 * stopped here, also when a test fails; everything listens on 127.0.0.1 only.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startEtcd, type RunningEtcd } from '@omega/cell-state';
import { freshCellName } from '@omega/cell-state/testing';
import { CellProcess, logTails, stopCellProcesses } from './support/cell-processes.js';
import { eventually, repoPath, runNode } from './support/processes.js';
import { AGENT_MAIN, API_MAIN, BATCH_MAIN } from './support/test-cell.js';

const CLI = repoPath('packages/cli/dist/main.js');
const built = [CLI, API_MAIN, BATCH_MAIN, AGENT_MAIN].every((p) => existsSync(p));

let etcd: RunningEtcd | undefined;
let dir: string;
let apiAddress: string;
const processes: CellProcess[] = [];

interface JobJson {
  readonly state: string;
  readonly ruledOut: readonly { filter: string; machines: number }[];
  readonly tasks: readonly { index: number; state: string; machine: string; attempt: number }[];
}

async function omega(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(CLI, ['--api', apiAddress, '--insecure', ...args], 60_000);
}

async function submit(name: string, yaml: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, yaml);
  const result = await omega('submit', '-f', file);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

async function job(id: string): Promise<JobJson> {
  const result = await omega('--json', 'job', id);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as JobJson;
}

beforeAll(async () => {
  if (!built) return;
  dir = await mkdtemp(join(tmpdir(), 'omega-batch-constraints-'));
  etcd = await startEtcd();
  const endpoints = etcd.endpoints.join(',');
  const cell = freshCellName();
  apiAddress = `127.0.0.1:${await freePort()}`;
  processes.push(
    new CellProcess({
      name: 'api',
      script: API_MAIN,
      args: ['--insecure', '--etcd', endpoints, '--cell', cell, '--listen', apiAddress, '--log-level', 'info'],
      ready: /omega-api listening on/,
      logDir: dir,
    }),
    new CellProcess({
      name: 'batch-0',
      script: BATCH_MAIN,
      args: ['--insecure', '--etcd', endpoints, '--cell', cell, '--name', 'batch-0', '--max-txn-ops', String(etcd.limits.maxTxnOps), '--seed', '7', '--log-level', 'info'],
      ready: /"msg":"scheduler started"/,
      logDir: dir,
    }),
  );
  for (const rack of ['rack-0', 'rack-1']) {
    processes.push(
      new CellProcess({
        name: `agent-${rack}`,
        script: AGENT_MAIN,
        args: ['--insecure', '--etcd', endpoints, '--cell', cell, '--hollow', '3', '--hollow-prefix', rack, '--attr', `rack=${rack}`, '--cpu', '4', '--memory', '8Gi', '--log-listen', 'none', '--log-level', 'info'],
        ready: /"msg":"agent started"/,
        logDir: dir,
      }),
    );
  }
  await Promise.all(processes.map((p) => p.start({ timeoutMs: 60_000 })));
}, 120_000);

afterAll(async () => {
  await stopCellProcesses();
  await etcd?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('batch constraints through the CLI on a real etcd', () => {
  it.skipIf(!built)('runs a batch job constrained to rack=rack-1 only on rack-1 machines', async () => {
    try {
      const id = await submit('on-rack-1', 'name: on-rack-1\nkind: batch\ninstances: 9\ncommand: [sleep, "1"]\ncpu: 500m\nmemory: 64Mi\nduration: 60s\nconstraints:\n  - {attribute: rack, equals: rack-1}\n');
      const seen = await eventually(
        'all nine tasks running',
        async () => {
          const j = await job(id);
          return j.tasks.length === 9 && j.tasks.every((t) => t.state === 'running') ? j : undefined;
        },
        60_000,
      );
      for (const t of seen.tasks) expect(t.machine, `task ${t.index}`).toMatch(/^rack-1-/);
      // Nine tasks of half a core on three 4-core machines of rack-1: more than one machine used.
      expect(new Set(seen.tasks.map((t) => t.machine)).size).toBeGreaterThanOrEqual(2);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${logTails(processes)}`, { cause: error });
    }
  }, 90_000);

  it.skipIf(!built)('keeps a batch job constrained to a rack no machine has pending, with the filter named in omega job', async () => {
    try {
      const id = await submit('nowhere', 'name: nowhere\nkind: batch\ninstances: 2\ncommand: [sleep, "1"]\ncpu: 100m\nmemory: 32Mi\nconstraints:\n  - {attribute: rack, equals: rack-9}\n');
      const seen = await eventually(
        'the job says why it is pending',
        async () => {
          const j = await job(id);
          return j.ruledOut.length > 0 ? j : undefined;
        },
        60_000,
      );
      expect(['pending', 'unschedulable']).toContain(seen.state);
      // The view lists every instance; none was ever placed.
      expect(seen.tasks.map((t) => [t.state, t.machine, t.attempt])).toEqual([
        ['pending', '', 0],
        ['pending', '', 0],
      ]);
      expect(seen.ruledOut).toEqual([{ filter: 'attribute rack equals rack-9', machines: 6 }]);
      const text = await omega('job', id);
      expect(text.stdout).toContain('attribute rack equals rack-9: 6 machine(s)');
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${logTails(processes)}`, { cause: error });
    }
  }, 90_000);
});
