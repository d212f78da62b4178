/**
 * Rendezvous (highest-random-weight) hashing of jobs over the live scheduler instances of one
 * kind: how several instances share the work without talking to each other.
 *
 * Every instance computes the same answer from the same inputs (a job id and the set of live
 * instance names, read from the `schedulers/<name>` records in its snapshot, which are bound to
 * each instance's lease). When an instance dies its record disappears with its lease, and only
 * the jobs it was assigned move, each to the instance with the next highest weight: the others
 * keep theirs. Views of membership may differ for a moment between instances; that costs at
 * most a grace period (an instance takes any unowned job after `ownershipGraceMs`), never
 * correctness, since ownership itself is a compare-and-swap in the store.
 */
import type { CellSnapshot } from '@omega/cell-state';

/** 32-bit FNV-1a of a string, then a murmur3 finalizer so close names spread well. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The member with the highest weight for `key`; ties (astronomically rare) go to the smaller
 * name so every instance agrees. `undefined` for no members.
 */
export function rendezvousOwner(key: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const member of members) {
    const weight = hash32(`${member}\u0000${key}`);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

/**
 * Live instance names from a snapshot's scheduler records: those of `kind` (every kind when
 * undefined), plus `self` (whose own record may not be published yet), sorted.
 */
export function liveMembers(snapshot: CellSnapshot, self: string, kind: string | undefined): string[] {
  const names = new Set<string>([self]);
  for (const stats of snapshot.schedulerStats()) {
    if (kind === undefined || stats.kind === kind) names.add(stats.name);
  }
  return [...names].sort();
}
