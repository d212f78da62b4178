/**
 * `UpdateJob` and `GetJobHistory` of `omega.v1.JobService`: new versions of a job's spec (a new
 * spec, a new instance count, or an earlier version's spec) and the list of its versions.
 *
 * ```
 *  UpdateJob ──► which job: job_id, or (empty) the one job of the spec's name and namespace that has not ended
 *            ──► authorize submit-jobs in its namespace (the same rule as SubmitJob)
 *            ──► the job has ended (succeeded, failed, killed): FAILED_PRECONDITION
 *            ──► Cell.updateJob: validated like a submit (INVALID_ARGUMENT naming the field; a
 *                changed kind, name or namespace too), quota when the job grows
 *                (RESOURCE_EXHAUSTED), guarded by the job's revision; expected_version that no
 *                longer holds: FAILED_PRECONDITION; an unchanged spec: changed = false
 *            ──► the job's view at the revision written
 * ```
 * Services replace their instances in steps (the scheduler's rolling update); batch jobs use
 * the new spec for attempts placed after the update. A resend of an update (lost reply) finds
 * the job at the version it wrote and answers the same.
 */
import { status, type ServerUnaryCall } from '@grpc/grpc-js';
import { describeExcess, type Job, type JobChange, type JobId, type JobVersion } from '@omega/cell-state';
import type { Logger } from 'pino';
import { callerOf } from './auth/guarded-server.js';
import { authorize } from './auth/policy.js';
import { requestJobId, type CellReader } from './cell-reader.js';
import { ApiError, failedPrecondition, invalidArgument, notFound } from './errors.js';
import { jobSpecFromWire, jobSpecToWire, problemsMessage } from './job-spec-wire.js';
import { deriveJob, jobFacts, jobView } from './job-view.js';
import type { JobIdRequest, UpdateJobRequest, WireJobVersionView, WireJobView } from './wire.js';

export interface UpdateJobReply {
  job: WireJobView;
  changed: boolean;
  version: number;
  change: string;
}

