/**
 * The benchmark's result record and how it is written: `DIR/result.json` (everything, machine
 * readable), `DIR/result.md` (tables for people) and `DIR/<experiment>.svg` (the sweep drawn).
 *
 * The config is hashed (sha256 of its canonical JSON: keys sorted) so two results can be
 * compared knowing whether they ran the same thing; the seed is part of the config.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { HostSpeed } from './host-speed.js';

/** One built-in check: printed as a PASS/FAIL line and kept in result.json. */
export interface CheckResult {
  readonly name: string;
  readonly pass: boolean;
  /** What was measured against what, with the tolerance. */
  readonly detail: string;
}

/** A figure or statement of the paper (or a peer) to show beside ours. */
export interface PaperReference {
  readonly what: string;
  readonly paper: string;
  readonly ours: string;
}

export interface HostInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly platform: string;
  readonly release: string;
  readonly node: string;
  /** Live runs only. */
  readonly etcd?: string;
  /** Timed at the start of the run (host-speed.ts); absent in results written before it was. */
  readonly speed?: HostSpeed;
}

export interface BenchResult<Point = unknown> {
  readonly schema: 'omega-bench/1';
  readonly mode: 'sim' | 'live';
  readonly experiment: string;
  readonly title: string;
  readonly quick: boolean;
  readonly seed: number;
  readonly config: unknown;
  readonly configSha256: string;
  readonly host: HostInfo;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly wallSeconds: number;
  /** Every arm at every sweep point, with every metric. */
  readonly points: readonly Point[];
  readonly checks: readonly CheckResult[];
  readonly paper: readonly PaperReference[];
  /** Free-form notes: what limited a run, what differs from the paper. */
  readonly notes: readonly string[];
}

export function hostInfo(etcd?: string, speed?: HostSpeed): HostInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    platform: os.platform(),
    release: os.release(),
    node: process.version,
    ...(etcd === undefined ? {} : { etcd }),
    ...(speed === undefined ? {} : { speed }),
  };
}

/** JSON with object keys sorted at every level: the same config always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

export function configHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/** The PASS/FAIL line printed for a check. */
export function checkLine(check: CheckResult): string {
  return `${check.pass ? 'PASS' : 'FAIL'} ${check.name}: ${check.detail}`;
}

/** Writes result.json, result.md and the charts into `dir` (created). Returns the paths written. */
export async function writeResult(dir: string, result: BenchResult, markdown: string, charts: ReadonlyMap<string, string>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, text: string): Promise<void> => {
    const path = join(dir, name);
    await writeFile(path, text);
    written.push(path);
  };
  await put('result.json', `${JSON.stringify(result, null, 2)}\n`);
  await put('result.md', markdown);
  for (const [name, svg] of charts) await put(name, svg);
  return written;
}
