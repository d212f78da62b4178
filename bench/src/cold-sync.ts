/**
 * `omega bench sync`: how long a scheduler joining a big cell takes to hold a complete replica,
 * and what the replica costs in memory.
 *
 * ```
 *   etcd ◄── fill: M machine records (claims included), T live task records, their jobs,
 *   │            statuses and alive records, written straight in big transactions
 *   └──► node --expose-gc cold-sync-replica.js  x R (a fresh process each: cold JIT and heap)
 *            EtcdKv + CellMirror.start() ── synced ── snapshot + free() of every machine
 * ```
 *
 * Prints each repetition and the medians: sync wall time and CPU, the first placement pass
 * (snapshot plus every machine's free resources, which reads every claim's task), heap and RSS
 * growth per 100,000 tasks once synced (and the heap once every task was read); and a check line: sync ≤ 2 s at the default 10,000 machines and
 * 100,000 tasks.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CellKeys,
  EtcdKv,
  FlagError,
  claimId,
  jobId,
  machineId,
  startEtcd,
  taskId,
  type Claim,
  type JobId,
  type MachineId,
  type Op,
} from '@omega/cell-state';
import { encodeAlive, encodeJob, encodeJobStatus, encodeMachine, encodeTask, jobSpec } from '@omega/cell-state/testing';
import type { ReplicaSample } from './cold-sync-replica.js';
import type { Print } from './sim-command.js';

export interface ColdSyncOptions {
  /** Machine records (default 10,000; quick 1,000). */
  readonly machines: number;
  /** Live task records, in jobs of 1,000 (default 100,000; quick 10,000). */
  readonly tasks: number;
  /** Fresh replica processes, one after the other (default 5; quick 3). */
  readonly repeats: number;
}

/** The target: a complete replica of 10,000 machines and 100,000 live tasks in ≤ 2 s. */
export const COLD_SYNC_TARGET = { machines: 10_000, tasks: 100_000, syncMs: 2000 } as const;

const REPLICA_MAIN = fileURLToPath(new URL('./cold-sync-replica.js', import.meta.url));
const TASKS_PER_JOB = 1000;
/** Puts per fill transaction: far under etcd's 8 MiB request limit the bench starts it with. */
const PUTS_PER_TXN = 2000;
/** The cell the bench fills. */
export const COLD_CELL = 'cold';

export const COLD_SYNC_USAGE = `usage: omega bench sync [--quick] [--machines N] [--tasks N] [--repeats N]

  A scheduler joining a cell: fills an etcd with N machines and N live tasks, then times fresh
  replica processes from connecting to holding the whole cell (default 10,000 machines,
  100,000 tasks, 5 repetitions; --quick: 1,000 / 10,000 / 3).`;

/** Parses `argv` after `sync`; throws {@link FlagError} naming the bad flag. */
export function parseColdSyncArgs(argv: readonly string[]): ColdSyncOptions | 'help' {
  let values: { quick?: boolean; machines?: string; tasks?: string; repeats?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { quick: { type: 'boolean' }, machines: { type: 'string' }, tasks: { type: 'string' }, repeats: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new FlagError(/'([^']+)'/.exec(message)?.[1] ?? 'arguments', message.split('. ')[0] ?? message);
  }
  if (values.help === true) return 'help';
  const count = (flag: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isSafeInteger(v) || v <= 0) throw new FlagError(flag, `must be a positive integer, got ${JSON.stringify(raw)}`);
    return v;
  };
  const quick = values.quick === true;
  const options = {
    machines: count('--machines', values.machines, quick ? 1_000 : COLD_SYNC_TARGET.machines),
    tasks: count('--tasks', values.tasks, quick ? 10_000 : COLD_SYNC_TARGET.tasks),
    repeats: count('--repeats', values.repeats, quick ? 3 : 5),
  };
  if (options.repeats > 50) throw new FlagError('--repeats', `at most 50, got ${options.repeats}`);
  if (options.machines > 100_000) throw new FlagError('--machines', `at most 100,000, got ${options.machines}`);
  if (options.tasks > 1_000_000) throw new FlagError('--tasks', `at most 1,000,000, got ${options.tasks}`);
  return options;
}

