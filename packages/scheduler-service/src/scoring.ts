/**
 * Ranking of feasible machines. Scores are "higher is better" numbers computed from plain
 * numbers (no records, no allocation): the placement loop calls this once per feasible machine
 * per task. Ties are broken by the policy with the injected Random, never by machine order, so
 * competing schedulers looking at the same snapshot do not all pick the same machine.
 */
import type { ScoringMode } from './options.js';

/** Free fraction of a resource, 0 when the machine has none of it (a zero capacity is allowed). */
function fraction(free: number, capacity: number): number {
  return capacity > 0 ? free / capacity : 0;
}

/**
 * The score of placing a task on a machine.
 *
 * - `spread` (least-allocated): the mean of the free CPU and memory fractions left after the
 *   placement, minus `antiAffinityPenalty` per live instance of the same job already there. The
 *   penalty is small next to the [0, 1] range of the fractions: it separates near-equal machines
 *   without overriding a real difference in load.
 * - `bin-pack` (most-allocated): the mean of the used fractions after the placement; no
 *   anti-affinity (packing a job's instances together is what bin-packing asks for).
 *
 * @param freeCpuAfter free millicores after the placement (and any evictions)
 * @param freeMemoryAfter free bytes after the placement (and any evictions)
 * @param instancesHere live instances of the job on the machine before this placement
 */
export function scoreMachine(
  mode: ScoringMode,
  capacityCpu: number,
  capacityMemory: number,
  freeCpuAfter: number,
  freeMemoryAfter: number,
  instancesHere: number,
  antiAffinityPenalty: number,
): number {
  const free = (fraction(freeCpuAfter, capacityCpu) + fraction(freeMemoryAfter, capacityMemory)) / 2;
  switch (mode) {
    case 'spread':
      return free - antiAffinityPenalty * instancesHere;
    case 'bin-pack':
      return 1 - free;
  }
}
