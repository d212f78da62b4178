/**
 * Which namespaces a task starts in: what the agent found the host allows (isolation-detect.ts),
 * what it was told to use (`--isolation auto|none`) and what the job asks (`network: none`).
 *
 * By default (`auto`) every task gets what the host allows: its own PID namespace with its own
 * /proc and a mount namespace with a private /tmp. A network namespace is given only to jobs
 * that ask `network: none`; a job asking it of an agent that cannot give it fails with reason
 * {@link ISOLATION_UNAVAILABLE} instead of running with the host's network.
 */
import type { TaskNetwork } from '@omega/cell-state';
import type { SupervisorIsolation } from './supervisor-command.js';

/** What the agent uses on this host (after detection and `--isolation`). */
export interface HostIsolation {
  /** Tasks get their own PID namespace and /proc, and a mount namespace with a private /tmp. */
  readonly pid: boolean;
  /** Tasks that ask `network: none` can get a network namespace with only loopback. */
  readonly networkNone: boolean;
}

/** No isolation: what `--isolation none`, a non-root agent or a host that allows nothing gives. */
export const NO_ISOLATION: HostIsolation = { pid: false, networkNone: false };

/** The failure reason of a task that asks for isolation its agent cannot give. */
export const ISOLATION_UNAVAILABLE = 'isolation-unavailable';

/** A job asks for isolation this agent cannot give; the attempt ends failed, reason {@link ISOLATION_UNAVAILABLE}. */
export class IsolationUnavailableError extends Error {
  readonly retryable = false;
  readonly reason = ISOLATION_UNAVAILABLE;
  constructor(readonly missing: readonly string[]) {
    super(`the job asks for isolation this machine cannot give: ${missing.join(', ')}`);
    this.name = 'IsolationUnavailableError';
  }
}

/**
 * The namespaces a task of network `network` starts in on a host using `host` (undefined: none).
 * Throws {@link IsolationUnavailableError} when the job asks what the host cannot give.
 */
export function taskIsolation(host: HostIsolation | undefined, network: TaskNetwork | undefined): SupervisorIsolation | undefined {
  const use = host ?? NO_ISOLATION;
  const networkNone = network === 'none';
  if (networkNone && !use.networkNone) throw new IsolationUnavailableError(['network: none (a network namespace of its own; this agent has none to give: see its --isolation and start log)']);
  if (!use.pid && !networkNone) return undefined;
  return { pidNamespace: use.pid, networkNone };
}
