/**
 * What creating a file costs on a file system right now: `files` empty files made (O_CREAT |
 * O_EXCL) in a fresh directory, timed. Printed at the start of a live run beside the same on a
 * tmpfs, because on ext4 without a journal it tells the state a run starts in: a file created
 * within minutes of many deletes scans them (see node-agent's data-disk.ts). On this project's
 * 2-core VM: 38-49 µs per file on the root disk left quiet, 650 µs a minute after 30,000 files
 * were removed, 12-30 µs on /dev/shm. Removing the files would itself be such a delete, so they
 * stay where the caller puts them (a live run: its data directory, removed with it).
 */
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';

/** Wall microseconds per file created in a fresh directory under `root`, which is left there. */
export function fileCreateMicros(root: string, files = 500): number {
  const dir = mkdtempSync(join(root, 'disk-probe-'));
  const start = process.hrtime.bigint();
  for (let i = 0; i < files; i++) closeSync(openSync(join(dir, String(i)), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600));
  return Number(process.hrtime.bigint() - start) / 1000 / files;
}

/** The tmpfs the probe compares with. */
const SHM = '/dev/shm';

/**
 * The probe in `dir` (a directory of the run's, removed with its data: the files go with it)
 * and, for scale, on /dev/shm when there is one and it can be written (removed at once: a tmpfs
 * has no such scan; left out otherwise, as it only explains the first figure): a line to print.
 */
export function describeFileCreate(dir: string): string {
  const here = fileCreateMicros(dir);
  return `a file create there costs ${here.toFixed(0)} µs now${dir.startsWith(`${SHM}/`) ? '' : tmpfsReference()}`;
}

function tmpfsReference(): string {
  if (!existsSync(SHM)) return '';
  let scratch: string | undefined;
  try {
    scratch = mkdtempSync(join(SHM, 'omega-disk-probe-'));
    return `, ${fileCreateMicros(scratch).toFixed(0)} µs on ${SHM} (a tmpfs)`;
  } catch {
    return '';
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}
