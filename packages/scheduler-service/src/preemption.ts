/**
 * Priority-based preemption: which live claims on one machine to evict so that a task fits, and
 * how to compare such choices across machines.
 *
 * Only claims of strictly lower priority than the job are ever candidates (never equal: two jobs
 * of one priority must not evict each other back and forth), never the job's own tasks (a job
 * would shuffle itself), never a claim this attempt already evicts, and only live ones. The
 * PrivateCell re-checks all of that when the claim is made, and the commit removes the victims'
 * claims and kills their tasks in the same transaction as the new claim.
 *
 * Split in steps so the policy can scan thousands of machines per task without allocating:
 * {@link eligibleVictims} into a {@link VictimPool} (per machine, once per placement call) and
 * {@link chooseVictims} (per machine per task, into a reused {@link VictimChoice}).
 */
import type { CellSnapshot, Claim, ClaimId, JobId, Machine, Resources } from '@omega/cell-state';
import { isTaskOf } from '@omega/scheduler-core';

/** A claim's resources as a fraction of the machine's capacity: mean of CPU and memory. */
function share(c: Claim, m: Machine): number {
  const cpu = m.capacity.cpuMillis > 0 ? c.resources.cpuMillis / m.capacity.cpuMillis : 0;
  const mem = m.capacity.memoryBytes > 0 ? c.resources.memoryBytes / m.capacity.memoryBytes : 0;
  return (cpu + mem) / 2;
}

/**
 * The claims on `machine` that a job of `priority` may preempt, in the order victims are taken:
 * lowest priority first, then largest first (fewer victims), then by claim id (determinism).
 */
export function eligibleVictims(
  machine: Machine,
  priority: number,
  job: JobId,
  snapshot: CellSnapshot,
  evicted: ReadonlySet<ClaimId>,
): Claim[] {
  const out: Claim[] = [];
  for (const c of machine.claims) {
    if (c.priority >= priority || isTaskOf(c.taskId, job) || evicted.has(c.id) || !snapshot.isLive(c)) continue;
    out.push(c);
  }
  if (out.length > 1) out.sort((a, b) => a.priority - b.priority || share(b, machine) - share(a, machine) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return out;
}

/**
 * The eligible victims of many machines in flat typed arrays, each machine's list contiguous and
 * in victim order. The scan of a preemption pass reads a few numbers per machine from here
 * instead of chasing claim records scattered over the heap, which measured ~20x faster at
 * 10,000 machines. Append-only: a machine whose list changes gets a fresh range.
 */
export class VictimPool {
  cpu = new Float64Array(64);
  memory = new Float64Array(64);
  priority = new Float64Array(64);
  share = new Float64Array(64);
  readonly claims: Claim[] = [];
  size = 0;

  /** Appends `eligible` (already in victim order) for `machine`; returns where its range starts. */
  append(eligible: readonly Claim[], machine: Machine): number {
    const start = this.size;
    if (start + eligible.length > this.cpu.length) this.grow(start + eligible.length);
    for (const c of eligible) {
      this.cpu[this.size] = c.resources.cpuMillis;
      this.memory[this.size] = c.resources.memoryBytes;
      this.priority[this.size] = c.priority;
      this.share[this.size] = share(c, machine);
      this.claims.push(c);
      this.size++;
    }
    return start;
  }

  private grow(needed: number): void {
    let length = this.cpu.length * 2;
    while (length < needed) length *= 2;
    const copy = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(length);
      b.set(a);
      return b;
    };
    this.cpu = copy(this.cpu);
    this.memory = copy(this.memory);
    this.priority = copy(this.priority);
    this.share = copy(this.share);
  }
}

/**
 * A choice of victims from one machine's range of a {@link VictimPool}, as pool positions.
 * Mutable and reused: the policy keeps one for the machine being examined and one for the best
 * so far, so examining a machine allocates nothing.
 */
export class VictimChoice {
  /** Pool positions, ascending; entries `[0, count)` are valid. */
  picks = new Int32Array(8);
  count = 0;
  /** Highest priority among the victims (-Infinity when there are none). */
  maxPriority = -Infinity;
  /** Victims' resources as fractions of the machine (mean of CPU and memory), summed. */
  share = 0;
  freedCpu = 0;
  freedMemory = 0;

  reset(): void {
    this.count = 0;
    this.maxPriority = -Infinity;
    this.share = 0;
    this.freedCpu = 0;
    this.freedMemory = 0;
  }

  push(position: number): void {
    if (this.count === this.picks.length) {
      const grown = new Int32Array(this.picks.length * 2);
      grown.set(this.picks);
      this.picks = grown;
    }
    this.picks[this.count++] = position;
  }

  copyFrom(other: VictimChoice): void {
    if (this.picks.length < other.count) this.picks = new Int32Array(other.picks.length);
    // A plain loop: `subarray` would allocate a view per copy, and this runs per machine.
    for (let k = 0; k < other.count; k++) this.picks[k] = other.picks[k] as number;
    this.count = other.count;
    this.maxPriority = other.maxPriority;
    this.share = other.share;
    this.freedCpu = other.freedCpu;
    this.freedMemory = other.freedMemory;
  }

