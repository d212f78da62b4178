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
import type { Metrics } from '@omega/metrics';
import type { CellKeys } from './keys.js';
import type { KvStore } from './kv.js';
import type { CellMirror } from './mirror.js';

export function exposeMirrorMetrics(metrics: Metrics, mirror: CellMirror, kv: KvStore, keys: CellKeys): void {
  metrics.observed({ name: 'omega_mirror_revision', help: 'The etcd revision the replica of the cell is current to.', type: 'gauge' }, () => [{ value: mirror.revision }]);
  metrics.observed({ name: 'omega_mirror_revision_lag', help: "etcd's current revision minus the replica's, in revisions.", type: 'gauge' }, async () => {
    try {
      const { revision } = await kv.range({ key: keys.root });
      return [{ value: Math.max(0, revision - mirror.revision) }];
    } catch {
      return [];
    }
  });
  metrics.observed({ name: 'omega_mirror_relists_total', help: 'Full lists of the cell after the first (a compacted or lost watch).', type: 'counter' }, () => [{ value: Math.max(0, mirror.counters.lists - 1) }]);
  metrics.observed({ name: 'omega_mirror_events_total', help: 'Watch events applied to the replica.', type: 'counter' }, () => [{ value: mirror.counters.events - mirror.counters.duplicates }]);
  metrics.observed({ name: 'omega_mirror_watch_disconnects_total', help: 'Watch streams lost and resumed.', type: 'counter' }, () => [{ value: mirror.counters.disconnects }]);
}
