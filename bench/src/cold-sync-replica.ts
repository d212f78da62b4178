#!/usr/bin/env node
/**
 * One cold replica for `omega bench sync` (a fresh process per repetition, so the JIT, the heap
 * and etcd3's connection start cold, as a scheduler joining a cell does):
 *
 *   node --expose-gc cold-sync-replica.js --etcd URL --cell NAME
 *
 * Connects, starts a {@link CellMirror} and waits for it to be complete; then takes a snapshot
 * and asks every machine's free resources (which reads every claim's task record: what a
 * scheduler's first placement pass does); then reads every task. Prints one JSON line: wall and
 * CPU milliseconds of both phases, what the replica holds, the heap (after a full GC) and RSS it
 * grew by once synced, and the heap once every task was read.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CellKeys, CellMirror, EtcdKv } from '@omega/cell-state';

/** What one repetition measured (the JSON line on stdout). */
export interface ReplicaSample {
  /** From creating the store client to the mirror holding the whole cell. */
  readonly syncMs: number;
  readonly syncCpuMs: number;
  /** The first snapshot and every machine's free resources, after the sync. */
  readonly firstPassMs: number;
  readonly firstPassCpuMs: number;
  readonly machines: number;
  readonly tasks: number;
  readonly jobs: number;
  /** Heap used after a full GC, minus before connecting: once synced, and after every task was read. */
  readonly heapDeltaBytes: number;
  readonly heapReadDeltaBytes: number;
  readonly rssDeltaBytes: number;
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('cold-sync-replica needs node --expose-gc');
  collect();
  collect();
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { etcd: { type: 'string' }, cell: { type: 'string' } }, strict: true });
  if (values.etcd === undefined || values.cell === undefined) throw new Error('usage: cold-sync-replica --etcd URL --cell NAME');
  const keys = new CellKeys(values.cell);
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const kv = new EtcdKv({ endpoints: [values.etcd], limits: { maxTxnOps: 10_000, maxRequestBytes: 8 * 1024 * 1024 } });
  const mirror = new CellMirror(kv, keys);
  await mirror.start();
  const syncMs = performance.now() - t0;
  const syncCpuMs = cpuMs(cpu0);
  gc();
  const synced = process.memoryUsage();

  const cpu1 = process.cpuUsage();
  const t1 = performance.now();
  const snapshot = mirror.snapshot();
  let free = 0;
  for (const m of snapshot.machines()) free += snapshot.free(m.id).cpuMillis;
  const firstPassMs = performance.now() - t1;
  const firstPassCpuMs = cpuMs(cpu1);

  let tasks = 0;
  for (const job of snapshot.jobs()) for (const _ of snapshot.tasksOf(job.id)) tasks++;
  gc();
  const read = process.memoryUsage();
  const sample: ReplicaSample = {
    syncMs,
    syncCpuMs,
    firstPassMs,
    firstPassCpuMs,
    machines: snapshot.machineCount,
    tasks,
    jobs: snapshot.jobCount,
    heapDeltaBytes: synced.heapUsed - heap0,
    heapReadDeltaBytes: read.heapUsed - heap0,
    rssDeltaBytes: synced.rss - rss0,
  };
  process.stdout.write(`${JSON.stringify({ ...sample, free })}\n`);
  await mirror.stop();
  await kv.close();
}

await main();