/** Runs the benchmark; returns the exit code (1 when the target applies and is missed). */
export async function runColdSync(options: ColdSyncOptions, print: Print): Promise<number> {
  const etcd = await startEtcd({ maxTxnOps: 10_000, maxRequestBytes: 8 * 1024 * 1024 });
  const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  try {
    const fillStart = performance.now();
    const bytes = await fillColdCell(kv, options);
    print(
      `omega bench sync: ${options.machines.toLocaleString('en')} machines, ${options.tasks.toLocaleString('en')} live tasks, ` +
        `${(bytes / 1024 ** 2).toFixed(1)} MiB of records written in ${((performance.now() - fillStart) / 1000).toFixed(1)} s`,
    );
    const samples: ReplicaSample[] = [];
    for (let i = 0; i < options.repeats; i++) {
      const s = await runReplica(etcd.clientUrl);
      if (s.machines !== options.machines || s.tasks !== options.tasks) throw new Error(`replica holds ${s.machines} machines and ${s.tasks} tasks, expected ${options.machines} and ${options.tasks}`);
      samples.push(s);
      print(`  run ${i + 1}: ${describe(s, options.tasks)}`);
    }
    const median = (f: (s: ReplicaSample) => number): number => {
      const sorted = samples.map(f).sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)] as number;
    };
    const m: ReplicaSample = {
      syncMs: median((s) => s.syncMs),
      syncCpuMs: median((s) => s.syncCpuMs),
      firstPassMs: median((s) => s.firstPassMs),
      firstPassCpuMs: median((s) => s.firstPassCpuMs),
      machines: options.machines,
      tasks: options.tasks,
      jobs: median((s) => s.jobs),
      heapDeltaBytes: median((s) => s.heapDeltaBytes),
      heapReadDeltaBytes: median((s) => s.heapReadDeltaBytes),
      rssDeltaBytes: median((s) => s.rssDeltaBytes),
    };
    print(`  median of ${samples.length}: ${describe(m, options.tasks)}`);
    const atTarget = options.machines >= COLD_SYNC_TARGET.machines && options.tasks >= COLD_SYNC_TARGET.tasks;
    if (!atTarget) {
      print(`(the ≤ ${COLD_SYNC_TARGET.syncMs / 1000} s check applies at ${COLD_SYNC_TARGET.machines.toLocaleString('en')} machines and ${COLD_SYNC_TARGET.tasks.toLocaleString('en')} tasks)`);
      return 0;
    }
    const pass = m.syncMs <= COLD_SYNC_TARGET.syncMs;
    print(`${pass ? 'PASS' : 'FAIL'} cold sync ≤ ${COLD_SYNC_TARGET.syncMs / 1000} s: median ${(m.syncMs / 1000).toFixed(2)} s`);
    return pass ? 0 : 1;
  } finally {
    await kv.close();
    await etcd.stop();
  }
}

function describe(s: ReplicaSample, tasks: number): string {
  const per100k = (bytes: number): string => `${((bytes / 1024 ** 2) * (100_000 / tasks)).toFixed(0)} MiB`;
  return (
    `sync ${s.syncMs.toFixed(0)} ms (CPU ${s.syncCpuMs.toFixed(0)} ms), first pass ${s.firstPassMs.toFixed(0)} ms (CPU ${s.firstPassCpuMs.toFixed(0)} ms), ` +
    `heap +${per100k(s.heapDeltaBytes)} / RSS +${per100k(s.rssDeltaBytes)} per 100,000 tasks (heap +${per100k(s.heapReadDeltaBytes)} once every task was read)`
  );
}

function runReplica(etcdUrl: string): Promise<ReplicaSample> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', REPLICA_MAIN, '--etcd', etcdUrl, '--cell', COLD_CELL], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`replica exited with ${String(code)}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(line) as ReplicaSample);
    });
  });
}

