/**
 * GetTaskLogs: a task's output lives on the machine that ran it. The agent there serves it over
 * HTTP at the address of its `alive/<machine>` record (`logAddress`, `host:port`):
 *
 * ```
 *   client ──gRPC──► API ──GET http://<logAddress>/logs/<job>/<index>/<attempt>/<stdout|stderr>──► agent
 *          ◄─LogChunk──     ◄──────────────── the file, streamed ─────────────────────────────────
 * ```
 *
 * Errors say what is missing: an unplaced task (FAILED_PRECONDITION), a machine that is gone
 * (UNAVAILABLE) or serves no logs, e.g. hollow (FAILED_PRECONDITION), an agent that does not
 * answer (UNAVAILABLE), no such log on the agent (NOT_FOUND). Only the task's current machine is
 * known: an earlier attempt is looked for there (it may have run elsewhere).
 */
import { status } from '@grpc/grpc-js';
import { checkId, jobId as toJobId, taskId, type CellSnapshot } from '@omega/cell-state';
import { ApiError, failedPrecondition, invalidArgument, notFound, unavailable } from './errors.js';
import type { GetTaskLogsRequest } from './wire.js';

export type LogStream = 'stdout' | 'stderr';

/** Where one attempt's log is served. */
export interface LogLocation {
  readonly url: string;
  readonly machineId: string;
  readonly jobId: string;
  readonly index: number;
  readonly attempt: number;
  readonly stream: LogStream;
}

/** Largest LogChunk sent: far below gRPC's 4 MiB message limit, small enough to stream smoothly. */
export const LOG_CHUNK_BYTES = 64 * 1024;

function streamOf(value: string | number): LogStream | undefined {
  if (value === 'STREAM_STDOUT' || value === 0) return 'stdout';
  if (value === 'STREAM_STDERR' || value === 1) return 'stderr';
  return undefined;
}

/** Finds where a request's log is served, from a snapshot. Throws {@link ApiError}. */
export function locateTaskLog(snapshot: CellSnapshot, request: GetTaskLogsRequest): LogLocation {
  try {
    checkId('job_id', request.job_id);
  } catch (error) {
    throw invalidArgument('job_id', (error as Error).message.replace(/^job_id: /, ''));
  }
  const stream = streamOf(request.stream);
  if (stream === undefined) throw invalidArgument('stream', 'must be STREAM_STDOUT or STREAM_STDERR');
  const job = snapshot.job(toJobId(request.job_id));
  if (job === undefined) throw notFound(`job ${request.job_id} not found`);
  if (!Number.isSafeInteger(request.index) || request.index < 0 || request.index >= job.spec.instances) {
    throw invalidArgument('index', `must be less than the job's ${job.spec.instances} instance(s)`);
  }
  const id = taskId(job.id, request.index);
  const task = snapshot.task(id);
  if (task === undefined || task.machineId === '') throw failedPrecondition(`task ${id} has not been placed yet: it has no logs`);
  const attempt = request.attempt === 0 ? task.attempt : request.attempt;
  if (attempt > task.attempt) throw invalidArgument('attempt', `task ${id} is at attempt ${task.attempt}`);
  const alive = snapshot.alive(task.machineId);
  if (alive === undefined) throw unavailable(`machine ${task.machineId}, which ran task ${id}, is not alive: its logs cannot be read now`);
  if (alive.logAddress === '') {
    const machine = snapshot.machine(task.machineId);
    const why = machine?.hollow === true ? 'it is a hollow machine (tasks run no processes)' : 'its agent serves no logs';
    throw failedPrecondition(`machine ${task.machineId} has no logs for task ${id}: ${why}`);
  }
  return {
    url: `http://${alive.logAddress}/logs/${encodeURIComponent(job.id)}/${request.index}/${attempt}/${stream}`,
    machineId: task.machineId,
    jobId: job.id,
    index: request.index,
    attempt,
    stream,
  };
}

export interface StreamLogOptions {
  /** Aborts the transfer (the client cancelled). */
  readonly signal?: AbortSignal;
  /** How long to wait for the agent's answer (not for the whole file); default 10 s. */
  readonly answerTimeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/**
 * Streams a log from its agent in chunks of at most {@link LOG_CHUNK_BYTES}. Throws
 * {@link ApiError} when the agent cannot be reached or has no such log.
 */
export async function* streamTaskLog(location: LogLocation, options: StreamLogOptions = {}): AsyncGenerator<Uint8Array> {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  const timer = setTimeout(abort, options.answerTimeoutMs ?? 10_000);
  const what = `the ${location.stream} of task ${location.jobId}/${location.index} attempt ${location.attempt}`;
  try {
    let response: Response;
    try {
      response = await (options.fetch ?? fetch)(location.url, { signal: controller.signal });
    } catch (error) {
      if (options.signal?.aborted === true) return;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw unavailable(`machine ${location.machineId}'s log server did not answer for ${what}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, error);
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      throw notFound(`machine ${location.machineId} has no ${what}`);
    }
    if (!response.ok || response.body === null) {
      const text = (await response.text().catch(() => '')).slice(0, 200);
      throw new ApiError(status.UNAVAILABLE, `machine ${location.machineId}'s log server answered ${response.status} for ${what}${text === '' ? '' : `: ${text}`}`);
    }
    try {
      for await (const chunk of response.body) {
        const bytes = chunk as Uint8Array;
        for (let start = 0; start < bytes.length; start += LOG_CHUNK_BYTES) yield bytes.subarray(start, start + LOG_CHUNK_BYTES);
      }
    } catch (error) {
      if (options.signal?.aborted === true) return;
      throw unavailable(`reading ${what} from machine ${location.machineId} failed: ${(error as Error).message}`, error);
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', abort);
  }
}
