/**
 * Micro-benchmark: commits and claims per second through `commit()` against a local etcd, for
 * 1, 4 and 16 concurrent committers on 1,000 machines, in both conflict modes, beside the raw
 * etcd ceiling for the same transaction shapes (same nested transactions, same key and value
 * sizes, no scheduling logic) measured in the same run.
 *
 * Each committer loops: snapshot, claim `--claims` tasks on distinct random machines, commit,
 * wait for its mirror to include the commit. With `--mirror shared` (default) the committers
 * share one mirror, as concurrent workers of one scheduler process would; with `--mirror own`
 * each has its own (each scheduler process has one; here they all share this process's CPU,
 * so every event is decoded once per committer). Machines are large, so every conflict is a
 * sequence-number one.
 *
 *   node bench/dist/commit-throughput.js [--seconds 10] [--machines 1000] [--claims 8] [--committers 1,4,16] [--mirror shared|own]
 */
import { parseArgs } from 'node:util';
import os from 'node:os';
import {
  Cell,
  EtcdKv,
  PrivateCell,
  claimIdFactory,
  jobId,
  machineId,
  startEtcd,
  taskId,
  type CellMirror,
  type ConflictMode,
  type KvStore,
  type MachineId,
  type Op,
} from '@omega/cell-state';

interface Point {
  committers: number;
  mode: ConflictMode | 'raw etcd';
  commitsPerSecond: number;
  claimsPerSecond: number;
  conflictFraction: number;
  roundTripsPerCommit: number;
  bytesPerClaim: number;
}

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    machines: { type: 'string', default: '1000' },
    claims: { type: 'string', default: '8' },
    committers: { type: 'string', default: '1,4,16' },
    mirror: { type: 'string', default: 'shared' },
  },
});
const SECONDS = Number(values.seconds);
const MACHINES = Number(values.machines);
const CLAIMS = Number(values.claims);
const COMMITTERS = String(values.committers).split(',').map(Number);
const SHARED_MIRROR = values.mirror === 'shared';
if (values.mirror !== 'shared' && values.mirror !== 'own') throw new Error(`--mirror: must be shared or own, got ${values.mirror}`);
for (const [flag, v] of [['seconds', SECONDS], ['machines', MACHINES], ['claims', CLAIMS]] as const) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${flag}: must be a positive number`);
}

let cellSeq = 0;

async function newCell(kv: KvStore): Promise<{ cell: Cell; ids: MachineId[] }> {
  const cell = new Cell(kv, `bench-${process.pid}-${cellSeq++}`);
  const ids = Array.from({ length: MACHINES }, (_, i) => machineId(`m${String(i).padStart(5, '0')}`));
  for (let i = 0; i < ids.length; i += 50) {
    await Promise.all(ids.slice(i, i + 50).map((id) => cell.registerMachine({ id, capacity: { cpuMillis: 1_000_000, memoryBytes: 1024 ** 4 } })));
  }
  return { cell, ids };
}

function pick<T>(items: readonly T[], n: number): T[] {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(n, items.length)) chosen.add(Math.floor(Math.random() * items.length));
  return [...chosen].map((i) => items[i] as T);
}

async function measureCommits(kv: KvStore, committers: number, mode: ConflictMode): Promise<Point> {
  const { cell, ids } = await newCell(kv);
  const mirrors: CellMirror[] = [];
  for (let i = 0; i < (SHARED_MIRROR ? 1 : committers); i++) {
    const m = cell.mirror();
    await m.start();
    mirrors.push(m);
  }
  const before = { ...kv.counters };
  const deadline = Date.now() + SECONDS * 1000;
  let taskSeq = 0;
  const stats = await Promise.all(
    Array.from({ length: committers }, (_, who) => mirrors[SHARED_MIRROR ? 0 : who] as CellMirror).map(async (mirror, who) => {
      const committer = cell.committer({ latest: () => mirror.snapshot() });
      const nextClaim = claimIdFactory();
      const job = jobId(`bench-${who}`);
      while (Date.now() < deadline) {
        const pc = new PrivateCell(mirror.snapshot(), `c${who}`, nextClaim);
        for (const m of pick(ids, CLAIMS)) pc.claim(m, { taskId: taskId(job, taskSeq++), resources: { cpuMillis: 10, memoryBytes: 1024 * 1024 }, priority: 0 });
        const result = await committer.commit(pc.transaction(mode, 'incremental'));
        await mirror.waitForRevision(result.revision);
      }
      return committer.counters;
    }),
  );
  const elapsed = SECONDS;
  for (const m of mirrors) await m.stop();
  const sum = (f: (c: (typeof stats)[number]) => number) => stats.reduce((n, c) => n + f(c), 0);
  const ok = sum((c) => c.transactions - c.transactionsFailed);
  return {
    committers,
    mode,
    commitsPerSecond: sum((c) => c.transactions) / elapsed,
    claimsPerSecond: sum((c) => c.claimsCommitted) / elapsed,
    conflictFraction: ok === 0 ? 0 : sum((c) => c.transactionsFailed) / ok,
    roundTripsPerCommit: sum((c) => c.roundTrips) / Math.max(1, sum((c) => c.transactions)),
    bytesPerClaim: (kv.counters.bytesWritten - before.bytesWritten) / Math.max(1, sum((c) => c.claimsCommitted)),
  };
}

/**
 * The same request shape with no scheduling logic: one request of `CLAIMS` nested transactions,
 * each comparing two keys' mod_revision and writing a machine-sized and a task-sized value.
 */
async function measureRaw(kv: KvStore, committers: number, machineBytes: number, taskBytes: number): Promise<Point> {
  const prefix = `/bench-raw/${process.pid}-${cellSeq++}/`;
  const machineValue = new Uint8Array(machineBytes).fill(7);
  const taskValue = new Uint8Array(taskBytes).fill(9);
  const deadline = Date.now() + SECONDS * 1000;
  let commits = 0;
  let taskSeq = 0;
  await Promise.all(
    Array.from({ length: committers }, async () => {
      while (Date.now() < deadline) {
        const success: Op[] = pick(Array.from({ length: MACHINES }, (_, i) => i), CLAIMS).map((m) => {
          const machineKey = `${prefix}machines/m${m}`;
          const taskKey = `${prefix}tasks/t/${taskSeq++}`;
          return {
            type: 'txn',
            txn: {
              compare: [
                { key: machineKey, target: 'mod', op: '<', value: Number.MAX_SAFE_INTEGER },
                { key: taskKey, target: 'mod', op: '==', value: 0 },
              ],
              success: [
                { type: 'put', key: machineKey, value: machineValue },
                { type: 'put', key: taskKey, value: taskValue },
              ],
              failure: [{ type: 'range', key: machineKey }, { type: 'range', key: taskKey }],
            },
          };
        });
        await kv.txn({ compare: [], success, failure: [] });
        commits++;
      }
    }),
  );
  return {
    committers,
    mode: 'raw etcd',
    commitsPerSecond: commits / SECONDS,
    claimsPerSecond: (commits * CLAIMS) / SECONDS,
    conflictFraction: 0,
    roundTripsPerCommit: 1,
    bytesPerClaim: machineBytes + taskBytes,
  };
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  const points: Point[] = [];
  try {
    console.log(`commit throughput: ${MACHINES} machines, ${CLAIMS} claims per transaction on distinct machines, ${SECONDS} s per point, ${SHARED_MIRROR ? 'one shared mirror' : 'a mirror per committer'}`);
    console.log(`host: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, node ${process.version}`);
    for (const n of COMMITTERS) {
      const measured: Point[] = [];
      for (const mode of ['sequence-numbers', 'resource-fit'] as const) measured.push(await measureCommits(kv, n, mode));
      // The ceiling uses the value sizes the commits actually wrote (machine records grow with claims).
      const perClaim = measured.reduce((s, p) => s + p.bytesPerClaim, 0) / measured.length;
      const raw = await measureRaw(kv, n, Math.round(perClaim * 0.75), Math.round(perClaim * 0.25));
      points.push(...measured, raw);
      for (const p of [...measured, raw]) print(p, raw);
    }
  } finally {
    await kv.close();
    await etcd.stop();
  }
}

function print(p: Point, raw: Point): void {
  const share = raw.claimsPerSecond === 0 ? 0 : p.claimsPerSecond / raw.claimsPerSecond;
  console.log(
    [
      `committers=${String(p.committers).padStart(2)}`,
      `mode=${p.mode.padEnd(16)}`,
      `commits/s=${p.commitsPerSecond.toFixed(0).padStart(6)}`,
      `claims/s=${p.claimsPerSecond.toFixed(0).padStart(6)}`,
      `of-ceiling=${(share * 100).toFixed(0).padStart(3)}%`,
      `conflict-fraction=${p.conflictFraction.toFixed(4)}`,
      `round-trips/commit=${p.roundTripsPerCommit.toFixed(2)}`,
      `bytes/claim=${p.bytesPerClaim.toFixed(0)}`,
    ].join('  '),
  );
}

await main();
