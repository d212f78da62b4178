/**
 * Chaos, bounded and seeded: a cell of separate processes from `dist/` (one etcd member, the API
 * server, two batch schedulers, one service scheduler, one hollow agent serving 20 machines)
 * runs a steady stream of batch and service jobs submitted through the API, while a fixed number
 * of faults hit it, overlapping at times: at seeded moments one of {a scheduler, the agent, the API
 * server, etcd} is either SIGKILLed and restarted after a seeded delay (the test plays the
 * supervisor) or SIGSTOPped for a seeded 1-8 s and then SIGCONTed. Submissions that fail with
 * UNAVAILABLE or DEADLINE_EXCEEDED are retried with the same request id.
 *
 * After the faults and a settle period, read from etcd through a fresh mirror: every
 * acknowledged job is there once and is placed, finished or says why not; no task has two live
 * claims; no machine is over capacity; and no process of the cell exited other than those the
 * test killed (each restarted one came up again; each frozen one is the same process, alive).
 *
 * The seed is `CHAOS_SEED` or random, printed as `chaos seed: N` at the start and in every
 * failure; the fault schedule (targets, kinds, moments, durations) and the job shapes derive
 * from it alone, so `CHAOS_SEED=N npx vitest run test/chaos.test.ts` replays a failure's
 * schedule. Each process logs to a file in a temporary directory (kept and named on failure,
 * tails printed). Every process dies with the test runner (pdeathsig) and is stopped here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, EtcdKv, findEtcd, startEtcdCluster, type RunningEtcdCluster } from '@omega/cell-state';
import { freshCellName } from '@omega/cell-state/testing';
import { logTails, stopCellProcesses, type CellProcess } from './support/cell-processes.js';
import { judgeCell, type CellVerdict } from './support/cell-verdict.js';
import { JobSubmitter } from './support/job-submitter.js';
import { eventually } from './support/processes.js';
import { defineTestCell, startTestCell, type TestCell } from './support/test-cell.js';
import { Workload, seededRandom } from './support/workload.js';

const FAULTS = 12;
const SEED = process.env.CHAOS_SEED !== undefined && process.env.CHAOS_SEED !== '' ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(SEED) || SEED < 0) throw new Error(`CHAOS_SEED must be a whole number >= 0, got ${JSON.stringify(process.env.CHAOS_SEED)}`);
console.log(`chaos seed: ${SEED}`);

const TARGETS = ['batch-0', 'batch-1', 'service-0', 'agent', 'api', 'etcd'] as const;
type Target = (typeof TARGETS)[number];

/**
 * One fault: at `atMs` after the workload starts, kill `target` (restarted `downMs` later) or
 * freeze it (for `downMs`). Faults on different targets may overlap (a scheduler restarted while
 * etcd is frozen must come up anyway); never two on one target at once.
 */
interface Fault {
  readonly atMs: number;
  readonly target: Target;
  readonly kind: 'kill' | 'stop';
  readonly downMs: number;
}

/** The schedule, from the seed alone. */
function faultSchedule(seed: number): Fault[] {
  const random = seededRandom(seed);
  const busyUntil = new Map<Target, number>();
  const faults: Fault[] = [];
  let atMs = 0;
  while (faults.length < FAULTS) {
    atMs += 1_500 + Math.floor(random() * 3_500);
    const free = TARGETS.filter((t) => (busyUntil.get(t) ?? 0) <= atMs);
    const target = free[Math.floor(random() * free.length)];
    const kind = random() < 0.5 ? 'kill' : 'stop';
    const downMs = kind === 'stop' ? 1_000 + Math.floor(random() * 7_000) : 200 + Math.floor(random() * 2_800);
    if (target === undefined) continue;
    // A restarted process needs a moment to start before it is hit again.
    busyUntil.set(target, atMs + downMs + 2_000);
    faults.push({ atMs, target, kind, downMs });
  }
  return faults;
}

const schedule = faultSchedule(SEED);
const describeSchedule = (): string => schedule.map((f, i) => `#${i + 1} at ${f.atMs}ms ${f.kind} ${f.target} ${f.downMs}ms`).join(', ');

const skip = (await findEtcd()) === undefined;
if (skip) console.warn('SKIPPED: the chaos test needs etcd (see scripts/ensure-tools.mjs)');

let logDir: string;
let etcd: RunningEtcdCluster | undefined;
let kv: EtcdKv | undefined;
let cell: Cell;
let testCell: TestCell;
let submitter: JobSubmitter | undefined;
let failed = true;
const journal: string[] = [];

function note(line: string): void {
  journal.push(`${new Date().toISOString()} ${line}`);
}

beforeAll(async () => {
  if (skip) return;
  logDir = await mkdtemp(join(tmpdir(), 'omega-chaos-'));
  etcd = await startEtcdCluster({ members: 1 });
  kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  cell = new Cell(kv, freshCellName());
  testCell = await defineTestCell({
    endpoints: etcd.endpoints,
    cell: cell.keys.cell,
    logDir,
    batchSchedulers: 2,
    serviceSchedulers: 1,
    machines: 20,
    machineCpu: '4',
    machineMemory: '8Gi',
    maxTxnOps: etcd.limits.maxTxnOps,
    // Short enough that a frozen scheduler or agent outlives its lease now and then.
    leaseTtlSeconds: 3,
    heartbeatTtlSeconds: 5,
  });
  await startTestCell(testCell);
  submitter = new JobSubmitter(testCell.apiAddress);
}, 90_000);

