/**
 * What creating a file costs on a file system right now: `files` empty files made (O_CREAT |
 * O_EXCL) in a fresh directory, timed, then removed. Printed at the start of a live run beside
 * the same on a tmpfs, because on ext4 without a journal it tells the state a run starts in: a
 * file created within minutes of many deletes scans them (see node-agent's data-disk.ts). On this
 * project's 2-core VM: 38-49 µs per file on the root disk left quiet, 650 µs a minute after
 * 30,000 files were removed, 19-30 µs on /dev/shm.
 */
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';

/** Wall microseconds per file created under `root` (a fresh directory, removed after). */
export function fileCreateMicros(root: string, files = 500): number {
  const dir = mkdtempSync(join(root, 'omega-disk-probe-'));
  try {
    const start = process.hrtime.bigint();
    for (let i = 0; i < files; i++) closeSync(openSync(join(dir, String(i)), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600));
    return Number(process.hrtime.bigint() - start) / 1000 / files;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The probe under `root` and, for scale, on /dev/shm (a tmpfs) when there is one: a line to print. */
export function describeFileCreate(root: string): string {
  const here = fileCreateMicros(root);
  const shm = '/dev/shm';
  const reference = existsSync(shm) && root !== shm ? `, ${fileCreateMicros(shm).toFixed(0)} µs on ${shm} (a tmpfs)` : '';
  return `a file create under ${root} costs ${here.toFixed(0)} µs now${reference}`;
}
