/**
 * The disk a data directory is on: the node agent names it in its log at start and warns about
 * the one case that slows every task start, and a live benchmark names the disk under etcd and
 * the agent in its output (the same cell runs at different speeds on different file systems:
 * etcd syncs its log on every commit, the agent creates, syncs and removes a handful of small
 * files per task). The case: ext4 without a journal (some cloud images make their root so),
 * where the kernel checks every free inode it considers for a recent delete before it reuses it
 * (`recently_deleted` in fs/ext4/ialloc.c, only without a journal), so a file created while many
 * were just removed costs a scan of the inode table.
 */
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { basename, resolve } from 'node:path';

/** One mountinfo line's mount point, type and source (field 5, and the two after the `-`). */
interface MountLine {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
}

/** The mount holding a path, as /proc/self/mountinfo says. */
export interface DataDisk extends MountLine {
  /** ext4 only: whether it has a journal (a jbd2 entry for its device); undefined elsewhere or unknown. */
  readonly journal?: boolean;
}

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The lines of /proc/self/mountinfo (see proc(5)); malformed lines are skipped. */
export function parseMountInfo(text: string): MountLine[] {
  const mounts: MountLine[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const mountPoint = fields[4];
    const fsType = fields[dash + 1];
    const source = fields[dash + 2];
    if (dash < 6 || mountPoint === undefined || fsType === undefined || source === undefined) continue;
    mounts.push({ mountPoint: unescape(mountPoint), fsType, source: unescape(source) });
  }
  return mounts;
}

/** The mount a path is on: the last listed among those with the longest mount point containing it. */
export function mountOf(mounts: readonly MountLine[], path: string): MountLine | undefined {
  let best: MountLine | undefined;
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (inside && (best === undefined || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** Whether an ext4 device has a journal: jbd2 lists `<device>-<inode>` for each journal it runs. */
function hasJournal(source: string): boolean | undefined {
  let device: string;
  try {
    device = basename(realpathSync(source));
  } catch {
    device = basename(source);
  }
  try {
    return readdirSync('/proc/fs/jbd2').some((name) => name.startsWith(`${device}-`));
  } catch {
    // No jbd2 directory: no ext4 journal runs at all (or /proc is not Linux's).
    return existsSync('/proc/fs/ext4') ? false : undefined;
  }
}

/** Describes the disk holding `path` (Linux; undefined where /proc/self/mountinfo is missing). */
export function dataDisk(path: string): DataDisk | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    real = resolve(path);
  }
  const mount = mountOf(parseMountInfo(text), real);
  if (mount === undefined) return undefined;
  const journal = mount.fsType === 'ext4' ? hasJournal(mount.source) : undefined;
  return { ...mount, ...(journal === undefined ? {} : { journal }) };
}

/** Whether `disk` is an ext4 known to run without a journal (see the file header). */
export function isJournalLessExt4(disk: DataDisk | undefined): boolean {
  return disk?.fsType === 'ext4' && disk.journal === false;
}

/** "ext4 without a journal (/dev/vda at /)", "tmpfs (at /mnt/x)", or "unknown". */
export function describeDataDisk(disk: DataDisk | undefined): string {
  if (disk === undefined) return 'file system unknown';
  const journal = disk.journal === undefined ? '' : disk.journal ? ' with a journal' : ' without a journal';
  const device = disk.source.startsWith('/dev/') ? `${disk.source} at ${disk.mountPoint}` : `at ${disk.mountPoint}`;
  return `${disk.fsType}${journal} (${device})`;
}
