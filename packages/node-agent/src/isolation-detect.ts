/**
 * What namespaces this host lets the agent give its tasks, found once at agent start by running
 * the supervisor binary in its probe mode (`omega-supervisor --probe`): it tries each unshare in
 * a throwaway child (a PID namespace whose pid 1 mounts a fresh /proc in a private mount
 * namespace; a mount namespace with a tmpfs on /tmp; a network namespace with loopback up) and
 * prints `{"pid":bool,"mount":bool,"network":bool}`. Trying is the only reliable test: root in
 * a container, seccomp, `user.max_*_namespaces` and LSMs all say no only when asked.
 *
 * `--isolation auto` (the default) uses whatever works; `none` uses nothing (the behaviour of
 * agents before namespaces: tasks share the host's /proc, /tmp and network). Non-root agents
 * get nothing: only root may unshare these.
 */
import { execFile } from 'node:child_process';
import { NETWORK_NONE_ATTRIBUTE } from '@omega/cell-state';
import { NO_ISOLATION, type HostIsolation } from './isolation.js';

/** `--isolation`: use what the host allows (`auto`, the default) or nothing (`none`). */
export type IsolationMode = 'auto' | 'none';
export const ISOLATION_MODES: readonly IsolationMode[] = ['auto', 'none'];

/** Machine attribute set to `true` when tasks get their own PID namespace, /proc and /tmp. */
export const PID_ISOLATION_ATTRIBUTE = 'omega.isolation.pid';
export { NETWORK_NONE_ATTRIBUTE };

/** What the probe found and what the agent uses; `problem` says why something is off. */
export interface IsolationDetection {
  readonly found: { readonly pid: boolean; readonly mount: boolean; readonly network: boolean };
  readonly use: HostIsolation;
  readonly problem?: string;
}

const NOTHING = { pid: false, mount: false, network: false };

/**
 * Probes the host (unless `mode` is `none` or the agent is not root) and returns what tasks
 * get. Never throws: a probe that cannot run gives no isolation, with the reason in `problem`.
 */
export async function detectIsolation(options: { readonly supervisorPath: string; readonly mode: IsolationMode; readonly isRoot?: boolean }): Promise<IsolationDetection> {
  if (options.mode === 'none') return { found: NOTHING, use: NO_ISOLATION, problem: 'disabled by --isolation none' };
  if (!(options.isRoot ?? process.getuid?.() === 0)) return { found: NOTHING, use: NO_ISOLATION, problem: 'the agent does not run as root' };
  let found: IsolationDetection['found'];
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(options.supervisorPath, ['--probe'], { timeout: 10_000 }, (error, out) => (error === null ? resolve(out) : reject(error)));
    });
    const parsed = JSON.parse(stdout) as Record<string, unknown>;
    found = { pid: parsed.pid === true, mount: parsed.mount === true, network: parsed.network === true };
  } catch (error) {
    return { found: NOTHING, use: NO_ISOLATION, problem: `the supervisor's probe failed: ${(error as Error).message}` };
  }
  // The PID namespace's own /proc needs the mount namespace: one without the other is not used.
  const use: HostIsolation = { pid: found.pid && found.mount, networkNone: found.network };
  const missing = [!use.pid ? 'pid+mount namespaces' : undefined, !use.networkNone ? 'network namespace' : undefined].filter((m) => m !== undefined);
  return { found, use, ...(missing.length > 0 ? { problem: `the host refused: ${missing.join(', ')}` } : {}) };
}

/** The machine attributes that say what isolation tasks get here (how jobs select machines). */
export function isolationAttributes(use: HostIsolation): Record<string, string> {
  return { [PID_ISOLATION_ATTRIBUTE]: String(use.pid), [NETWORK_NONE_ATTRIBUTE]: String(use.networkNone) };
}
