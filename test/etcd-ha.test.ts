/**
 * High availability on a 3-member etcd: the API server, a batch and a service scheduler and a
 * hollow agent (20 machines), each its own process from `dist/` and each given all three
 * endpoints, while jobs are submitted through the API without pause. One follower is SIGKILLed
 * and restarted, then the leader. At the end, read from etcd through a fresh mirror: every
 * acknowledged job is there once and is placed, finished or says why not; no machine is over
 * capacity; no task has two live claims; jobs submitted after each kill were placed; no process
 * of the cell exited; both killed members rejoined (three members listed, each healthy).
 *
 * Every process is started and stopped here; all of them die with the test runner
 * (pdeathsig). Logs are in a temporary directory, printed (tails) on failure and kept with
 * OMEGA_TEST_KEEP=1.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, findEtcd, startEtcdCluster, type EtcdClusterMember, type RunningEtcdCluster } from '@omega/cell-state';
import { freshCellName } from '@omega/cell-state/testing';
import { logTails, stopCellProcesses } from './support/cell-processes.js';
import { judgeCell, type CellVerdict } from './support/cell-verdict.js';
import { JobSubmitter } from './support/job-submitter.js';
import { eventually, repoPath, runNode } from './support/processes.js';
import { defineTestCell, startTestCell, type TestCell } from './support/test-cell.js';
import { Workload } from './support/workload.js';

const skip = (await findEtcd()) === undefined;
if (skip) console.warn('SKIPPED: the etcd HA test needs etcd (see scripts/ensure-tools.mjs)');

let logDir: string;
let cluster: RunningEtcdCluster | undefined;
let kv: EtcdKv | undefined;
let cell: Cell;
let testCell: TestCell;
let submitter: JobSubmitter | undefined;
let failed = true;

beforeAll(async () => {
  if (skip) return;
  logDir = await mkdtemp(join(tmpdir(), 'omega-etcd-ha-'));
  cluster = await startEtcdCluster({ members: 3 });
  kv = new EtcdKv({ endpoints: cluster.endpoints, limits: cluster.limits });
  cell = new Cell(kv, freshCellName());
  testCell = await defineTestCell({
    endpoints: cluster.endpoints,
    cell: cell.keys.cell,
    logDir,
    batchSchedulers: 1,
    serviceSchedulers: 1,
    machines: 20,
    machineCpu: '4',
    machineMemory: '8Gi',
    maxTxnOps: cluster.limits.maxTxnOps,
  });
  await startTestCell(testCell);
  submitter = new JobSubmitter(testCell.apiAddress);
}, 90_000);

afterAll(async () => {
  submitter?.close();
  await stopCellProcesses();
  await kv?.close();
  await cluster?.stop();
  if (logDir === undefined) return;
  if (failed || process.env.OMEGA_TEST_KEEP !== undefined) console.warn(`etcd HA test: logs kept in ${logDir}`);
  else await rm(logDir, { recursive: true, force: true });
}, 60_000);

/** The member that leads, once the members agree on one. */
async function leader(): Promise<EtcdClusterMember> {
  return eventually('the members to agree on a leader', async () => (await (cluster as RunningEtcdCluster).leader()) ?? undefined, 30_000, 200);
}