/** The handlers; `reader` gives the cell and fresh snapshots. */
export function jobUpdateHandlers(reader: CellReader, logger: Logger): {
  updateJob: (request: UpdateJobRequest, call: ServerUnaryCall<unknown, unknown>) => Promise<UpdateJobReply>;
  getJobHistory: (request: JobIdRequest, call: ServerUnaryCall<unknown, unknown>) => Promise<{ versions: WireJobVersionView[] }>;
} {
  const cell = reader.cell;

  /** The change a request asks for: exactly one of a spec, a scale, a rollback. */
  function changeOf(request: UpdateJobRequest): JobChange {
    const asked = [request.job !== null && request.job !== undefined, request.scale === true, request.rollback === true].filter(Boolean).length;
    if (asked !== 1) throw invalidArgument('job', 'give exactly one of job (a new spec), scale (with instances) or rollback (with rollback_to)');
    if (request.scale) {
      if (!Number.isSafeInteger(request.instances) || request.instances < 1) throw invalidArgument('instances', 'must be an integer >= 1');
      return { kind: 'scale', instances: request.instances };
    }
    if (request.rollback) return { kind: 'rollback', ...(request.rollback_to > 0 ? { toVersion: request.rollback_to } : {}) };
    const result = jobSpecFromWire(request.job);
    if (result.problems !== undefined) throw new ApiError(status.INVALID_ARGUMENT, problemsMessage(result.problems));
    return { kind: 'spec', spec: result.spec, ...(Object.keys(result.secretEnv).length > 0 ? { secretEnv: result.secretEnv } : {}) };
  }

  /** The job an update names: by id, or by the spec's name among the jobs of its namespace that have not ended. */
  async function target(request: UpdateJobRequest, change: JobChange, call: ServerUnaryCall<unknown, unknown>): Promise<JobId> {
    if ((request.job_id ?? '') !== '') return requestJobId('job_id', request.job_id);
    if (change.kind !== 'spec') throw invalidArgument('job_id', 'is required to scale or roll back a job');
    const { name, namespace } = change.spec;
    // Decided before anything is told about the namespace's jobs.
    authorize(callerOf(call), 'submit-jobs', namespace);
    const snapshot = await reader.fresh();
    const live: Job[] = [];
    for (const job of snapshot.jobs()) {
      if (job.spec.name !== name || job.spec.namespace !== namespace) continue;
      const facts = jobFacts(snapshot, job.id);
      if (facts !== undefined && !deriveJob(facts).ended) live.push(job);
    }
    if (live.length === 1 && live[0] !== undefined) return live[0].id;
    if (live.length === 0) throw notFound(`no job named ${JSON.stringify(name)} is running in namespace ${JSON.stringify(namespace)}: submit it, or give job_id`);
    throw failedPrecondition(`${live.length} jobs named ${JSON.stringify(name)} are running in namespace ${JSON.stringify(namespace)} (${live.map((j) => j.id).join(', ')}): give job_id`);
  }

  async function updateJob(request: UpdateJobRequest, call: ServerUnaryCall<unknown, unknown>): Promise<UpdateJobReply> {
    const change = changeOf(request);
    const id = await target(request, change, call);
    const deadline = reader.deadline();
    const snapshot = await reader.fresh(deadline);
    const facts = jobFacts(snapshot, id);
    if (facts === undefined) throw notFound(`job ${id} not found`);
    const caller = callerOf(call);
    // A job's namespace never changes (Cell.updateJob refuses it): the one read now is the one the update applies in.
    authorize(caller, 'submit-jobs', facts.job.spec.namespace);
    const derived = deriveJob(facts);
    if (derived.ended) throw failedPrecondition(`job ${id} has ended (${derived.state}): it takes no new versions; submit a new job`);
    const result = await reader.store(deadline, 'storing the new version', () =>
      cell.updateJob({
        jobId: id,
        change,
        by: caller.name,
        ...(request.expected_version > 0 ? { expectedVersion: request.expected_version } : {}),
        snapshotAtLeast: (revision) => reader.atLeast(revision, deadline),
      }),
    );
    const reply = async (job: Job, changed: boolean, what: string): Promise<UpdateJobReply> => {
      const found = jobView(await reader.atLeast(job.revision, deadline), id);
      if (found === undefined) throw notFound(`job ${id} not found`);
      return { job: found.view, changed, version: found.view.version, change: what };
    };
    switch (result.kind) {
      case 'updated':
        logger.info({ jobId: id, version: result.job.version, change: result.change, by: caller.name }, 'job version stored');
        return reply(result.job, true, result.change);
      case 'unchanged':
        return reply(result.job, false, 'nothing changed: no new version');
      case 'not-found':
        throw notFound(`job ${id} not found`);
      case 'killed':
        throw failedPrecondition(`job ${id} was killed: it takes no new versions; submit a new job`);
      case 'version-mismatch':
        throw failedPrecondition(`expected_version: job ${id} is at version ${result.job.version ?? 1}, not ${result.expected}; read it again and retry`);
      case 'unknown-version':
        throw new ApiError(status.NOT_FOUND, `rollback_to: job ${id} has no version ${result.version} (kept: ${result.kept.join(', ')})`);
      case 'over-quota':
        throw new ApiError(status.RESOURCE_EXHAUSTED, describeExcess(result.excess));
      case 'contended':
        throw new ApiError(status.ABORTED, `job ${id}: ${result.conflicts} other updates kept getting in first; retry`);
    }
  }

  async function getJobHistory(request: JobIdRequest, call: ServerUnaryCall<unknown, unknown>): Promise<{ versions: WireJobVersionView[] }> {
    const id = requestJobId('job_id', request.job_id);
    const deadline = reader.deadline();
    const versions: JobVersion[] = await reader.store(deadline, 'reading the job history', () => cell.jobHistory(id));
    const current = versions[0];
    if (current === undefined) throw notFound(`job ${id} not found`);
    authorize(callerOf(call), 'read-jobs', current.spec.namespace);
    return {
      versions: versions.map((v, i) => ({ version: v.version, at_ms: v.atMs, by: v.by, change: v.change, spec: jobSpecToWire(v.spec), current: i === 0 })),
    };
  }

  return { updateJob, getJobHistory };
}
