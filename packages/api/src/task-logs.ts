/**
 * GetTaskLogs: a task's output lives on the machine that ran it. The agent there serves it over
 * HTTPS at the address of its `alive/<machine>` record (`logAddress`, `host:port`):
 *
 * ```
 *   client ──gRPC──► API ──GET https://<logAddress>/logs/<job>/<index>/<attempt>/<stdout|stderr>──► agent
 *                          client certificate: the API's own (CN omega-api, the cell's CA)
 *                          authorization: Bearer <log grant for this one log, ~60 s, signed
 *                                                 with the API's key: cell-state's log-grant.ts>
 *                          the agent's certificate must be the machine's (CN omega-agent-<machine>)
 *          ◄─LogChunk──     ◄──────────────── the file, streamed ─────────────────────────────────
 * ```
 *
 * The caller was authorized for the job's namespace before this file is reached; the grant is
 * how that decision reaches the agent, which trusts no caller by address. Without a TLS
 * identity (`--insecure`) the request is plain HTTP without a grant.
 *
 * Errors say what is missing: an unplaced task (FAILED_PRECONDITION), a machine that is gone
 * (UNAVAILABLE) or serves no logs, e.g. hollow (FAILED_PRECONDITION), an agent that does not
 * answer (UNAVAILABLE), no such log on the agent (NOT_FOUND). Only the task's current machine is
 * known: an earlier attempt is looked for there (it may have run elsewhere).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { status } from '@grpc/grpc-js';
import { agentUser, checkId, jobId as toJobId, mintLogGrant, taskId, type CellSnapshot, type TlsIdentity } from '@omega/cell-state';
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

/**
 * Finds where a request's log is served, from a snapshot. Throws {@link ApiError}. `https`:
 * the agents serve logs over TLS (the API has an identity); default false.
 */
export function locateTaskLog(snapshot: CellSnapshot, request: Omit<GetTaskLogsRequest, 'follow'>, options: { https?: boolean } = {}): LogLocation {
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
    url: `${options.https === true ? 'https' : 'http'}://${alive.logAddress}/logs/${encodeURIComponent(job.id)}/${request.index}/${attempt}/${stream}`,
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
  /**
   * The API's identity, for an `https:` location: its certificate is the client certificate,
   * its key signs the log grant, its CA verifies the agent. Required for `https:`.
   */
  readonly tls?: TlsIdentity;
  /** The clock grants are minted by (default `Date.now`). */
  readonly now?: () => number;
  /**
   * Told once the agent answered whether the log lost its oldest bytes to the log cap, and
   * again at the end of a followed log if bytes were lost meanwhile.
   */
  readonly onTruncated?: (truncated: boolean) => void;
  /** Keep streaming what the task writes until its attempt ended (the agent's follow). */
  readonly follow?: boolean;
}

/** The agent's response header (and a followed log's trailer) saying the log was truncated (node-agent's LOG_TRUNCATED_HEADER). */
const TRUNCATED_HEADER = 'x-omega-log-truncated';
/** The request header asking the agent to follow the log (node-agent's LOG_FOLLOW_HEADER). */
const FOLLOW_HEADER = 'x-omega-log-follow';

/** A response's status, its text when small, or its body as a stream. */
interface AgentAnswer {
  readonly status: number;
  readonly body: IncomingMessage;
}

/**
 * The agent's certificate must be valid for the address (the default check) and be the
 * machine's own (CN `omega-agent-<machine>`), so a grant never goes to another agent.
 */
function agentIdentityCheck(machineId: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const problem = checkServerIdentity(host, cert);
    if (problem !== undefined) return problem;
    const expected = agentUser(machineId);
    const cn = cert.subject?.CN;
    return cn === expected ? undefined : new Error(`the log server's certificate is for ${JSON.stringify(cn ?? '')}, not ${expected}`);
  };
}

/** One GET to the agent (HTTPS with a client certificate and a grant when `tls` is given). */
function askAgent(location: LogLocation, options: StreamLogOptions, signal: AbortSignal): Promise<AgentAnswer> {
  const url = new URL(location.url);
  const secure = url.protocol === 'https:';
  const tls = options.tls;
  if (secure && tls === undefined) return Promise.reject(new Error('an https log address needs the API to have a TLS identity'));
  const headers: Record<string, string> = options.follow === true ? { [FOLLOW_HEADER]: 'true' } : {};
  if (secure && tls !== undefined) {
    const grant = mintLogGrant({ jobId: location.jobId, index: location.index, attempt: location.attempt, stream: location.stream, machineId: location.machineId }, tls.key, (options.now ?? Date.now)());
    headers.authorization = `Bearer ${grant}`;
  }
  return new Promise<AgentAnswer>((resolve, reject) => {
    // agent: false: a pooled connection would skip the agent identity check (made per handshake).
    const common = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), path: url.pathname, method: 'GET', headers, signal, agent: false as const };
    const onResponse = (response: IncomingMessage): void => resolve({ status: response.statusCode ?? 0, body: response });
    const request =
      secure && tls !== undefined
        ? httpsRequest({ ...common, ca: tls.ca, cert: tls.cert, key: tls.key, checkServerIdentity: agentIdentityCheck(location.machineId), minVersion: 'TLSv1.2' }, onResponse)
        : httpRequest(common, onResponse);
    request.on('error', reject);
    request.end();
  });
}

async function textOf(body: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < 4096) chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return Buffer.concat(chunks).toString('utf8').trim().slice(0, 200);
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
    let response: AgentAnswer;
    try {
      response = await askAgent(location, options, controller.signal);
    } catch (error) {
      if (options.signal?.aborted === true) return;
      const code = (error as { code?: string }).code;
      throw unavailable(`machine ${location.machineId}'s log server did not answer for ${what}: ${code ?? (error as Error).message}`, error);
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 404) {
      response.body.destroy();
      throw notFound(`machine ${location.machineId} has no ${what}`);
    }
    if (response.status !== 200) {
      const text = await textOf(response.body).catch(() => '');
      throw new ApiError(status.UNAVAILABLE, `machine ${location.machineId}'s log server answered ${response.status} for ${what}${text === '' ? '' : `: ${text}`}`);
    }
    options.onTruncated?.(response.body.headers[TRUNCATED_HEADER] === 'true');
    try {
      for await (const chunk of response.body) {
        const bytes = chunk as Uint8Array;
        for (let start = 0; start < bytes.length; start += LOG_CHUNK_BYTES) yield bytes.subarray(start, start + LOG_CHUNK_BYTES);
      }
      if (response.body.trailers[TRUNCATED_HEADER] === 'true') options.onTruncated?.(true);
    } catch (error) {
      if (options.signal?.aborted === true) return;
      throw unavailable(`reading ${what} from machine ${location.machineId} failed: ${(error as Error).message}`, error);
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', abort);
  }
}