/** Waits until the jobs first sent in `phase` are acknowledged and placed or ended. */
async function placedIn(workload: Workload, phase: string, what: string): Promise<void> {
  const requestIds = workload.submittedIn(phase);
  expect(requestIds.length, `jobs submitted ${what}`).toBeGreaterThan(0);
  let last = '';
  await eventually(
    `the jobs submitted ${what} to be placed`,
    async () => {
      const subs = requestIds.map((id) => (submitter as JobSubmitter).submissions.get(id));
      const acked = subs.filter((s) => s?.jobId !== undefined);
      if (acked.length < subs.length) {
        last = `${subs.length - acked.length} of ${subs.length} not acknowledged yet`;
        return false;
      }
      const verdict = await judgeCell(cell, []);
      const open = acked.filter((s) => {
        const answer = verdict.answers.get(s?.jobId as string)?.answer;
        return answer !== 'placed' && answer !== 'finished';
      });
      last = `${open.length} of ${acked.length} not placed: ${open.slice(0, 5).map((s) => `${s?.jobId} (${verdict.answers.get(s?.jobId as string)?.detail ?? 'not in the cell'})`).join('; ')}`;
      return open.length === 0;
    },
    45_000,
    500,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: ${last}`);
  });
}

/** Per phase: jobs sent, calls retried, and the slowest acknowledgement (figures, not assertions). */
function phaseFigures(workload: Workload): string {
  return [...workload.phases]
    .map(([phase, ids]) => {
      const subs = ids.map((id) => (submitter as JobSubmitter).submissions.get(id)).filter((s) => s !== undefined);
      const retried = subs.reduce((n, s) => n + s.calls - 1, 0);
      const slowest = Math.max(0, ...subs.map((s) => (s.ackedAtMs ?? s.sentAtMs) - s.sentAtMs));
      return `  ${phase}: ${subs.length} jobs, ${retried} calls retried, slowest acknowledgement ${slowest} ms`;
    })
    .join('\n');
}

function exitsOfTheCell(): string[] {
  return testCell.all.flatMap((p) => p.unexpectedExits.map((e) => `${e.name} (pid ${e.pid}) exited on its own (${e.code ?? e.signal}); its log:\n${e.tail}`));
}

describe('a cell on a 3-member etcd', () => {
  it.skipIf(skip)('loses no job, over-commits no machine and keeps scheduling while a follower and then the leader are killed and rejoin', async () => {
    const workload = new Workload(submitter as JobSubmitter, { prefix: 'ha', seed: 7, everyMs: 250, serviceEvery: 5 });
    const c = cluster as RunningEtcdCluster;
    try {
      workload.phase = 'all members up';
      workload.start();
      await new Promise((r) => setTimeout(r, 4_000));
      await placedIn(workload, 'all members up', 'with all members up');

      const first = await leader();
      const follower = c.members.find((m) => m !== first) as EtcdClusterMember;
      await follower.kill('SIGKILL');
      workload.phase = 'follower down';
      await new Promise((r) => setTimeout(r, 5_000));
      await placedIn(workload, 'follower down', 'while a follower was down');
      await follower.restart();
      workload.phase = 'follower back';
      await new Promise((r) => setTimeout(r, 3_000));

      const old = await leader();
      await old.kill('SIGKILL');
      workload.phase = 'leader down';
      const next = await leader();
      expect(next).not.toBe(old);
      await new Promise((r) => setTimeout(r, 5_000));
      await placedIn(workload, 'leader down', "after the leader's death");
      await old.restart();
      workload.phase = 'leader back';
      await new Promise((r) => setTimeout(r, 3_000));
      await workload.stop();
      expect(workload.failures.map((f) => f.message)).toEqual([]);
      await placedIn(workload, 'leader back', 'after the old leader rejoined');

      // Settle, then judge the whole cell.
      let verdict: CellVerdict | undefined;
      const acked = (submitter as JobSubmitter).acknowledged().map((s) => ({ requestId: s.requestId, jobId: s.jobId as string }));
      expect(acked.length).toBe((submitter as JobSubmitter).submissions.size);
      await eventually('the cell to be sound', async () => {
        verdict = await judgeCell(cell, acked);
        return verdict.problems.length === 0;
      }, 45_000, 1_000).catch(() => undefined);
      expect(verdict?.problems ?? ['the cell could not be read']).toEqual([]);
      expect(exitsOfTheCell()).toEqual([]);

      // Both killed members rejoined: three members listed, each answers healthy, one leader.
      const members = await c.memberList(2_000);
      expect(members.map((m) => m.name).sort()).toEqual(['omega-0', 'omega-1', 'omega-2']);
      for (const member of c.members) expect([member.name, await member.healthy(2_000)]).toEqual([member.name, true]);
      expect(await c.leader(2_000)).toBeDefined();
      console.log(
        `etcd HA: ${acked.length} jobs acknowledged (${JSON.stringify(verdict?.counts)}), retried calls ${JSON.stringify((submitter as JobSubmitter).retriedCodes())}, leader ${first.name} -> ${next.name}\n${phaseFigures(workload)}`,
      );
      failed = false;
    } catch (error) {
      await workload.stop().catch(() => undefined);
      throw new Error(`${(error as Error).message}\n${exitsOfTheCell().join('\n')}\nlogs in ${logDir}:\n${logTails(testCell.all)}`, { cause: error });
    }
  }, 150_000);
  it.skipIf(skip)('leaves no etcd member running when the process that started them is SIGKILLed', async () => {
    // A parent that starts a single member and a 3-member cluster, prints their pids, and dies
    // by SIGKILL: no exit handler runs, only the kernel's parent-death signal can end them.
    const script = join(logDir, 'orphan-parent.mjs');
    const entry = repoPath('packages/cell-state/dist/index.js');
    await writeFile(
      script,
      `import { startEtcd, startEtcdCluster } from ${JSON.stringify(entry)};\n` +
        'const one = await startEtcd();\nconst three = await startEtcdCluster({ members: 3 });\n' +
        'console.log(JSON.stringify({ pids: [one.pid, ...three.members.map((m) => m.pid)], dirs: [one.dataDir, ...three.members.map((m) => m.dataDir)] }));\n' +
        "process.kill(process.pid, 'SIGKILL');\n",
    );
    const result = await runNode(script, [], 60_000);
    expect(result.code).toBe(null);
    const { pids, dirs } = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as { pids: number[]; dirs: string[] };
    expect(pids).toHaveLength(4);
    // Gone, or a zombie waiting for a reaper (the process table's init may not reap).
    const running = (pid: number): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    try {
      await eventually('every member to be gone', () => pids.every((pid) => !running(pid)), 10_000, 100);
    } finally {
      // Their parent died before it could remove their data directories.
      for (const pid of pids) if (running(pid)) process.kill(pid, 'SIGKILL');
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    }
  });
});
