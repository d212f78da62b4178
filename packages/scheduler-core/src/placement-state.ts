/**
 * One placement call's feasibility state, shared by both policies: the job's compiled filters
 * applied to the offered machines, and the per-candidate numbers the dynamic filters read, kept
 * current as the policy claims.
 *
 *   input.machines ──static filters (here, once)──▶ candidates (position = index in this list)
 *   per task:   feasible(position)  ── dynamic filters in order (max-per-machine …, cpu, memory)
 *   per claim:  record(position)    ── re-read that machine's free resources from the PrivateCell,
 *                                      one more instance there, one more in its spread groups
 *
 * Free resources are read from the PrivateCell lazily, the first time a filter asks about a
 * candidate, so a policy that looks at a few machines per task (batch packing) pays for those
 * only; a policy that scans every candidate (service) reads each once per call. Either way the
 * numbers are exactly the cell's, and the comparison is cell-state's `resourceShortage`, so the
 * filters, `PrivateCell.claim` and the commit agree on fit.
 *
 * Not safe to share between calls (it is the call's state) or to use after the PrivateCell got
 * claims the policy did not `record`.
 */
import { acceptsPlacements, type CellSnapshot, type Machine, type PrivateCell } from '@omega/cell-state';
import { compileJobFilters, type JobFilters } from './constraint-filters.js';
import { SpreadGroups } from './filter-spread.js';
import { firstFailing, PASS, schedulableFilter, type DynamicFilter, type PlacementView, type StaticFilter } from './filter.js';
import { liveInstances } from './job-instances.js';
import type { PlaceInput } from './policy.js';

/** The last machines list every machine of which accepted placements (records are immutable). */
let lastAccepting: readonly Machine[] = [];

/** Whether every machine of `machines` accepts placements; reads only the records not in {@link lastAccepting} at the same place. */
function allAccept(machines: readonly Machine[]): boolean {
  if (machines === lastAccepting) return true;
  const known = machines.length === lastAccepting.length ? lastAccepting : undefined;
  for (let i = 0; i < machines.length; i++) {
    const m = machines[i] as Machine;
    if (known !== undefined && known[i] === m) continue;
    if (!acceptsPlacements(m)) return false;
  }
  lastAccepting = machines;
  return true;
}

export interface PlacementStateOptions {
  /** Count the job's live instances per candidate even when no filter needs them (anti-affinity scoring). */
  readonly countInstances?: boolean;
}

export class PlacementState implements PlacementView {
  readonly filters: JobFilters;
  /** The offered machines that passed every static filter, in input order (the input array itself when all did). */
  readonly candidates: readonly Machine[];
  /** The job's spread constraints' groups over the candidates, in constraint order. */
  readonly spreads: readonly SpreadGroups[];
  readonly snapshot: CellSnapshot;
  private readonly cell: PrivateCell;
  private readonly staticRuledOut = new Map<string, number>();
  private readonly cpu: Float64Array;
  private readonly memory: Float64Array;
  /** 1 when `cpu`/`memory` hold the cell's current numbers for the candidate. */
  private readonly loaded: Uint8Array;
  private readonly instanceCounts: Int32Array;
  private readonly dynamic: readonly DynamicFilter[];
  /** Where each dynamic filter's reasons start in `counts`. */
  private readonly slot: Int32Array;
  private readonly reasonNames: string[] = [];
  /** Candidates ruled out per dynamic reason since the last `resetCounts`. */
  private readonly counts: Int32Array;

  constructor(input: PlaceInput, options: PlacementStateOptions = {}) {
    this.filters = compileJobFilters(input.job.spec);
    this.snapshot = input.snapshot;
    this.cell = input.cell;
    this.candidates = this.staticPass(input.machines);
    const n = this.candidates.length;
    this.cpu = new Float64Array(n);
    this.memory = new Float64Array(n);
    this.loaded = new Uint8Array(n);

    const counting = this.filters.countsInstances || options.countInstances === true;
    this.instanceCounts = new Int32Array(counting ? n : 0);
    const live = counting ? liveInstances(input.snapshot, input.cell, input.job.id) : undefined;
    if (live !== undefined && live.size > 0) {
      for (let i = 0; i < n; i++) this.instanceCounts[i] = live.get((this.candidates[i] as Machine).id) ?? 0;
    }
    this.spreads = live === undefined ? [] : this.filters.spreads.map((rule) => new SpreadGroups(rule, this.candidates, input.snapshot, live));

    this.dynamic = this.filters.dynamicFilters;
    this.slot = new Int32Array(this.dynamic.length);
    for (let j = 0; j < this.dynamic.length; j++) {
      this.slot[j] = this.reasonNames.length;
      this.reasonNames.push(...(this.dynamic[j] as DynamicFilter).reasons);
    }
    this.counts = new Int32Array(this.reasonNames.length);
  }

