/**
 * A machine's presence in the cell: its record (`machines/<id>`: capacity, attributes,
 * schedulable) and its heartbeat (`alive/<id>`, bound to a lease). Used by real agents (one
 * machine) and hollow agents (many machines, registered in batches, one shared lease).
 */
import { cpus, hostname, totalmem } from 'node:os';
import pino, { type Logger } from 'pino';
import type { Cell, Heartbeat, MachineId, MachineRegistration, Resources } from '@omega/cell-state';
import type { LeaseRenewals } from './fence.js';

const GiB = 1024 ** 3;

/**
 * Memory kept for the system and the agent: a tenth of the machine, at least 256 MiB and at
 * most 2 GiB. Tasks are charged exactly what they claim, so what is not reserved here is
 * promised to tasks.
 */
export function memoryReserve(total: number): number {
  return Math.min(2 * GiB, Math.max(256 * 1024 ** 2, Math.floor(total / 10)));
}

/** This host's capacity: every CPU (as millicores), total memory minus {@link memoryReserve}. */
export function detectCapacity(): Resources {
  const total = totalmem();
  return { cpuMillis: Math.max(1, cpus().length) * 1000, memoryBytes: Math.max(0, total - memoryReserve(total)) };
}

/** The default machine id: the host name, cut at the first dot. */
export function defaultMachineId(): string {
  return hostname().split('.')[0] ?? hostname();
}

/**
 * Writes the machines' records: one `registerMachine` for a single machine, batched
 * `registerMachines` for many. Claims already on a machine are kept (a restarting agent keeps its
 * tasks' claims).
 */
export async function registerAll(cell: Cell, regs: readonly MachineRegistration[]): Promise<void> {
  if (regs.length === 1) await cell.registerMachine(regs[0] as MachineRegistration);
  else if (regs.length > 1) await cell.registerMachines(regs);
}

/**
 * Marks machines unschedulable (agent stopping), `concurrency` at a time. Errors are logged and
 * skipped: a stopping agent must still stop.
 */
export async function markUnschedulable(cell: Cell, ids: readonly MachineId[], reason: string, logger: Logger, concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++] as MachineId;
      try {
        await cell.setSchedulable(id, false, reason);
      } catch (error) {
        logger.warn({ err: error, machineId: id }, 'could not mark the machine unschedulable');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
}

export interface HeartbeatOptions {
  readonly ttlSeconds?: number;
  /** Written into `alive/<id>`: who keeps it. */
  readonly agent?: string;
  /** Written into `alive/<id>`: where the agent serves task logs. */
  readonly logAddress?: string;
  readonly logger?: Logger;
  /**
   * Told of every grant and acknowledged renewal of the current lease, stamped with when it was
   * sent on `renewals.now()`'s clock (the agent's fence, fence.ts).
   */
  readonly renewals?: LeaseRenewals & { now(): number };
}

/**
 * Keeps the `alive/<id>` keys of one or more machines, bound to one lease (one machine:
 * `cell.startHeartbeat`; many: `cell.startHeartbeats`, one shared lease). When the lease is lost
 * (etcd unreachable past the TTL), a new one is taken, retrying with backoff until `stop()`.
 */
export class HeartbeatKeeper {
  private heartbeat: Heartbeat | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private current: object | undefined;
  private restored = 0;
  private readonly logger: Logger;

  constructor(
    private readonly cell: Cell,
    private readonly ids: readonly MachineId[],
    private readonly options: HeartbeatOptions = {},
  ) {
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'heartbeat', machines: ids.length });
  }

  /**
   * Takes the lease and writes every key; rejects when etcd refuses (the caller decides whether
   * to call `start()` again). Once started, a lost lease is replaced on its own until `stop()`.
   */
  async start(): Promise<void> {
    const heartbeat = await this.open();
    if (this.stopped) await heartbeat.stop().catch(() => undefined);
    else this.heartbeat = heartbeat;
  }

  private open(): Promise<Heartbeat> {
    // Only the newest attempt's lease may report a loss: a lease granted by an attempt that
    // failed afterwards (its key write did not happen) must not start a second retry loop.
    const token = {};
    this.current = token;
    const renewals = this.options.renewals;
    // Before the grant is sent: etcd starts the lease's TTL no earlier than this.
    const sentAtMs = renewals?.now();
    const options = {
      ttlSeconds: this.options.ttlSeconds ?? 10,
      agent: this.options.agent ?? '',
      logAddress: this.options.logAddress ?? '',
      onLost: (error: Error) => {
        if (this.current !== token) return;
        // A lease that reported no renewals: counting starts from its loss.
        renewals?.resume(renewals.now());
        this.lost(error);
      },
    };
    const started = this.ids.length === 1 ? this.cell.startHeartbeat(this.ids[0] as MachineId, options) : this.cell.startHeartbeats(this.ids, options);
    if (renewals === undefined || sentAtMs === undefined) return started;
    return started.then((heartbeat) => {
      if (this.current === token) {
        const { lease } = heartbeat;
        if (lease.onRenewed === undefined) {
          renewals.renewed(sentAtMs);
          renewals.pause();
        } else {
          lease.onRenewed((sentAgoMs) => {
            if (this.current === token) renewals.renewed(renewals.now() - sentAgoMs);
          });
          renewals.renewed(sentAtMs);
        }
      }
      return heartbeat;
    });
  }

  private lost(error: Error, attempt = 0): void {
    if (this.stopped) return;
    this.heartbeat = undefined;
    // Once per outage, not once per retry.
    if (attempt === 0) this.logger.warn({ err: error }, 'heartbeat lease lost; taking a new one');
    else this.logger.debug({ err: error, attempt }, 'heartbeat not restored yet; retrying');
    // Capped well under the schedulers' machine-loss grace (5 s by default): once etcd is back,
    // the heartbeat must return before the machine's tasks are taken for lost.
    const delay = Math.min(2_000, 250 * 2 ** Math.min(attempt, 3));
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.open().then(
        (heartbeat) => {
          if (this.stopped) void heartbeat.stop().catch(() => undefined);
          else {
            this.heartbeat = heartbeat;
            this.restored++;
            this.logger.info({ attempts: attempt + 1 }, 'heartbeat restored');
          }
        },
        (e: unknown) => this.lost(e as Error, attempt + 1),
      );
    }, delay);
  }

  /** Times a lost lease was replaced by a new one. */
  get restoredCount(): number {
    return this.restored;
  }

  /** Revokes the lease: the `alive/` keys disappear at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    const heartbeat = this.heartbeat;
    this.heartbeat = undefined;
    await heartbeat?.stop();
  }
}
