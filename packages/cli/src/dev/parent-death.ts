/**
 * How `omega dev`'s children learn that it died, however it died (SIGKILL and OOM included, where
 * no exit handler runs).
 *
 * ```
 *   'pdeathsig':  spawn setpriv --pdeathsig SIGKILL -- <command> <args>     (cell-state's dieWithParent)
 *                 setpriv sets the child's parent-death signal, then execs the command (same pid,
 *                 same process group): when omega dev dies, the kernel SIGKILLs the child.
 *                 etcd gets the same from cell-state's launcher.
 *   'pipe':       no setpriv with --pdeathsig. The child gets OMEGA_PARENT_PID and a stdin pipe
 *                 whose write end only omega dev holds; an entry point that calls cell-state's
 *                 exitWithParent() sees EOF (or its parent pid change) and stops.
 * ```
 * Both are always given (env and pipe), so an entry point that watches its parent is covered in
 * either mode.
 *
 * The parent-death signal fires when the *thread* that forked the child exits. Node spawns from
 * the event-loop (main) thread, which lives exactly as long as the process, so that is the same
 * as "when omega dev exits": spawn children only from the main thread, never from a worker. It is
 * kept across exec (setpriv execs the command; etcd and node are not set-uid). Known gap: if
 * omega dev dies in the instant between the fork and setpriv's prctl, that one child is not
 * signalled.
 */
import { dieWithParent } from '@omega/cell-state';

export type ParentDeathMode = 'pdeathsig' | 'pipe';

/** What `omega dev` says about each mode, for its console. */
export const PARENT_DEATH_DESCRIPTION: Readonly<Record<ParentDeathMode, string>> = {
  pdeathsig: 'children are SIGKILLed by the kernel if omega dev dies (setpriv --pdeathsig)',
  pipe: 'setpriv (util-linux) with --pdeathsig is missing: children see omega dev die only through their stdin pipe and OMEGA_PARENT_PID',
};

/** Which mode this host supports (found once, by cell-state). */
export function parentDeathMode(): ParentDeathMode {
  return dieWithParent('true', []).bound ? 'pdeathsig' : 'pipe';
}

/** The command line that runs `command args` so that it dies with this process (when the host can). */
export function withParentDeath(command: string, args: readonly string[]): { command: string; args: string[] } {
  const { command: run, args: runArgs } = dieWithParent(command, args);
  return { command: run, args: runArgs };
}
