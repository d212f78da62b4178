/**
 * A cgroup2 (unified) hierarchy mounted in a private mount namespace, for tests that must run a
 * cgroup v2 driver on the real kernel on a host whose `/sys/fs/cgroup` is v1 (or hybrid).
 *
 * A holder process (`unshare --mount --propagation private`, from util-linux) mounts cgroup2 on
 * a temporary directory and then waits on its stdin; the mount exists only in its namespace, so
 * the host's mount table never changes. This process reaches the mount through
 * `/proc/<holder>/root/<dir>` (root can walk another namespace's mounts that way), so the driver
 * under test runs here, with assertions and errors in the test runner.
 *
 * The kernel has one unified hierarchy: cgroups made under this mount are the same ones the host
 * sees in its own cgroup2 mount (if any), and they outlive the namespace. Remove them before
 * {@link PrivateCgroup2.stop}. Controllers bound to a v1 hierarchy are not available in v2 at the
 * same time: `cgroup.controllers` lists only the free ones.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dieWithParent } from '@omega/cell-state';

export interface PrivateCgroup2 {
  /** The hierarchy's root as this process sees it: `/proc/<holder>/root/<mount point>`. */
  readonly root: string;
  /** The controllers the kernel offers this hierarchy (its root's `cgroup.controllers`). */
  readonly controllers: readonly string[];
  /** Ends the holder (its namespace and the mount go with it) and removes the mount point. */
  stop(): Promise<void>;
}

/**
 * Mounts a cgroup2 hierarchy in a new private mount namespace. Resolves with why not (a value,
 * for the caller to skip loudly) when `unshare` is missing or the kernel refuses the namespace
 * or the mount. The holder dies with this process (`setpriv --pdeathsig` where available) and
 * also when its stdin closes.
 */
export async function mountPrivateCgroup2(timeoutMs = 10_000): Promise<PrivateCgroup2 | { readonly problem: string }> {
  const mountPoint = await mkdtemp(join(tmpdir(), 'omega-cgroup2-'));
  const script = 'mount -t cgroup2 none "$1" && echo mounted && exec cat >/dev/null';
  const command = dieWithParent('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', mountPoint]);
  const child = spawn(command.command, command.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }
    await rmdir(mountPoint).catch(() => undefined);
  };
  const mounted = await new Promise<true | string>((resolve) => {
    const timer = setTimeout(() => resolve(`the holder did not mount cgroup2 within ${timeoutMs} ms: ${output.trim()}`), timeoutMs);
    const settle = (result: true | string): void => {
      clearTimeout(timer);
      resolve(result);
    };
    child.once('error', (error) => settle(`cannot run unshare: ${error.message}`));
    child.once('exit', (code, signal) => settle(`unshare --mount / mount -t cgroup2 failed (exit ${code ?? signal}): ${output.trim()}`));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('mounted')) settle(true);
    });
  });
  if (mounted !== true || child.pid === undefined) {
    await stop();
    return { problem: mounted === true ? 'the holder has no pid' : mounted };
  }
  // setpriv, unshare (without --fork) and sh all exec: the holder's pid is the namespace's.
  const root = `/proc/${child.pid}/root${mountPoint}`;
  let controllers: string;
  try {
    controllers = await readFile(join(root, 'cgroup.controllers'), 'utf8');
  } catch (error) {
    await stop();
    return { problem: `the cgroup2 mount is not reachable through ${root}: ${(error as Error).message}` };
  }
  return { root, controllers: controllers.trim().split(/\s+/).filter((c) => c.length > 0), stop };
}
