/**
 * `omega.v1.JobService`: submit, read, list, kill and watch jobs, and read task logs.
 *
 * Stateless: every write goes to etcd through {@link Cell} (a submit is one guarded transaction,
 * idempotent per request id), every read comes from the mirror brought up to etcd's current
 * revision ({@link CellReader}). Any number of API servers may serve the same cell, and a
 * restarted one has lost nothing.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { status, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { JobIdTakenError, KvError, jobId as toJobId, type Job, type JobId, type JobState, type TlsIdentity } from '@omega/cell-state';
import type { Logger } from 'pino';
import { callerOf } from './auth/guarded-server.js';
import { allows, authorize } from './auth/policy.js';
import { admitJob } from './admission.js';
import { CellReader, requestJobId } from './cell-reader.js';
import { StoreTimeoutError } from './deadline.js';
import { ApiError, invalidArgument, notFound, unavailable } from './errors.js';
import { jobSpecFromWire, problemsMessage } from './job-spec-wire.js';
import { jobPlanHandler } from './job-plan.js';
import { jobUpdateHandlers } from './job-update.js';
import { changeConcernsJob, deriveJob, jobView, jobViewToWire, type JobFacts } from './job-view.js';
import { serverStream, unary, writeMessage } from './rpc.js';
import { locateTaskLog, streamTaskLog } from './task-logs.js';
import {
  JOB_VIEW_STATE_NAMES,
  JOB_VIEW_STATE_NUMBERS,
  type GetTaskLogsRequest,
  type JobIdRequest,
  type ListJobsRequest,
  type SubmitJobRequest,
  type WireJobView,
} from './wire.js';

/** ListJobs' default and largest `limit`. */
export const LIST_JOBS_DEFAULT_LIMIT = 1000;
export const LIST_JOBS_MAX_LIMIT = 10_000;
/** With `include_tasks`, ListJobs stops adding jobs past this many tasks (keeps replies well under gRPC's limits). */
export const LIST_JOBS_MAX_TASKS = 100_000;

/**
 * A new job id: `<name>-<10 base36 characters>` from 50 random bits. Safe as a key segment (the
 * name is a DNS label); unique in practice, and a collision is caught by createJob's guard.
 */
export function newJobId(name: string): JobId {
  const n = randomBytes(8).readBigUInt64BE() & ((1n << 50n) - 1n);
  return toJobId(`${name}-${n.toString(36).padStart(10, '0')}`);
}

/**
 * The request id of a submit that came without one: random per call, so that a create etcd3
 * resends (reply lost after it applied) or that this server retries finds its own request record
 * and leaves one job. `srv-` tells it apart from ids clients choose.
 */
export function newRequestId(): string {
  return `srv-${randomUUID()}`;
}

/** This server's own attempts of a create whose outcome was unknown, and the pause between them. */
const SUBMIT_ATTEMPTS = 3;
const SUBMIT_RETRY_DELAY_MS = 200;

/** Something a stream in progress must do when the server shuts down. */
export type StreamCloser = () => void;

export interface JobServiceOptions {
  readonly reader: CellReader;
  readonly logger: Logger;
  /** Registers a stream's closer for shutdown; returns the function that unregisters it. */
  readonly track: (closer: StreamCloser) => () => void;
  /** For tests: a different id generator. */
  readonly newJobId?: (name: string) => JobId;
  /**
   * The API's TLS identity: task logs are then read over HTTPS with it as the client
   * certificate and a log grant signed with its key (task-logs.ts). Absent: plain HTTP (`--insecure`).
   */
  readonly logTls?: TlsIdentity;
  /** How often an open WatchJob with nothing to send checks that the store still answers; default the store timeout. */
  readonly watchProbeMs?: number;
}