  /** The machines passing every static filter; counts the others under the first that failed. Allocates only when one fails. */
  private staticPass(machines: readonly Machine[]): readonly Machine[] {
    const filters = this.filters.staticFilters;
    // Jobs without constraints (most): their one static filter is the schedulable check, which
    // every machine of an offered list passes (it holds only machines accepting placements).
    // Reading every record of 10,000 per job cost 2-3% of a simulated hour (scattered reads), so
    // only the entries that differ from the last list found all accepting are read: consecutive
    // offered lists share almost every record. The first that fails sends the list through the
    // filters as any other.
    if (filters.length === 1 && filters[0] === schedulableFilter && allAccept(machines)) return machines;
    return this.walk(machines, filters);
  }

  private walk(machines: readonly Machine[], filters: readonly StaticFilter[]): readonly Machine[] {
    let out: Machine[] | undefined;
    for (let i = 0; i < machines.length; i++) {
      const m = machines[i] as Machine;
      const reason = firstFailing(filters, m);
      if (reason === undefined) {
        out?.push(m);
        continue;
      }
      out ??= machines.slice(0, i);
      this.staticRuledOut.set(reason, (this.staticRuledOut.get(reason) ?? 0) + 1);
    }
    return out ?? machines;
  }

  private load(position: number): void {
    const free = this.cell.free((this.candidates[position] as Machine).id);
    this.cpu[position] = free.cpuMillis;
    this.memory[position] = free.memoryBytes;
    this.loaded[position] = 1;
  }

  freeCpu(position: number): number {
    if (this.loaded[position] !== 1) this.load(position);
    return this.cpu[position] as number;
  }

  freeMemory(position: number): number {
    if (this.loaded[position] !== 1) this.load(position);
    return this.memory[position] as number;
  }

  instances(position: number): number {
    return this.instanceCounts[position] ?? 0;
  }

  /**
   * Whether the job's task may go on the candidate at `position` now: every dynamic filter
   * passes. When one does not, counts the candidate under its reason (see {@link ruledOut}).
   */
  feasible(position: number): boolean {
    const request = this.filters.request;
    const dynamic = this.dynamic;
    for (let j = 0; j < dynamic.length; j++) {
      const reason = (dynamic[j] as DynamicFilter).check(this, position, request.cpuMillis, request.memoryBytes);
      if (reason !== PASS) {
        const at = (this.slot[j] as number) + reason;
        this.counts[at] = (this.counts[at] as number) + 1;
        return false;
      }
    }
    return true;
  }

  /** Whether every dynamic filter except the resource fit passes (where preemption may make room). Counts nothing. */
  feasibleExceptResources(position: number): boolean {
    const request = this.filters.request;
    for (const f of this.dynamic) if (!f.resources && f.check(this, position, request.cpuMillis, request.memoryBytes) !== PASS) return false;
    return true;
  }

  /** Forgets the dynamic counts: call before each task's scan. */
  resetCounts(): void {
    this.counts.fill(0);
  }

  /** After a claim on the candidate at `position` (with or without evictions): its numbers change. */
  record(position: number): void {
    this.loaded[position] = 0;
    if (this.instanceCounts.length > 0) this.instanceCounts[position] = (this.instanceCounts[position] as number) + 1;
    for (const s of this.spreads) s.add(position);
  }

  /**
   * Machines ruled out per filter: each offered machine that failed a static filter under the
   * first it failed, and each candidate the dynamic filters refused since the last
   * {@link resetCounts} under the first reason. After a scan of every candidate that found
   * nothing, the counts sum to the machines offered (plus `extra`, the policy's own exclusions).
   */
  ruledOut(extra?: ReadonlyMap<string, number>): Map<string, number> {
    const out = new Map(this.staticRuledOut);
    for (let k = 0; k < this.reasonNames.length; k++) {
      const n = this.counts[k] as number;
      if (n > 0) {
        const name = this.reasonNames[k] as string;
        out.set(name, (out.get(name) ?? 0) + n);
      }
    }
    for (const [name, n] of extra ?? []) out.set(name, (out.get(name) ?? 0) + n);
    return out;
  }
}
