/**
 * How fast this host is right now, on two fixed pieces of work, so that runs on different days
 * (or on a host whose neighbours take its CPU) can be compared: a rate measured on a slower day
 * is not a regression. On this project's 2-core VM the same build has measured the agent
 * experiment's `jobs` phase at 96-137 tasks/s on some days and 190-220 on others; the two
 * figures below say which kind of day a run had.
 *
 * - `jsMs`: JSON-encoding and decoding 2,000 task-like records 20 times, the best of 5 (the
 *   kind of work the cell's processes do per change: small objects, strings, the allocator).
 * - `spawnMs`: one spawn of `/bin/true` from Node, waited for, the mean of 30 (fork, exec, the
 *   dynamic loader, exit: the kernel's share of starting a task).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface HostSpeed {
  readonly jsMs: number;
  /** Absent where there is no `/bin/true`. */
  readonly spawnMs?: number;
}

function jsWork(): number {
  const records = Array.from({ length: 2000 }, (_, i) => ({
    id: `job-${i % 97}/${i}`,
    state: i % 3 === 0 ? 'running' : 'pending',
    machineId: `m-${i % 2000}`,
    resources: { cpuMillis: 100 + (i % 7), memoryBytes: 64 * 1024 * 1024 },
    placedAtMs: 1_700_000_000_000 + i,
  }));
  let size = 0;
  for (let round = 0; round < 20; round++) {
    const decoded = JSON.parse(JSON.stringify(records)) as typeof records;
    size += decoded.length;
  }
  return size;
}

function bestMs(runs: number, work: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    work();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return best;
}

export function measureHostSpeed(): HostSpeed {
  const jsMs = bestMs(5, jsWork);
  if (!existsSync('/bin/true')) return { jsMs };
  const spawns = 30;
  const start = process.hrtime.bigint();
  for (let i = 0; i < spawns; i++) spawnSync('/bin/true', { stdio: 'ignore' });
  return { jsMs, spawnMs: Number(process.hrtime.bigint() - start) / 1e6 / spawns };
}

/** For a run's first lines. */
export function describeHostSpeed(speed: HostSpeed): string {
  return `host speed: a fixed JS workload ${speed.jsMs.toFixed(1)} ms${speed.spawnMs === undefined ? '' : `, a spawn of /bin/true ${speed.spawnMs.toFixed(2)} ms`} (smaller is faster)`;
}

/** For a result.md's first paragraph: a sentence, with its leading space, or nothing. */
export function hostSpeedSentence(host: { readonly speed?: HostSpeed }): string {
  return host.speed === undefined ? '' : ` At the start, ${describeHostSpeed(host.speed)}.`;
}
