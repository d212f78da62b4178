/**
 * OfferedMachinesCache: the machines offered to the policy (alive and schedulable, in the
 * snapshot's order), kept up to date from the mirror's change feed instead of recomputed from
 * every machine of every snapshot.
 *
 * Why: every attempt takes a fresh snapshot, and on a 10,000-machine cell `offeredMachines()`
 * (a walk over every machine and its heartbeat) cost more than the placement and the commit
 * together in the simulator's profile. Between two attempts only the machines other commits
 * touched change, and almost never their offered-ness: those entries are replaced in a copy of
 * the list (same order, fresh records); any change of membership (a machine appears, goes, stops
 * heartbeating, turns unschedulable) or a re-list rebuilds the list from the snapshot.
 *
 * Contract: `get(snapshot)` returns exactly what `offeredMachines(snapshot)` would, provided
 * every change the mirror applied up to the snapshot's revision was passed to `note()` first
 * (the Scheduler's mirror listener does, synchronously). Lists handed out are never mutated.
 */
import { acceptsPlacements, type CellSnapshot, type Machine, type MachineId, type MirrorChange } from '@omega/cell-state';
import { offeredMachines, type OfferedMachines } from './job-status.js';

export class OfferedMachinesCache {
  private snapshot: CellSnapshot | undefined;
  private offered: OfferedMachines | undefined;
  /** Position of each offered machine in `offered.machines`. */
  private readonly index = new Map<MachineId, number>();
  private readonly changed = new Set<MachineId>();
  private stale = true;
  /** Full rebuilds and incremental updates, for tests and profiles. */
  readonly counters = { rebuilds: 0, updates: 0 };

  /** Takes note of a mirror change (call from the mirror's listener, for every change). */
  note(change: MirrorChange): void {
    if (change.full) {
      this.stale = true;
      this.changed.clear();
      return;
    }
    if (this.stale) return;
    for (const c of change.changes) if (c.kind === 'machine' || c.kind === 'alive') this.changed.add(c.id as MachineId);
  }

  /** The offered machines of `snapshot` (the latest snapshot of the mirror whose changes were noted). */
  get(snapshot: CellSnapshot): OfferedMachines {
    if (snapshot === this.snapshot && this.offered !== undefined) return this.offered;
    if (this.stale || this.offered === undefined) return this.rebuild(snapshot);
    if (this.changed.size === 0) {
      this.snapshot = snapshot;
      return this.offered;
    }
    const machines = this.offered.machines.slice();
    for (const id of this.changed) {
      const m = snapshot.machine(id);
      const offer = m !== undefined && acceptsPlacements(m) && snapshot.alive(id) !== undefined;
      const at = this.index.get(id);
      if (offer !== (at !== undefined)) return this.rebuild(snapshot);
      if (at !== undefined) machines[at] = m as Machine;
    }
    this.changed.clear();
    this.counters.updates++;
    this.snapshot = snapshot;
    this.offered = { machines, withheld: this.offered.withheld };
    return this.offered;
  }

  private rebuild(snapshot: CellSnapshot): OfferedMachines {
    this.counters.rebuilds++;
    const offered = offeredMachines(snapshot);
    this.index.clear();
    offered.machines.forEach((m, i) => this.index.set(m.id, i));
    this.changed.clear();
    this.stale = false;
    this.snapshot = snapshot;
    this.offered = offered;
    return offered;
  }
}
