/**
 * `omega dev`'s etcd: started through cell-state's launcher on the data directory, watched, and
 * restarted with backoff when it dies (same data directory, same ports, so every child's
 * `--etcd` URL stays right and the cell comes back with its jobs).
 *
 * ```
 *   start() ─► running ──pid gone, not asked for──► restarting ──backoff──► startEtcd(same ports)
 *                 │                                      │            └─ fails: backoff, again
 *                 └───────────── stop() ─────────────────┴──► stopped
 * ```
 *
 * The launcher binds etcd to this process's life (setpriv --pdeathsig, see parent-death.ts), so
 * it dies with `omega dev` like the other children.
 *
 * With `tls` (the member's own certificate and the cell's CA, from the dev PKI), etcd serves
 * clients over TLS only and requires a client certificate signed by that CA; every restart uses
 * the same files.
 */
import { EtcdStartError, startEtcd, type RunningEtcd, type TlsFiles } from '@omega/cell-state';
import { DEFAULT_RESTART_BACKOFF, RestartBackoff, type BackoffSettings } from './restart-backoff.js';
import { isAlive } from './leftovers.js';

/** The ports etcd had last time (remembered in `dev.json`). */
export interface EtcdPorts {
  etcdClientPort?: number;
  etcdPeerPort?: number;
}

export interface DevEtcdEvents {
  /** etcd died without being asked to; it is started again after `restartInMs`. */
  exited?(pid: number, upMs: number, restartInMs: number): void;
  restarted?(pid: number): void;
  /** A restart failed (port taken, etcd refused to start); tried again after `retryInMs`. */
  restartFailed?(error: Error, retryInMs: number): void;
  changed?(): void;
}

const WATCH_MS = 500;

export class DevEtcd {
  state: 'running' | 'restarting' | 'stopped' = 'running';
  restarts = 0;
  startedAtMs = Date.now();
  lastExit: { atMs: number } | undefined;
  private watch: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: RestartBackoff;

  private constructor(
    private current: RunningEtcd,
    private readonly events: DevEtcdEvents,
    backoff: BackoffSettings,
    private readonly tls: TlsFiles | undefined,
  ) {
    this.backoff = new RestartBackoff(backoff);
    this.startWatching();
  }

  /**
   * Starts etcd on `dataDir`, on the ports it had last time when they are still free (else new
   * ones, same data), and watches it. Throws the launcher's errors (no etcd, would not start).
   * `tls`: serve TLS with client-certificate authentication (default plaintext).
   */
  static async start(dataDir: string, ports: EtcdPorts, events: DevEtcdEvents = {}, options: { readonly backoff?: BackoffSettings; readonly tls?: TlsFiles } = {}): Promise<DevEtcd> {
    const base = { dataDir, detached: true, ...(options.tls === undefined ? {} : { tls: options.tls }) } as const;
    let running: RunningEtcd | undefined;
    if (ports.etcdClientPort !== undefined && ports.etcdPeerPort !== undefined) {
      try {
        running = await startEtcd({ ...base, clientPort: ports.etcdClientPort, peerPort: ports.etcdPeerPort });
      } catch (error) {
        if (!(error instanceof EtcdStartError)) throw error;
        // The old ports are taken (or the member would not come up there): new ports, same data.
      }
    }
    running ??= await startEtcd(base);
    return new DevEtcd(running, events, options.backoff ?? DEFAULT_RESTART_BACKOFF, options.tls);
  }

  get pid(): number {
    return this.current.pid;
  }

  get clientUrl(): string {
    return this.current.clientUrl;
  }

  get clientPort(): number {
    return this.current.clientPort;
  }

  get peerPort(): number {
    return this.current.peerPort;
  }

  get maxTxnOps(): number {
    return this.current.limits.maxTxnOps;
  }

  /** Stops watching and restarting, then stops etcd (SIGTERM, grace, SIGKILL). Idempotent. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    clearInterval(this.watch);
    clearTimeout(this.timer);
    await this.current.stop();
  }

  private startWatching(): void {
    this.watch = setInterval(() => {
      if (this.state !== 'running' || isAlive(this.current.pid)) return;
      clearInterval(this.watch);
      const now = Date.now();
      this.lastExit = { atMs: now };
      this.state = 'restarting';
      const delay = this.backoff.next(now - this.startedAtMs);
      this.events.exited?.(this.current.pid, now - this.startedAtMs, delay);
      this.events.changed?.();
      this.scheduleRestart(delay);
    }, WATCH_MS);
  }

  private scheduleRestart(delayMs: number): void {
    this.timer = setTimeout(() => {
      if (this.state !== 'restarting') return;
      const { dataDir, clientPort, peerPort } = this.current;
      // The old member is gone: this only forgets it (the launcher's exit handler list).
      void this.current.stop();
      startEtcd({ dataDir, detached: true, clientPort, peerPort, ...(this.tls === undefined ? {} : { tls: this.tls }) }).then(
        async (running) => {
          if (this.state !== 'restarting') {
            await running.stop();
            return;
          }
          this.current = running;
          this.state = 'running';
          this.restarts++;
          this.startedAtMs = Date.now();
          this.events.restarted?.(running.pid);
          this.events.changed?.();
          this.startWatching();
        },
        (error: unknown) => {
          if (this.state !== 'restarting') return;
          const retry = this.backoff.next(0);
          this.events.restartFailed?.(error as Error, retry);
          this.scheduleRestart(retry);
        },
      );
    }, delayMs);
  }
}
