/**
 * Following a task's log as it grows (`omega logs -f`): after what the file held when the request
 * came, the log server keeps sending what the supervisor appends, across its rotations, until
 * the attempt has ended (the supervisor wrote `exit.json`) and everything it wrote was sent.
 *
 * ```
 *   every pollMs: send what our open file gained
 *                 the path names another file (the supervisor rotated: ours became <log>.1)
 *                   ──► send the rest of ours, then <log>.1 if it is neither ours nor the new
 *                       one (more than one rotation between two looks: the file before it is
 *                       gone, so `gap`), then switch to the new file from its start
 *                 exit.json is there ──► send what is left, end
 *                 the task directory is gone (cleaned up) ──► end
 * ```
 *
 * Files are opened without following a final symlink and must be regular files (the task
 * writes its logs only through the supervisor's descriptors, never by path, but the directory's
 * names are checked all the same); they are read only up to the size fstat says.
 */
import { constants as fsConstants } from 'node:fs';
import { lstat, open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TASK_FILES } from './task-files.js';

/** How often a followed log is looked at. */
export const LOG_FOLLOW_POLL_MS = 250;
/** Most bytes read per read call. */
const READ_BYTES = 64 * 1024;

export interface FollowedFile {
  readonly handle: FileHandle;
  /** Bytes of it already sent. */
  readonly position: number;
}

export interface FollowOptions {
  /** The log's path (`<task dir>/stdout.log`); its rotated file is `<path>.1`. */
  readonly path: string;
  /** The task directory, where the supervisor writes `exit.json`. */
  readonly taskDir: string;
  /** Sends bytes to the client; resolves once they are taken (backpressure). */
  readonly write: (bytes: Buffer) => Promise<void>;
  /** Ends the follow (the client went away, the server closes). */
  readonly signal: AbortSignal;
  readonly pollMs?: number;
}

/** Sends what `file` holds past `position` now; returns the new position. */
async function drain(handle: FileHandle, position: number, write: (bytes: Buffer) => Promise<void>, signal: AbortSignal): Promise<number> {
  const { size } = await handle.stat();
  let at = position;
  while (at < size && !signal.aborted) {
    const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, size - at));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
    if (bytesRead === 0) break;
    at += bytesRead;
    await write(buffer.subarray(0, bytesRead));
  }
  return at;
}

async function openRegularFile(path: string): Promise<{ handle: FileHandle; ino: number } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  const info = await handle.stat().catch(() => undefined);
  if (info?.isFile() === true) return { handle, ino: info.ino };
  await handle.close();
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Follows the log from `from` (the current file, already sent up to `position`) until the
 * attempt ended or `signal` aborts. Resolves with whether output may have been skipped (`gap`).
 * Closes every file it opened, `from.handle` included.
 */
export async function followLog(from: FollowedFile, options: FollowOptions): Promise<{ gap: boolean }> {
  const { write, signal } = options;
  const pollMs = options.pollMs ?? LOG_FOLLOW_POLL_MS;
  let handle = from.handle;
  let ino = (await handle.stat()).ino;
  let position = from.position;
  let gap = false;
  try {
    while (!signal.aborted) {
      // Looked at before draining: if it is there now, everything the task wrote is in the files.
      const ended = await exists(join(options.taskDir, TASK_FILES.exit));
      position = await drain(handle, position, write, signal);
      const named = await lstat(options.path).catch(() => undefined);
      if (named === undefined) {
        if (!(await exists(options.taskDir))) return { gap };
      } else if (named.ino !== ino) {
        // Rotated since the last look: ours is <path>.1 (or gone) and takes no more writes.
        position = await drain(handle, position, write, signal);
        await handle.close();
        const rotated = await lstat(`${options.path}.1`).catch(() => undefined);
        if (rotated !== undefined && rotated.ino !== ino && rotated.ino !== named.ino) {
          // Rotated more than once: <path>.1 came after ours and is sent whole, but whether a file
          // between the two was replaced unread cannot be told, so the client hears of a gap.
          gap = true;
          const between = await openRegularFile(`${options.path}.1`);
          if (between !== undefined) {
            await drain(between.handle, 0, write, signal).finally(() => between.handle.close());
          }
        }
        const next = await openRegularFile(options.path);
        if (next === undefined) return { gap };
        handle = next.handle;
        ino = next.ino;
        position = 0;
        continue;
      }
      if (ended) {
        position = await drain(handle, position, write, signal);
        return { gap };
      }
      await sleep(pollMs, undefined, { signal }).catch(() => undefined);
    }
    return { gap };
  } finally {
    await handle.close().catch(() => undefined);
  }
}
