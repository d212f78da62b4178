/**
 * A uid per task attempt, from a configured range (`--task-uids`, default
 * {@link DEFAULT_TASK_UIDS}), so tasks never share a uid: one task cannot read another's
 * `/proc/<pid>/environ`, signal it, or write into its work dir, and root's cleanup of a work dir
 * never races a live process that could plant a link there (the task's own processes are killed
 * with its cgroup first, and no other process has its uid). The gid is the uid; supplementary
 * groups are dropped. The uids need no `/etc/passwd` entry.
 *
 * Allocation is next-fit: a released uid is handed out again only after the rest of the range,
 * so a straggler of a finished task (without enforcement nothing kills it) does not share a uid
 * with the next task for as long as possible. A restarted agent re-marks the uids of the attempts
 * it adopts (from their meta.json) before it starts any.
 */

/** An inclusive range of uids. */
export interface UidRange {
  readonly first: number;
  readonly last: number;
}

/** The default range: 65,536 uids above the ones distributions hand out to people and services. */
export const DEFAULT_TASK_UIDS: UidRange = Object.freeze({ first: 100_000, last: 165_535 });

/** Largest uid accepted: below 2^32 - 1, which means "no uid" to the kernel. */
const MAX_UID = 4_294_967_294;

/**
 * Parses `FIRST-LAST` (inclusive, FIRST ≥ 1000 so it cannot be root or a system account,
 * LAST ≥ FIRST). Returns the range or the problem.
 */
export function parseUidRange(text: string): UidRange | { readonly problem: string } {
  const m = /^(\d{1,10})-(\d{1,10})$/.exec(text.trim());
  if (m === null) return { problem: `must be FIRST-LAST, e.g. 100000-165535, got ${JSON.stringify(text)}` };
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (first < 1000) return { problem: `must start at 1000 or above (never root or a system account), got ${first}` };
  if (last < first) return { problem: `the last uid ${last} is below the first ${first}` };
  if (last > MAX_UID) return { problem: `the last uid must be at most ${MAX_UID}, got ${last}` };
  return { first, last };
}

/** Hands out the uids of a range, one per task attempt (by its name). */
export class TaskUidPool {
  private readonly byUid = new Map<number, string>();
  private readonly byName = new Map<string, number>();
  /** Attempts that have ended and hold their uid only until their cleanup gives it back. */
  private readonly ending = new Set<string>();
  /** Callers of {@link takeSoon} waiting for a release. */
  private readonly waiting = new Set<() => void>();
  private cursor: number;

  constructor(readonly range: UidRange) {
    this.cursor = range.first;
  }

  /** How many uids are in use. */
  get used(): number {
    return this.byUid.size;
  }

  /**
   * A uid for attempt `name`: the one it already has, else the next free one after the last
   * handed out. Undefined when every uid of the range is in use.
   */
  take(name: string): number | undefined {
    const held = this.byName.get(name);
    if (held !== undefined) return held;
    const size = this.range.last - this.range.first + 1;
    for (let i = 0; i < size; i++) {
      const uid = this.cursor;
      this.cursor = uid === this.range.last ? this.range.first : uid + 1;
      if (!this.byUid.has(uid)) {
        this.byUid.set(uid, name);
        this.byName.set(name, uid);
        return uid;
      }
    }
    return undefined;
  }

  /**
   * Marks `uid` as attempt `name`'s (an attempt found on disk after a restart). False when the
   * uid is outside the range (the range changed: it is then not tracked) or already another
   * attempt's.
   */
  mark(name: string, uid: number): boolean {
    if (uid < this.range.first || uid > this.range.last) return false;
    const owner = this.byUid.get(uid);
    if (owner !== undefined) return owner === name;
    this.byUid.set(uid, name);
    this.byName.set(name, uid);
    return true;
  }

  /**
   * {@link take}, but when every uid is in use and some are held by attempts that have ended
   * (their uid comes back once their report is written and their work dir removed, see
   * {@link ended}), waits up to `waitMs` for one of those to be given back instead of answering
   * undefined at once: a task placed just after another's end on a full range still gets a uid.
   */
  async takeSoon(name: string, waitMs: number): Promise<number | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const uid = this.take(name);
      const left = deadline - Date.now();
      if (uid !== undefined || this.ending.size === 0 || left <= 0) return uid;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiting.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiting.add(done);
      });
    }
  }

  /**
   * Marks attempt `name` as ended: its uid is still held (its work dir is still there) but will
   * be given back by {@link release} once the cleanup is done, or kept by {@link stayHeld}.
   */
  ended(name: string): void {
    if (this.byName.has(name)) this.ending.add(name);
  }

  /** The ended attempt's cleanup failed: its uid stays held (never reused over its files). */
  stayHeld(name: string): void {
    this.ending.delete(name);
  }

  /** Gives attempt `name`'s uid back (its processes are gone and its work dir removed). */
  release(name: string): void {
    this.ending.delete(name);
    const uid = this.byName.get(name);
    if (uid === undefined) return;
    this.byName.delete(name);
    this.byUid.delete(uid);
    for (const wake of [...this.waiting]) wake();
  }
}