afterAll(async () => {
  submitter?.close();
  await stopCellProcesses();
  await kv?.close();
  await etcd?.stop();
  if (logDir === undefined) return;
  if (failed || process.env.OMEGA_TEST_KEEP !== undefined) console.warn(`chaos seed: ${SEED}: logs kept in ${logDir}`);
  else await rm(logDir, { recursive: true, force: true });
}, 60_000);

function processOf(target: Exclude<Target, 'etcd'>): CellProcess {
  return testCell.all.find((p) => p.name === target) as CellProcess;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Applies one fault and undoes it (restart or SIGCONT). */
async function apply(fault: Fault): Promise<void> {
  if (fault.target === 'etcd') {
    const member = (etcd as RunningEtcdCluster).members[0];
    if (member === undefined) throw new Error('no etcd member');
    if (fault.kind === 'kill') {
      note(`SIGKILL etcd pid ${member.pid}`);
      await member.kill('SIGKILL');
      await sleep(fault.downMs);
      await member.restart();
      note(`etcd restarted, pid ${member.pid}`);
    } else {
      note(`SIGSTOP etcd pid ${member.pid} for ${fault.downMs} ms`);
      await member.kill('SIGSTOP');
      await sleep(fault.downMs);
      await member.kill('SIGCONT');
      note(`SIGCONT etcd pid ${member.pid}`);
    }
    return;
  }
  const target = processOf(fault.target);
  if (fault.kind === 'kill') {
    note(`SIGKILL ${target.name} pid ${target.pid}`);
    await target.kill();
    await sleep(fault.downMs);
    // As a supervisor would: start it again, without waiting for it to be ready.
    await target.start({ waitReady: false });
    note(`${target.name} restarted, pid ${target.pid}`);
  } else {
    const pid = target.pid;
    note(`SIGSTOP ${target.name} pid ${pid} for ${fault.downMs} ms`);
    target.signal('SIGSTOP');
    await sleep(fault.downMs);
    target.signal('SIGCONT');
    note(`SIGCONT ${target.name} pid ${pid}`);
    if (target.pid !== pid) throw new Error(`${target.name} pid ${pid} was frozen and is gone (now ${target.pid ?? 'none'})`);
  }
}

/** What is wrong with the processes: exits the test did not cause, restarts that never came up. */
function processProblems(): string[] {
  const out: string[] = [];
  for (const p of testCell.all) {
    for (const e of p.unexpectedExits) out.push(`${e.name} (pid ${e.pid}) exited on its own (${e.code ?? e.signal}); its log:\n${e.tail}`);
    if (!p.isRunning()) out.push(`${p.name} is not running`);
    else if (p.ready === undefined) out.push(`${p.name} (pid ${p.pid}, start #${p.starts}) never said it was up; its log:\n${p.tail(20)}`);
  }
  const member = etcd?.members[0];
  if (member !== undefined && !member.isRunning()) out.push('etcd is not running');
  return out;
}

describe('a cell under seeded faults', () => {
  it.skipIf(skip)(`survives ${FAULTS} seeded kills and freezes of its schedulers, agent, API server and etcd with every job answered and no claim doubled or over capacity`, async () => {
    const workload = new Workload(submitter as JobSubmitter, { prefix: `chaos-${SEED}`, seed: SEED, everyMs: 300, serviceEvery: 6, giveUpAfterMs: 90_000 });
    let verdict: CellVerdict | undefined;
    try {
      note(`schedule: ${describeSchedule()}`);
      workload.phase = 'faults';
      workload.start();
      const started = Date.now();
      await Promise.all(
        schedule.map(async (fault) => {
          await sleep(fault.atMs - (Date.now() - started));
          await apply(fault);
        }),
      );
      workload.phase = 'settle';
      await sleep(2_000);
      await workload.stop();
      note('workload stopped');
      const subs = submitter as JobSubmitter;
      expect(workload.failures.map((f) => f.message)).toEqual([]);
      const acked = subs.acknowledged().map((s) => ({ requestId: s.requestId, jobId: s.jobId as string }));
      expect(acked.length).toBe(subs.submissions.size);

      await eventually('the cell to be sound', async () => {
        verdict = await judgeCell(cell, acked);
        return verdict.problems.length === 0 && processProblems().length === 0;
      }, 90_000, 1_000).catch(() => undefined);
      expect(processProblems()).toEqual([]);
      expect(verdict?.problems ?? ['the cell could not be read']).toEqual([]);
      // Figures, not assertions: how long the slowest submission took to be acknowledged.
      const slowest = [...subs.submissions.values()].reduce((a, s) => ((s.ackedAtMs ?? 0) - s.sentAtMs > (a.ackedAtMs ?? 0) - a.sentAtMs ? s : a));
      console.log(
        `chaos seed: ${SEED}: ${acked.length} jobs acknowledged (${JSON.stringify(verdict?.counts)}), retried calls ${JSON.stringify(subs.retriedCodes())}, slowest acknowledgement ${slowest.requestId} after ${(slowest.ackedAtMs ?? 0) - slowest.sentAtMs} ms and ${slowest.calls} calls; faults: ${describeSchedule()}`,
      );
      failed = false;
    } catch (error) {
      await workload.stop().catch(() => undefined);
      const problems = verdict === undefined ? '' : `\ncell problems (${verdict.problems.length}):\n${verdict.problems.slice(0, 30).join('\n')}`;
      throw new Error(
        `chaos seed: ${SEED}: ${(error as Error).message}${problems}\nprocess problems:\n${processProblems().join('\n')}\nfaults: ${describeSchedule()}\njournal:\n${journal.join('\n')}\nlogs in ${logDir}:\n${logTails(testCell.all)}`,
        { cause: error },
      );
    }
  }, 300_000);
});
