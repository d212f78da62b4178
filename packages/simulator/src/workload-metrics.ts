/**
 * Per-workload metrics of a simulation, observed from the outside (a mirror and the attempt
 * probes), never from a scheduler's private bookkeeping, so they also check the schedulers' own
 * counts ("metrics add up"):
 *
 * - jobs submitted, fully scheduled (every task placed once), abandoned (the owner's status says
 *   it gave up), still queued (the rest), per job kind;
 * - wait to first attempt (from the probes) and to fully scheduled (from the mirror: the instant
 *   the job's last task record appears), mean and p90;
 * - cell CPU and memory utilization: live claims over capacity, sampled at a fixed period. The
 *   used total is kept incrementally from task records (a task's resources count from its
 *   `placed` record until its terminal one; in the simulation tasks never restart and nothing is
 *   preempted), because summing 10,000 machines' claims per sample cost more than the rest of
 *   the simulation; `utilizationDrift()` compares it with a full count at the end.
 */
import { isTerminal, parseTaskId, type CellMirror, type CellSnapshot, type JobId, type JobKind } from '@omega/cell-state';
import { LatencyHistogram, isAbandonedStatus, type Clock, type LatencySummary } from '@omega/scheduler-core';
import type { AttemptLog } from './policies.js';
import { PREFILL_JOB } from './sim-cell.js';
import type { VirtualClock } from './virtual-clock.js';

export interface WorkloadSummary {
  readonly kind: JobKind;
  readonly jobsSubmitted: number;
  readonly jobsFullyScheduled: number;
  readonly jobsAbandoned: number;
  /** Submitted, neither fully scheduled nor abandoned at the end. */
  readonly jobsStillQueued: number;
  /** Jobs attempted at least once, and attempts in all. */
  readonly jobsAttempted: number;
  readonly attempts: number;
  readonly tasksSubmitted: number;
  readonly tasksPlaced: number;
  readonly waitFirstAttempt: LatencySummary;
  readonly waitFullyScheduled: LatencySummary;
}

export interface UtilizationSummary {
  /** Time-averaged over the samples. */
  readonly cpuMean: number;
  readonly memoryMean: number;
  /** At the end of the run. */
  readonly cpuFinal: number;
  readonly memoryFinal: number;
  readonly samples: number;
}

interface JobTrack {
  readonly kind: JobKind;
  readonly submittedAtMs: number;
  readonly instances: number;
  placed: number;
}

/** Live claims' share of capacity, by resource. O(machines x claims per machine). */
export function utilization(snapshot: CellSnapshot): { cpu: number; memory: number } {
  let cpuUsed = 0;
  let memUsed = 0;
  let cpuCap = 0;
  let memCap = 0;
  for (const m of snapshot.machines()) {
    const used = snapshot.used(m.id);
    cpuUsed += used.cpuMillis;
    memUsed += used.memoryBytes;
    cpuCap += m.capacity.cpuMillis;
    memCap += m.capacity.memoryBytes;
  }
  return { cpu: cpuCap === 0 ? 0 : cpuUsed / cpuCap, memory: memCap === 0 ? 0 : memUsed / memCap };
}

