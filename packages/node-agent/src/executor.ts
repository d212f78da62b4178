/**
 * The contract between the agent (which decides what runs, from the cell state) and an executor
 * (which runs it): real processes in cgroups (task-runner.ts) or timers on hollow machines
 * (hollow.ts). The agent never looks at processes; executors never look at the cell state
 * beyond the records they are handed, and report outcomes through the shared StatusReporter.
 */
import type { CellSnapshot, JobId, Job, MachineId, Task, TaskId } from '@omega/cell-state';

/** One attempt of one task on one machine, from start to reported outcome. */
export interface TaskAttempt {
  readonly taskId: TaskId;
  readonly jobId: JobId;
  readonly claimId: string;
  readonly machineId: MachineId;
  /**
   * Resolves once the attempt is over and its processes are gone (its cgroup removed). The
   * outcome may still be on its way to the cell. Never rejects.
   */
  readonly ended: Promise<void>;
  /** Resolves once the outcome was reported (or could not be: the reporter closed). Never rejects. */
  readonly done: Promise<void>;
  /**
   * Stops the attempt: TERM to all its processes, a grace period (`graceMs`, default the
   * agent's kill grace; 0: KILL at once), then KILL. `reason` is
   * written with state `killed` when the agent itself decided the stop (`job-killed`,
   * `machine-drained`); leave it undefined when the record already says why (`preempted`) or
   * the attempt is stale. Idempotent; resolves like {@link ended}.
   */
  stop(reason?: string, graceMs?: number): Promise<void>;
  /**
   * Forgets the attempt without touching its processes (agent shutdown without drain): the
   * attempt keeps running and is adopted by the next agent on this machine.
   */
  detach(): void;
}

/** Runs the task attempts of the machine(s) one agent process serves. */
export interface Executor {
  /**
   * Called once, after the mirror is current and before any `start`: the attempts that were
   * running (or ended unreported) when a previous agent on this machine stopped. Attempts that
   * never got to run are cleaned up and not returned, so the agent starts them again.
   */
  recover(snapshot: CellSnapshot): Promise<TaskAttempt[]>;
  /**
   * Starts a placed task attempt (`task` at its claim, `job` its job). Never throws: a task
   * that cannot be started ends `failed` with a reason.
   */
  start(task: Task, job: Job): TaskAttempt;
  /** Releases timers; attempts must already be stopped or detached. */
  close(): Promise<void>;
}