/**
 * Writes the cell as a busy one looks: machines with attributes and their claims, running
 * 1,000-task batch jobs packed onto consecutive machines, each job's record and status, one
 * alive record per machine. Returns the bytes of values written.
 */
export async function fillColdCell(kv: EtcdKv, options: Pick<ColdSyncOptions, 'machines' | 'tasks'>): Promise<number> {
  const keys = new CellKeys(COLD_CELL);
  const now = Date.now();
  const jobs = Math.ceil(options.tasks / TASKS_PER_JOB);
  const spec = jobSpec('cold').batch().instances(TASKS_PER_JOB).cpu(100).memory('64Mi').duration(600_000).command('/bin/sleep', '600').build();
  const resources = spec.task.resources;
  let ops: Op[] = [];
  let bytes = 0;
  const put = async (key: string, value: Uint8Array): Promise<void> => {
    ops.push({ type: 'put', key, value });
    bytes += value.length;
    if (ops.length >= PUTS_PER_TXN) await flush();
  };
  const flush = async (): Promise<void> => {
    if (ops.length === 0) return;
    const success = ops;
    ops = [];
    await kv.txn({ compare: [], success, failure: [] });
  };
  const machineOf = (i: number): MachineId => machineId(`m-${String(i % options.machines).padStart(6, '0')}`);
  const claims = new Map<MachineId, Claim[]>();
  for (let j = 0; j < jobs; j++) {
    const job: JobId = jobId(`batch-${String(j).padStart(5, '0')}`);
    const instances = Math.min(TASKS_PER_JOB, options.tasks - j * TASKS_PER_JOB);
    await put(keys.job(job), encodeJob({ id: job, spec: { ...spec, name: job, instances }, desired: 'running', submittedAtMs: now - 60_000, requestId: `req-${j}`, version: 1, taskVersion: 1 }));
    await put(
      keys.status(job),
      encodeJobStatus({ jobId: job, state: 'scheduled', reason: '', ruledOut: [], attempts: 1, scheduler: 'batch-1', updatedAtMs: now - 50_000, firstAttemptAtMs: now - 55_000, fullyPlacedAtMs: now - 50_000 }),
    );
    for (let index = 0; index < instances; index++) {
      const n = j * TASKS_PER_JOB + index;
      const id = taskId(job, index);
      const machine = machineOf(n);
      const claim: Claim = { id: claimId(`c0ffee${n.toString(36)}`), taskId: id, machineId: machine, attempt: 1, resources, priority: 0, scheduler: 'batch-1' };
      const onMachine = claims.get(machine);
      if (onMachine === undefined) claims.set(machine, [claim]);
      else onMachine.push(claim);
      await put(
        keys.task(id),
        encodeTask({
          jobId: job,
          index,
          attempt: 1,
          claimId: claim.id,
          machineId: machine,
          scheduler: 'batch-1',
          state: 'running',
          reason: '',
          message: '',
          signal: '',
          pid: 10_000 + (n % 50_000),
          placedAtMs: now - 50_000,
          startedAtMs: now - 49_000,
          finishedAtMs: 0,
          cpuSeconds: 0,
          peakMemoryBytes: 0,
          resources,
          priority: 0,
          restarts: 0,
          notBeforeMs: 0,
          version: 1,
        }),
      );
    }
  }
  for (let i = 0; i < options.machines; i++) {
    const id = machineOf(i);
    await put(
      keys.machine(id),
      encodeMachine({
        id,
        capacity: { cpuMillis: 32_000, memoryBytes: 128 * 1024 ** 3 },
        attributes: { rack: `r${Math.floor(i / 40)}`, zone: `z${i % 4}`, arch: 'amd64', os: 'linux' },
        schedulable: true,
        unschedulableReason: '',
        enforcementDisabled: false,
        hollow: true,
        claims: claims.get(id) ?? [],
      }),
    );
    await put(keys.alive(id), encodeAlive({ agent: `agent-${Math.floor(i / 1000)}`, startedAtMs: now - 3_600_000, logAddress: `127.0.0.1:${20_000 + (i % 1000)}` }));
  }
  await flush();
  return bytes;
}
