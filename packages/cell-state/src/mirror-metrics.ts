/**
 * A mirror's figures on the metrics seam: how current the replica is and how often it had to
 * start over. The lag is read at scrape time with one range of a key that need not exist (its
 * reply header carries etcd's current revision).
 *
 * | metric | type | what |
 * |---|---|---|
 * | `omega_mirror_revision` | gauge | the etcd revision the replica is current to |
 * | `omega_mirror_revision_lag` | gauge | etcd's current revision minus the replica's (revisions; absent when etcd does not answer) |
 * | `omega_mirror_relists_total` | counter | full lists after the first (a compacted watch, a lost one) |
 * | `omega_mirror_events_total` | counter | watch events applied (duplicates of a resend ignored) |
 * | `omega_mirror_watch_disconnects_total` | counter | watch streams lost and resumed |
 */
import type { Metrics } from '@omega/metrics/seam';
import type { CellKeys } from './keys.js';
import type { KvStore } from './kv.js';
import type { CellMirror } from './mirror.js';

/** `mirror` is a CellMirror, or a getter for one that may not exist yet (an agent before its start): no samples then. */
export function exposeMirrorMetrics(metrics: Metrics, mirror: CellMirror | (() => CellMirror | undefined), kv: KvStore, keys: CellKeys): void {
  const current = typeof mirror === 'function' ? mirror : () => mirror;
  const read = (value: (m: CellMirror) => number) => (): { value: number }[] => {
    const m = current();
    return m === undefined ? [] : [{ value: value(m) }];
  };
  metrics.observed({ name: 'omega_mirror_revision', help: 'The etcd revision the replica of the cell is current to.', type: 'gauge' }, read((m) => m.revision));
  metrics.observed({ name: 'omega_mirror_revision_lag', help: "etcd's current revision minus the replica's, in revisions.", type: 'gauge' }, async () => {
    const m = current();
    if (m === undefined) return [];
    try {
      const { revision } = await kv.range({ key: keys.root });
      return [{ value: Math.max(0, revision - m.revision) }];
    } catch {
      return [];
    }
  });
  metrics.observed({ name: 'omega_mirror_relists_total', help: 'Full lists of the cell after the first (a compacted or lost watch).', type: 'counter' }, read((m) => Math.max(0, m.counters.lists - 1)));
  metrics.observed({ name: 'omega_mirror_events_total', help: 'Watch events applied to the replica.', type: 'counter' }, read((m) => m.counters.events - m.counters.duplicates));
  metrics.observed({ name: 'omega_mirror_watch_disconnects_total', help: 'Watch streams lost and resumed.', type: 'counter' }, read((m) => m.counters.disconnects));
}