  /** The chosen claims (from the pool the choice was made on), in victim order. */
  victims(pool: VictimPool): Claim[] {
    const out: Claim[] = [];
    for (let k = 0; k < this.count; k++) out.push(pool.claims[this.picks[k] as number] as Claim);
    return out;
  }
}

/**
 * Chooses victims in the pool range `[start, start + count)` (one machine's eligible claims, in
 * victim order) that free at least `needCpu` and `needMemory`; returns false (leaving `out`
 * meaningless) when all of them together would not. Victims are taken in order, skipping claims
 * that free nothing still short; then any victim the others make unnecessary is given back,
 * highest priority and smallest first. The result is minimal (no victim can be spared), not a
 * global minimum, which would be a knapsack problem per machine.
 */
export function chooseVictims(pool: VictimPool, start: number, count: number, needCpu: number, needMemory: number, out: VictimChoice): boolean {
  out.reset();
  const cpu = pool.cpu;
  const memory = pool.memory;
  let freedCpu = 0;
  let freedMemory = 0;
  for (let p = start; p < start + count; p++) {
    const shortCpu = freedCpu < needCpu;
    const shortMemory = freedMemory < needMemory;
    if (!shortCpu && !shortMemory) break;
    const c = cpu[p] as number;
    const m = memory[p] as number;
    if ((shortCpu && c > 0) || (shortMemory && m > 0)) {
      out.push(p);
      freedCpu += c;
      freedMemory += m;
    }
  }
  if (freedCpu < needCpu || freedMemory < needMemory) return false;
  // Give back what the others make unnecessary, most valuable first (compacting in place).
  for (let j = out.count - 1; j >= 0; j--) {
    const p = out.picks[j] as number;
    const c = cpu[p] as number;
    const m = memory[p] as number;
    if (freedCpu - c >= needCpu && freedMemory - m >= needMemory) {
      for (let k = j + 1; k < out.count; k++) out.picks[k - 1] = out.picks[k] as number;
      out.count--;
      freedCpu -= c;
      freedMemory -= m;
    }
  }
  out.freedCpu = freedCpu;
  out.freedMemory = freedMemory;
  for (let j = 0; j < out.count; j++) {
    const p = out.picks[j] as number;
    const priority = pool.priority[p] as number;
    if (priority > out.maxPriority) out.maxPriority = priority;
    out.share += pool.share[p] as number;
  }
  return true;
}

/**
 * Orders choices on different machines, better first (negative when `a` is better): the lowest
 * highest victim priority (disturb the least important work), then the fewest victims, then the
 * least preempted resources relative to the machine.
 */
export function compareChoices(a: VictimChoice | PreemptionPlan, b: VictimChoice | PreemptionPlan): number {
  const countA = a instanceof VictimChoice ? a.count : a.victims.length;
  const countB = b instanceof VictimChoice ? b.count : b.victims.length;
  // Both -Infinity (no victims) must compare equal, not NaN.
  const priority = a.maxPriority === b.maxPriority ? 0 : a.maxPriority - b.maxPriority;
  return priority || countA - countB || a.share - b.share;
}

/** What one machine would have to give up for a task. */
export interface PreemptionPlan {
  /** Claims to pass as `evict` to `PrivateCell.claim`, in the order they were taken. */
  readonly victims: readonly Claim[];
  readonly maxPriority: number;
  readonly share: number;
  readonly freedCpu: number;
  readonly freedMemory: number;
}

export interface PreemptionQuestion {
  readonly machine: Machine;
  /** Free resources on the machine in the private cell now (its claims and evictions applied). */
  readonly free: Resources;
  readonly request: Resources;
  /** The placing job's priority: victims must be strictly below it. */
  readonly priority: number;
  readonly job: JobId;
  readonly snapshot: CellSnapshot;
  /** Claims already evicted on this machine by the private cell (`cell.evictedOn`). */
  readonly evicted: ReadonlySet<ClaimId>;
}

/**
 * The victims that make room for `q.request` on `q.machine` (none when it already fits), or
 * `undefined` when evicting every eligible claim would still not make room. The one-machine
 * form of what the policy does per machine; for callers and tests.
 */
export function planPreemption(q: PreemptionQuestion): PreemptionPlan | undefined {
  const eligible = eligibleVictims(q.machine, q.priority, q.job, q.snapshot, q.evicted);
  const pool = new VictimPool();
  const start = pool.append(eligible, q.machine);
  const choice = new VictimChoice();
  if (!chooseVictims(pool, start, eligible.length, q.request.cpuMillis - q.free.cpuMillis, q.request.memoryBytes - q.free.memoryBytes, choice)) return undefined;
  return { victims: choice.victims(pool), maxPriority: choice.maxPriority, share: choice.share, freedCpu: choice.freedCpu, freedMemory: choice.freedMemory };
}
