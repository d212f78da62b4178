/**
 * A real etcd with a cell whose machines are registered and heartbeating through the test's own
 * client (no agent process), for tests that run scheduler processes against it. {@link stop}
 * stops the heartbeat, the client and etcd; call it in afterEach (it is idempotent).
 */
import { Cell, EtcdKv, startEtcd, type Heartbeat, type MachineRegistration, type RunningEtcd } from '@omega/cell-state';
import { freshCellName } from '@omega/cell-state/testing';

export interface EtcdCell {
  readonly etcd: RunningEtcd;
  readonly kv: EtcdKv;
  readonly cell: Cell;
  readonly cellName: string;
  stop(): Promise<void>;
}

/** Starts etcd on free loopback ports and registers `machines`, alive for `ttlSeconds` (default 30). */
export async function startEtcdCell(machines: readonly MachineRegistration[], options: { readonly ttlSeconds?: number; readonly agent?: string } = {}): Promise<EtcdCell> {
  const etcd = await startEtcd();
  const cellName = freshCellName();
  const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  const cell = new Cell(kv, cellName);
  let heartbeat: Heartbeat | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await heartbeat?.stop().catch(() => undefined);
    await kv.close().catch(() => undefined);
    await etcd.stop();
  };
  try {
    if (machines.length > 0) {
      await cell.registerMachines(machines);
      heartbeat = await cell.startHeartbeats(machines.map((m) => m.id), { ttlSeconds: options.ttlSeconds ?? 30, agent: options.agent ?? 'test' });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { etcd, kv, cell, cellName, stop };
}
