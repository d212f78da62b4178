/**
 * `<data-dir>/dev-status.json`: what `omega dev` runs right now, for operators and tests
 * (`jq '.processes[] | [.name, .pid, .state, .restarts]' .omega/dev-status.json`).
 *
 * Rewritten after every change (a start, an exit, a restart), atomically (a temporary file
 * renamed over it), so a reader never sees half a file. Removed when `omega dev` stops cleanly;
 * left behind when it was killed, naming the processes it had.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import type { ParentDeathMode } from './parent-death.js';

export const STATUS_FILE = 'dev-status.json';

export interface ProcessStatus {
  readonly name: string;
  /** The current (or last) run's pid; null when not started (an external etcd). */
  readonly pid: number | null;
  /** Field 22 of `/proc/<pid>/stat`: with the pid, names the process even after pid reuse. */
  readonly startTicks: string | null;
  readonly state: 'running' | 'restarting' | 'stopped' | 'external';
  readonly restarts: number;
  readonly startedAtMs: number | null;
  readonly lastExit: { readonly code: number | null; readonly signal: string | null; readonly atMs: number } | null;
  readonly log: string | null;
}

export interface DevStatus {
  /** `omega dev`'s own pid. */
  readonly pid: number;
  readonly cell: string;
  readonly api: string;
  readonly parentDeath: ParentDeathMode;
  readonly updatedAtMs: number;
  readonly processes: readonly ProcessStatus[];
}

/** Writes the status file whenever asked, one write at a time, the latest state winning. */
export class StatusFile {
  private writing: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly current: () => DevStatus,
  ) {}

  /** Schedules a write of the current status (coalesced with one in flight). Never rejects. */
  update(): void {
    if (this.closed) return;
    if (this.writing !== undefined) {
      this.again = true;
      return;
    }
    this.writing = (async () => {
      do {
        this.again = false;
        const temporary = `${this.path}.${process.pid}.tmp`;
        try {
          await writeFile(temporary, `${JSON.stringify(this.current(), null, 2)}\n`);
          await rename(temporary, this.path);
        } catch {
          // A status file is a courtesy: a full disk must not stop the cell.
        }
      } while (this.again && !this.closed);
      this.writing = undefined;
    })();
  }

  /** Writes the current status and resolves once it is on disk (as far as a write can tell). */
  async flush(): Promise<void> {
    this.update();
    while (this.writing !== undefined) await this.writing;
  }

  /** Waits for a write in flight, then removes the file; no writes after this. */
  async remove(): Promise<void> {
    this.closed = true;
    await this.writing;
    await rm(this.path, { force: true });
  }
}