export class WorkloadMetrics {
  private readonly jobs = new Map<JobId, JobTrack>();
  private readonly fully: Record<JobKind, LatencyHistogram> = { batch: new LatencyHistogram(), service: new LatencyHistogram() };
  private readonly fullyCount: Record<JobKind, number> = { batch: 0, service: 0 };
  private readonly submitted: Record<JobKind, { jobs: number; tasks: number }> = { batch: { jobs: 0, tasks: 0 }, service: { jobs: 0, tasks: 0 } };
  private readonly placed: Record<JobKind, number> = { batch: 0, service: 0 };
  private cpuSum = 0;
  private memSum = 0;
  private samples = 0;
  /** Live resources of every task (prefill included), kept from task changes; capacity fixed. */
  private cpuUsed = 0;
  private memUsed = 0;
  private cpuCapacity = 0;
  private memCapacity = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly mirror: CellMirror,
    private readonly clock: Clock,
    private readonly attempts: AttemptLog,
  ) {}

  /** Starts observing task placements. Call before the first job is submitted. */
  start(): void {
    const initial = this.mirror.snapshot();
    for (const m of initial.machines()) {
      const used = initial.used(m.id);
      this.cpuUsed += used.cpuMillis;
      this.memUsed += used.memoryBytes;
      this.cpuCapacity += m.capacity.cpuMillis;
      this.memCapacity += m.capacity.memoryBytes;
    }
    this.unsubscribe = this.mirror.onChange((change) => {
      if (change.full) return;
      for (const c of change.changes) {
        if (c.kind !== 'task' || c.type !== 'put') continue;
        // As held now, without freezing a snapshot per batch (see CellMirror.task).
        const task = this.mirror.task(c.id as Parameters<CellSnapshot['task']>[0]);
        if (task === undefined) continue;
        if (task.state === 'placed') {
          this.cpuUsed += task.resources.cpuMillis;
          this.memUsed += task.resources.memoryBytes;
        } else if (isTerminal(task.state)) {
          this.cpuUsed -= task.resources.cpuMillis;
          this.memUsed -= task.resources.memoryBytes;
        }
        const parsed = parseTaskId(c.id);
        if (parsed === undefined || parsed.jobId === PREFILL_JOB) continue;
        const track = this.jobs.get(parsed.jobId);
        if (track === undefined) continue;
        // A first placement: attempt 1, as committed. Agent reports of the same task come later
        // with a terminal state; restarts (attempt > 1) are not first placements.
        if (task.attempt !== 1 || task.state !== 'placed') continue;
        track.placed++;
        this.placed[track.kind]++;
        if (track.placed === track.instances) {
          this.fully[track.kind].add(this.clock.now() - track.submittedAtMs);
          this.fullyCount[track.kind]++;
        }
      }
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** A job was submitted (call when it is written). */
  submittedJob(id: JobId, kind: JobKind, instances: number, submittedAtMs: number): void {
    this.jobs.set(id, { kind, submittedAtMs, instances, placed: 0 });
    this.submitted[kind].jobs++;
    this.submitted[kind].tasks += instances;
  }

  /** Samples utilization now, every `periodMs` of virtual time from now until `untilMs`. */
  sampleEvery(clock: VirtualClock, periodMs: number, untilMs: number): void {
    const tick = (): void => {
      this.sample();
      if (clock.now() + periodMs <= untilMs) clock.at(clock.now() + periodMs, tick);
    };
    tick();
  }

  sample(): void {
    const u = this.current();
    this.cpuSum += u.cpu;
    this.memSum += u.memory;
    this.samples++;
  }

  /** Utilization now, from the incremental totals. */
  current(): { cpu: number; memory: number } {
    return { cpu: this.cpuCapacity === 0 ? 0 : this.cpuUsed / this.cpuCapacity, memory: this.memCapacity === 0 ? 0 : this.memUsed / this.memCapacity };
  }

  /**
   * The largest difference (in fractions of capacity) between the incremental totals and a full
   * count of live claims now: 0 when the bookkeeping is right.
   */
  utilizationDrift(): number {
    const full = utilization(this.mirror.snapshot());
    const mine = this.current();
    return Math.max(Math.abs(full.cpu - mine.cpu), Math.abs(full.memory - mine.memory));
  }

  utilization(): UtilizationSummary {
    const final = this.current();
    const n = Math.max(1, this.samples);
    return { cpuMean: this.samples === 0 ? final.cpu : this.cpuSum / n, memoryMean: this.samples === 0 ? final.memory : this.memSum / n, cpuFinal: final.cpu, memoryFinal: final.memory, samples: this.samples };
  }

  /** Per-kind summary as of now (reads the owners' statuses for abandoned jobs). */
  summary(kind: JobKind): WorkloadSummary {
    const snapshot = this.mirror.snapshot();
    let abandoned = 0;
    for (const [id, track] of this.jobs) {
      if (track.kind !== kind || track.placed >= track.instances) continue;
      if (isAbandonedStatus(snapshot.status(id))) abandoned++;
    }
    const fully = this.fullyCount[kind];
    const a = this.attempts.byKind[kind];
    return {
      kind,
      jobsSubmitted: this.submitted[kind].jobs,
      jobsFullyScheduled: fully,
      jobsAbandoned: abandoned,
      jobsStillQueued: this.submitted[kind].jobs - fully - abandoned,
      jobsAttempted: a.jobs,
      attempts: a.attempts,
      tasksSubmitted: this.submitted[kind].tasks,
      tasksPlaced: this.placed[kind],
      waitFirstAttempt: a.waitFirstAttempt.summary(),
      waitFullyScheduled: this.fully[kind].summary(),
    };
  }

  /** Tasks of submitted jobs that are live (placed, not ended) now. */
  liveTasks(): number {
    const snapshot = this.mirror.snapshot();
    let live = 0;
    for (const id of this.jobs.keys()) for (const t of snapshot.tasksOf(id)) if (!isTerminal(t.state)) live++;
    return live;
  }
}
