import { MemoryKv, taskId, type Heartbeat, type MachineId } from '@omega/cell-state';
import { cellWithMachines, machine, plan } from '@omega/cell-state/testing';
import { describe, expect, it } from 'vitest';
import { offeredMachines } from './job-status.js';
import { OfferedMachinesCache } from './offered-cache.js';

describe('the offered machines cache', () => {
  it('always equals offeredMachines() of the snapshot, updating in place until membership changes', async () => {
    const kv = new MemoryKv();
    const { cell, mirror, ids } = await cellWithMachines(kv, 8);
    const cache = new OfferedMachinesCache();
    mirror.onChange((change) => cache.note(change));
    const beats = new Map<MachineId, Heartbeat>();
    for (const id of ids) beats.set(id, await cell.startHeartbeat(id));
    const same = async (): Promise<void> => {
      await mirror.waitForRevision((await kv.range({ key: '/', prefix: true, limit: 1 })).revision);
      const snapshot = mirror.snapshot();
      const expected = offeredMachines(snapshot);
      const got = cache.get(snapshot);
      expect(got.machines.map((m) => [m.id, m.seq])).toEqual(expected.machines.map((m) => [m.id, m.seq]));
      expect(got.withheld).toEqual(expected.withheld);
    };
    await same();
    const rebuilds = cache.counters.rebuilds;
    // Claims change machine records, not membership: updated in place.
    const committer = cell.committer({ latest: () => mirror.snapshot() });
    for (let i = 0; i < 5; i++) {
      const pc = plan(mirror.snapshot(), [[taskId('j', i), ids[i % 3] as MachineId, 500]]);
      await committer.commit(pc.transaction('resource-fit', 'incremental'));
      await same();
    }
    expect(cache.counters.rebuilds).toBe(rebuilds);
    expect(cache.counters.updates).toBeGreaterThanOrEqual(5);
    // Membership changes rebuild: unschedulable, heartbeat gone, a new machine.
    await cell.setSchedulable(ids[1] as MachineId, false, 'drain');
    await same();
    await beats.get(ids[2] as MachineId)?.stop();
    await same();
    await cell.registerMachine(machine('m99').cpu(4000).memory('8Gi').build());
    await cell.startHeartbeat('m99' as MachineId);
    await same();
    expect(cache.counters.rebuilds).toBeGreaterThan(rebuilds);
    await mirror.stop();
    await kv.close();
  });
});
