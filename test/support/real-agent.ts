/**
 * A node agent on the real kernel for integration tests: root and writable cgroups detected once
 * per test file (skipped loudly otherwise), an Agent with a ProcessExecutor over a MemoryKv (the
 * cell store is not what is under test), and a teardown that leaves no cgroup or data dir behind.
 * The executor runs the built supervisor: `tsc -b` first.
 */
import { chmod, mkdtemp, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cell, MemoryKv, type CellMirror, type MachineId, type Task } from '@omega/cell-state';
import { freshCellName } from '@omega/cell-state/testing';
import { Agent, detectCgroupDriver, ProcessExecutor, type CgroupDriver, type ProcessExecutorOptions } from '@omega/node-agent';

/** What a test file may run on: a driver, or why it is skipped. */
export interface RealCgroups {
  /** The cgroup driver under `parent`; undefined when skipped. */
  readonly driver: CgroupDriver | undefined;
  /** Why the tests are skipped; undefined when they run. */
  readonly skipWhy: string | undefined;
  /** Whether the tests are skipped (`skipWhy !== undefined`). */
  readonly skip: boolean;
}

/**
 * Detects root and writable cgroups for the tests under `parent` (a cgroup name unique to the
 * file). When the tests cannot run, prints `SKIPPED: <what> because <reason>` once, so a skip is
 * never silent. Call once at the top of a test file.
 */
export async function detectRealCgroups(parent: string, what: string): Promise<RealCgroups> {
  const isRoot = process.getuid?.() === 0;
  const detection = isRoot ? await detectCgroupDriver({ parent }) : { driver: undefined, problem: 'the tests do not run as root' };
  const skipWhy = !isRoot ? 'the tests do not run as root' : detection.driver === undefined ? `cgroups are not writable here: ${detection.problem}` : undefined;
  if (skipWhy !== undefined) console.warn(`SKIPPED: ${what} because ${skipWhy}`);
  return { driver: detection.driver, skipWhy, skip: skipWhy !== undefined };
}

/** Whether a task attempt's record says it ended the way an agent reports it (a finish time, a terminal state). */
export function attemptEnded(t: Task | undefined): boolean {
  return t !== undefined && t.finishedAtMs > 0 && ['succeeded', 'failed', 'killed'].includes(t.state);
}

/** Whether a process is gone (or a zombie: dead, waiting for a parent that never reaps). */
export async function processGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** The executor options a test chooses; the rest are wired by {@link startRealAgent}. */
export type RealExecutorOptions = Omit<ProcessExecutorOptions, 'dataDir' | 'machineId' | 'reporter' | 'cgroups'>;

export interface RealAgentOptions {
  /** The driver from {@link detectRealCgroups}. */
  readonly driver: CgroupDriver;
  /** The parent cgroup name the driver was detected under; removed per controller on stop. */
  readonly parent: string;
  /** The agent's one machine (64 cores, 64 GiB). */
  readonly machineId: MachineId;
  /** Prefix of the temporary data dir. */
  readonly dataDirPrefix: string;
  /** Passed to every ProcessExecutor the agent makes (task user or uids, log cap, grace, ...). */
  readonly executor: RealExecutorOptions;
}

export interface RealAgent {
  readonly kv: MemoryKv;
  readonly cell: Cell;
  readonly mirror: CellMirror;
  /** The running agent (a new one after {@link RealAgent.restartAgent}). */
  readonly agent: Agent;
  /** The agent's data dir, mode 0755 so task users can reach their work dirs. */
  readonly dataDir: string;
  readonly driver: CgroupDriver;
  /** Stops the agent without drain (its tasks keep running) and starts a new one that adopts them. */
  restartAgent(): Promise<void>;
  /** Stops whatever a failed test left running (drain), the mirror and store, then removes the parent cgroups and the data dir. */
  stop(): Promise<void>;
}

/** Starts an agent with a ProcessExecutor over a fresh MemoryKv cell, and its mirror. */
export async function startRealAgent(options: RealAgentOptions): Promise<RealAgent> {
  const { driver, parent, machineId } = options;
  const dataDir = await mkdtemp(join(tmpdir(), options.dataDirPrefix));
  // mkdtemp makes 0700: the task user must be able to reach its working directory.
  await chmod(dataDir, 0o755);
  const kv = new MemoryKv();
  const cell = new Cell(kv, freshCellName());
  const newAgent = (): Agent =>
    new Agent({
      cell,
      machines: [{ id: machineId, capacity: { cpuMillis: 64_000, memoryBytes: 64 * 1024 ** 3 } }],
      executor: async ({ reporter }) => {
        const executor = new ProcessExecutor({ ...options.executor, dataDir, machineId, reporter, cgroups: driver });
        await executor.init();
        return executor;
      },
      flushIntervalMs: 20,
    });
  let agent = newAgent();
  await agent.start();
  const mirror = cell.mirror();
  await mirror.start();
  return {
    kv,
    cell,
    mirror,
    get agent() {
      return agent;
    },
    dataDir,
    driver,
    async restartAgent() {
      await agent.stop({ drain: false });
      agent = newAgent();
      await agent.start();
    },
    async stop() {
      await agent.stop({ drain: true });
      await mirror.stop();
      await kv.close();
      for (const controller of driver.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) {
        await rmdir(join(driver.root, controller, parent)).catch(() => undefined);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