export function jobServiceImplementation(options: JobServiceOptions): UntypedServiceImplementation {
  const { reader, logger, track } = options;
  const cell = reader.cell;
  const mirror = reader.mirror;
  const makeId = options.newJobId ?? newJobId;
  const watchProbeMs = options.watchProbeMs ?? reader.storeTimeoutMs;
  const versions = jobUpdateHandlers(reader, logger);

  /**
   * Validates, then admits and creates the job in one guarded transaction (Cell.submitJob via
   * admission.ts: the namespace must exist, its quota must allow the job: NOT_FOUND,
   * RESOURCE_EXHAUSTED) under the client's request id or, without one, a new one made for this call. A create whose outcome is
   * unknown (etcd unreachable, reply lost) is tried again with the same job id, request id and
   * nonce (up to 3 attempts, within the deadline): the request record tells this call's own create from a
   * repeat, so the call answers `created: true` with one job. An id taken by another job gets a
   * new id (up to 3 times).
   */
  async function submitJob(request: SubmitJobRequest, call: ServerUnaryCall<unknown, unknown>): Promise<{ job_id: string; created: boolean }> {
    const given = request.request_id ?? '';
    if (given !== '' && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(given)) {
      throw invalidArgument('request_id', "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    const result = jobSpecFromWire(request.job);
    if (result.problems !== undefined) throw new ApiError(status.INVALID_ARGUMENT, problemsMessage(result.problems));
    const { spec, secretEnv } = result;
    authorize(callerOf(call), 'submit-jobs', spec.namespace);
    const requestId = given !== '' ? given : newRequestId();
    const nonce = randomBytes(12).toString('base64url');
    const deadline = reader.deadline();
    let id = makeId(spec.name);
    for (let collisions = 0, attempts = 1; ; ) {
      try {
        const { job, created } = await reader.store(deadline, 'admitting the job', () => admitJob(reader, { id, spec, requestId, nonce, secretEnv }, deadline, logger));
        logger.info({ jobId: job.id, name: spec.name, kind: spec.kind, instances: spec.instances, requestId, created }, created ? 'job submitted' : 'repeated submit answered with the existing job');
        return { job_id: job.id, created };
      } catch (error) {
        if (error instanceof JobIdTakenError && ++collisions < 3) {
          id = makeId(spec.name);
          continue;
        }
        const unknownOutcome = error instanceof StoreTimeoutError || (error instanceof KvError && error.retryable);
        if (!unknownOutcome) throw error;
        if (attempts < SUBMIT_ATTEMPTS && deadline.remainingMs > SUBMIT_RETRY_DELAY_MS) {
          attempts++;
          await new Promise((resolve) => setTimeout(resolve, SUBMIT_RETRY_DELAY_MS));
          continue;
        }
        // The job may exist: say how to find out without risking a second one.
        const retry = given !== '' ? 'retry with the same request_id' : `retry with request_id ${JSON.stringify(requestId)} to get this job if it was created`;
        throw unavailable(`the cell store (etcd) is unavailable, the job may or may not have been created: ${(error as Error).message}; ${retry}`, error);
      }
    }
  }

  async function getJob(request: JobIdRequest, call: ServerUnaryCall<unknown, unknown>): Promise<WireJobView> {
    const id = requestJobId('job_id', request.job_id);
    const snapshot = await reader.fresh();
    const found = jobView(snapshot, id);
    if (found === undefined) throw notFound(`job ${id} not found`);
    authorize(callerOf(call), 'read-jobs', snapshot.job(id)?.spec.namespace ?? '');
    return found.view;
  }

  function stateFilter(states: readonly (string | number)[]): Set<JobState> | undefined {
    const wanted = new Set<JobState>();
    states.forEach((value, i) => {
      const name = typeof value === 'number' ? JOB_VIEW_STATE_NUMBERS[value] : value;
      if (name === 'JOB_VIEW_STATE_UNSPECIFIED') return;
      const state = name === undefined ? undefined : JOB_VIEW_STATE_NAMES[name];
      if (state === undefined) throw invalidArgument(`states[${i}]`, `unknown job state ${JSON.stringify(value)}`);
      wanted.add(state);
    });
    return wanted.size > 0 ? wanted : undefined;
  }

  /** Only what the caller may read: `namespace` if given (PERMISSION_DENIED if it may not), else every namespace it holds. */
  async function listJobs(request: ListJobsRequest, call: ServerUnaryCall<unknown, unknown>): Promise<{ jobs: WireJobView[]; truncated: boolean }> {
    const caller = callerOf(call);
    const namespace = request.namespace ?? '';
    if (namespace !== '') authorize(caller, 'read-jobs', namespace);
    const wanted = stateFilter(request.states ?? []);
    if (request.limit > LIST_JOBS_MAX_LIMIT) throw invalidArgument('limit', `must be at most ${LIST_JOBS_MAX_LIMIT}`);
    const limit = request.limit > 0 ? request.limit : LIST_JOBS_DEFAULT_LIMIT;
    const snapshot = await reader.fresh();
    const newestFirst = [...snapshot.jobs()].sort((a: Job, b: Job) => b.submittedAtMs - a.submittedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const jobs: WireJobView[] = [];
    let tasks = 0;
    let truncated = false;
    const cronOf = request.cron_of ?? '';
    for (const job of newestFirst) {
      if (cronOf !== '' && job.cronRun?.templateId !== cronOf) continue;
      if (namespace !== '' ? job.spec.namespace !== namespace : !allows(caller, 'read-jobs', job.spec.namespace)) continue;
      const facts: JobFacts = { job, status: snapshot.status(job.id), owner: snapshot.owner(job.id)?.scheduler, tasks: [...snapshot.tasksOf(job.id)] };
      const derived = deriveJob(facts);
      if (wanted !== undefined && !wanted.has(derived.state)) continue;
      if (jobs.length >= limit || (request.include_tasks && jobs.length > 0 && tasks + job.spec.instances > LIST_JOBS_MAX_TASKS)) {
        truncated = true;
        break;
      }
      tasks += job.spec.instances;
      jobs.push(jobViewToWire(facts, derived, { includeTasks: request.include_tasks }));
    }
    return { jobs, truncated };
  }

  async function killJob(request: JobIdRequest, call: ServerUnaryCall<unknown, unknown>): Promise<{ job: WireJobView }> {
    const id = requestJobId('job_id', request.job_id);
    const deadline = reader.deadline();
    // A job's namespace never changes: the one read now is the one the kill applies in.
    const existing = await reader.store(deadline, 'reading the job', () => cell.getJob(id));
    if (existing === undefined) throw notFound(`job ${id} not found`);
    authorize(callerOf(call), 'kill-jobs', existing.spec.namespace);
    // Setting the desired state is idempotent: a resend or a retry changes nothing more.
    const job = await reader.store(deadline, 'requesting the kill', () => cell.setJobDesired(id, 'killed'));
    if (job === undefined) throw notFound(`job ${id} not found`);
    logger.info({ jobId: id }, 'job kill requested');
    const found = jobView(await reader.atLeast(job.revision, deadline), id);
    if (found === undefined) throw notFound(`job ${id} not found`);
    return { job: found.view };
  }

  /**
   * Sends the job as it is, then its view again after every change to the job, its status or its
   * tasks (changes that arrive while a send waits for the client are coalesced: the latest view
   * wins, and a view equal to the last one sent is not repeated); returns once the job has ended.
   * While nothing changes it checks every `watchProbeMs` that the store still answers (one check
   * shared by all open watches): when it does not, the stream ends with UNAVAILABLE (watch again)
   * instead of going silent for the length of the outage.
   */
  async function watchJob(request: JobIdRequest, call: ServerWritableStream<JobIdRequest, unknown>): Promise<void> {
    const id = requestJobId('job_id', request.job_id);
    let dirty = true;
    let stopped: 'cancelled' | 'shutdown' | undefined;
    let wake: (() => void) | undefined;
    const unsubscribe = mirror.onChange((change) => {
      if (change.full || change.changes.some((c) => changeConcernsJob(c, id))) {
        dirty = true;
        wake?.();
      }
    });
    const onCancelled = (): void => {
      stopped ??= 'cancelled';
      wake?.();
    };
    call.on('cancelled', onCancelled);
    const untrack = track(() => {
      stopped ??= 'shutdown';
      wake?.();
    });
    try {
      let snapshot = await reader.fresh();
      // A job's namespace never changes: one decision holds for the whole watch.
      const watched = snapshot.job(id);
      if (watched !== undefined) authorize(callerOf(call), 'read-jobs', watched.spec.namespace);
      let lastSent = '';
      for (;;) {
        if (stopped === 'cancelled') return;
        if (stopped === 'shutdown') throw unavailable('the API server is shutting down; watch again');
        if (!dirty) {
          const woken = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), watchProbeMs);
            wake = () => {
              clearTimeout(timer);
              resolve(true);
            };
          });
          wake = undefined;
          if (!woken && stopped === undefined) {
            try {
              await reader.probe();
            } catch (error) {
              if (stopped === 'cancelled') return;
              throw unavailable(`the cell store (etcd) stopped answering; watch again: ${(error as Error).message}`, error);
            }
          }
          snapshot = mirror.snapshot();
          continue;
        }
        dirty = false;
        const found = jobView(snapshot, id);
        if (found === undefined) throw notFound(`job ${id} not found`);
        const text = JSON.stringify(found.view);
        if (text !== lastSent) {
          lastSent = text;
          await writeMessage(call, { revision: snapshot.revision, job: found.view });
        }
        if (found.ended) return;
        snapshot = mirror.snapshot();
      }
    } finally {
      unsubscribe();
      untrack();
      call.off('cancelled', onCancelled);
    }
  }

  async function getTaskLogs(request: GetTaskLogsRequest, call: ServerWritableStream<GetTaskLogsRequest, unknown>): Promise<void> {
    const snapshot = await reader.fresh();
    // Decided before anything about the task is told (placed or not, where, whether alive).
    const logsOf = snapshot.job(toJobId(request.job_id ?? ''));
    if (logsOf !== undefined) authorize(callerOf(call), 'read-jobs', logsOf.spec.namespace);
    const location = locateTaskLog(snapshot, request, { https: options.logTls !== undefined });
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    call.on('cancelled', abort);
    const untrack = track(abort);
    let truncated = false;
    try {
      const onTruncated = (value: boolean): void => {
        truncated ||= value;
      };
      const follow = request.follow === true;
      for await (const chunk of streamTaskLog(location, { signal: controller.signal, onTruncated, follow, ...(options.logTls === undefined ? {} : { tls: options.logTls }) })) {
        if (controller.signal.aborted) break;
        await writeMessage(call, { data: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) });
      }
      // A trailer, after the output: the client tells its user only the newest part was sent.
      if (truncated && !controller.signal.aborted) await writeMessage(call, { data: Buffer.alloc(0), truncated: true });
      if (controller.signal.aborted && !call.cancelled) throw unavailable('the API server is shutting down; read the logs again');
    } finally {
      untrack();
      call.off('cancelled', abort);
    }
  }

  return {
    SubmitJob: unary(logger, 'SubmitJob', submitJob),
    GetJob: unary(logger, 'GetJob', getJob),
    ListJobs: unary(logger, 'ListJobs', listJobs),
    KillJob: unary(logger, 'KillJob', killJob),
    UpdateJob: unary(logger, 'UpdateJob', versions.updateJob),
    GetJobHistory: unary(logger, 'GetJobHistory', versions.getJobHistory),
    PlanJob: unary(logger, 'PlanJob', jobPlanHandler(reader)),
    WatchJob: serverStream(logger, 'WatchJob', watchJob),
    GetTaskLogs: serverStream(logger, 'GetTaskLogs', getTaskLogs),
  };
}
