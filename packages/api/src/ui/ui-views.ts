/**
 * What the web UI shows, as JSON: built from the same view functions as the gRPC API
 * (machineViews, jobView, deriveJob, schedulerStatsViews) and filtered by the same policy, so
 * the UI shows exactly what `ListMachines`, `ListJobs`, `GetJob` and `GetSchedulerStats` would
 * answer the same token. Pure over a snapshot.
 */
import { jobId as toJobId, type CellSnapshot, type Job, type JobVersion } from '@omega/cell-state';
import { allows, authorize, type Caller } from '../auth/policy.js';
import { machineView, schedulerStatsViews } from '../cell-service.js';
import { notFound } from '../errors.js';
import { deriveJob, jobView, jobViewToWire, type JobFacts } from '../job-view.js';
import type { WireJobView, WireMachineView, WireSchedulerStatsView } from '../wire.js';

/** Most jobs the overview lists (newest first); `jobsTruncated` says more exist. */
export const OVERVIEW_MAX_JOBS = 500;
/**
 * Most machines the overview lists (by id): a cell of 100,000 hollow machines would otherwise
 * send megabytes per update. The totals cover every machine.
 */
export const OVERVIEW_MAX_MACHINES = 500;

/** Who the page is shown to (never the token itself). */
export interface SessionView {
  readonly name: string;
  readonly role: string;
  readonly namespaces: readonly string[];
  /** The server asks for no token (`--insecure`). */
  readonly insecure: boolean;
}

export interface OverviewView {
  readonly cell: string;
  readonly revision: number;
  /** The first {@link OVERVIEW_MAX_MACHINES} machines by id, as ListMachines shows them. */
  readonly machines: WireMachineView[];
  /** Every machine of the cell, listed or not. */
  readonly machineTotals: { readonly machines: number; readonly alive: number };
  /** ListJobs' views without tasks (task_counts filled), newest first, of the namespaces the caller holds. */
  readonly jobs: WireJobView[];
  readonly jobsTruncated: boolean;
  readonly schedulers: WireSchedulerStatsView[];
}

export interface JobVersionSummary {
  readonly version: number;
  readonly atMs: number;
  readonly by: string;
  readonly change: string;
  readonly instances: number;
  readonly current: boolean;
}

export interface JobPageView {
  readonly revision: number;
  /** GetJob's view (tasks included). */
  readonly job: WireJobView;
  readonly ended: boolean;
}

export function sessionView(caller: Caller): SessionView {
  return { name: caller.name, role: caller.role, namespaces: [...caller.namespaces], insecure: caller.via === 'none' };
}

/** The overview: every machine, the caller's jobs (as ListJobs without tasks), every scheduler's stats. */
export function overviewView(snapshot: CellSnapshot, cell: string, caller: Caller): OverviewView {
  const newestFirst = [...snapshot.jobs()].sort((a: Job, b: Job) => b.submittedAtMs - a.submittedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const jobs: WireJobView[] = [];
  let jobsTruncated = false;
  for (const job of newestFirst) {
    if (!allows(caller, 'read-jobs', job.spec.namespace)) continue;
    if (jobs.length >= OVERVIEW_MAX_JOBS) {
      jobsTruncated = true;
      break;
    }
    const facts: JobFacts = { job, status: snapshot.status(job.id), owner: snapshot.owner(job.id)?.scheduler, tasks: [...snapshot.tasksOf(job.id)] };
    jobs.push(jobViewToWire(facts, deriveJob(facts), { includeTasks: false }));
  }
  const all = [...snapshot.machines()];
  let alive = 0;
  for (const m of all) if (snapshot.alive(m.id) !== undefined) alive++;
  const listed = all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, OVERVIEW_MAX_MACHINES);
  return {
    cell,
    revision: snapshot.revision,
    machines: listed.map((m) => machineView(snapshot, m)),
    machineTotals: { machines: all.length, alive },
    jobs,
    jobsTruncated,
    schedulers: schedulerStatsViews(snapshot),
  };
}

/**
 * One job's page, as GetJob answers it: NOT_FOUND for an unknown job, PERMISSION_DENIED (as
 * GetJob) for a job of a namespace the caller does not hold. Throws {@link ApiError}.
 */
export function jobPageView(snapshot: CellSnapshot, id: string, caller: Caller): JobPageView {
  const jobId = toJobId(id);
  const job = snapshot.job(jobId);
  if (job === undefined) throw notFound(`job ${id} not found`);
  authorize(caller, 'read-jobs', job.spec.namespace);
  const found = jobView(snapshot, jobId);
  if (found === undefined) throw notFound(`job ${id} not found`);
  return { revision: snapshot.revision, job: found.view, ended: found.ended };
}

/** The job's versions, newest first (GetJobHistory's, without each spec). */
export function versionSummaries(versions: readonly JobVersion[]): JobVersionSummary[] {
  return versions.map((v, i) => ({ version: v.version, atMs: v.atMs, by: v.by, change: v.change, instances: v.spec.instances, current: i === 0 }));
}
