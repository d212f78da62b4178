/**
 * Checks of a cell as stored, for scheduler tests and properties: the design's invariants 1 and
 * 2 (no machine over its capacity, no task with two live claims), and "no job lost" (every job
 * is fully placed, finished, or has a status saying why not).
 *
 * They read the store through a fresh mirror (one paged list at one revision, then stopped), not
 * through any scheduler's replica, so a scheduler's stale view cannot hide a violation.
 */
import type { Cell, CellSnapshot, ClaimId, JobId, TaskId } from '@omega/cell-state';
import { assessJob } from '../job-progress.js';
import { DEFAULT_SETTINGS } from '../settings.js';

/** The cell as the store holds it now. */
export async function readStoredCell(cell: Cell): Promise<CellSnapshot> {
  const mirror = cell.mirror();
  await mirror.start();
  const snapshot = mirror.snapshot();
  await mirror.stop();
  return snapshot;
}

/** Invariants 1 and 2 of DESIGN.md; one line per violation (empty when sound). */
export function placementViolations(snapshot: CellSnapshot): string[] {
  const out: string[] = [];
  const liveClaimsOf = new Map<TaskId, string[]>();
  const claimIds = new Set<ClaimId>();
  for (const m of snapshot.machines()) {
    let cpu = 0;
    let memory = 0;
    for (const c of m.claims) {
      if (claimIds.has(c.id)) out.push(`claim ${c.id} appears twice`);
      claimIds.add(c.id);
      if (c.machineId !== m.id) out.push(`claim ${c.id} on machine ${m.id} says machine ${c.machineId}`);
      if (!snapshot.isLive(c)) continue;
      cpu += c.resources.cpuMillis;
      memory += c.resources.memoryBytes;
      const list = liveClaimsOf.get(c.taskId) ?? [];
      list.push(`${m.id}:${c.id}`);
      liveClaimsOf.set(c.taskId, list);
    }
    if (cpu > m.capacity.cpuMillis) out.push(`machine ${m.id} over capacity: cpu ${cpu} > ${m.capacity.cpuMillis}`);
    if (memory > m.capacity.memoryBytes) out.push(`machine ${m.id} over capacity: memory ${memory} > ${m.capacity.memoryBytes}`);
  }
  for (const [task, claims] of liveClaimsOf) if (claims.length > 1) out.push(`task ${task} has ${claims.length} live claims: ${claims.join(', ')}`);
  return out;
}

/** How each job stands, for "no job lost". */
export interface JobAnswer {
  readonly jobId: JobId;
  /** `placed`: every task is live or ended for good; `finished`/`reported`: its status says so / why. */
  readonly answer: 'placed' | 'finished' | 'reported' | 'none';
  readonly detail: string;
}

/**
 * Every job's answer at time `nowMs`. A job has one when it is fully placed, its status is
 * finished (succeeded, failed, killed), or its status is `unschedulable` with a reason.
 */
export function jobAnswers(snapshot: CellSnapshot, nowMs: number): JobAnswer[] {
  const out: JobAnswer[] = [];
  for (const job of snapshot.jobs()) {
    const status = snapshot.status(job.id);
    const state = status?.state;
    if (state === 'succeeded' || state === 'failed' || state === 'killed') {
      out.push({ jobId: job.id, answer: 'finished', detail: `${state}: ${status?.reason ?? ''}` });
      continue;
    }
    if (job.desired === 'running' && job.spec.instances > 0) {
      const progress = assessJob(job, snapshot, nowMs, DEFAULT_SETTINGS);
      if (progress.fullyPlaced) {
        out.push({ jobId: job.id, answer: 'placed', detail: `${progress.live.length} live tasks` });
        continue;
      }
    }
    if (state === 'unschedulable' && status !== undefined && status.reason !== '') {
      out.push({ jobId: job.id, answer: 'reported', detail: status.reason });
      continue;
    }
    out.push({ jobId: job.id, answer: 'none', detail: status === undefined ? 'no status' : `${status.state}: ${status.reason}` });
  }
  return out;
}

/** Jobs without an answer (see {@link jobAnswers}), one line each. */
export function lostJobs(snapshot: CellSnapshot, nowMs: number): string[] {
  return jobAnswers(snapshot, nowMs)
    .filter((a) => a.answer === 'none')
    .map((a) => `job ${a.jobId}: ${a.detail}`);
}
