/**
 * Errors at the API boundary. Handlers throw {@link ApiError} for what they decide themselves
 * (a bad argument, an unknown job) and let everything else propagate; {@link toServiceError} is
 * the one place that turns any error into a gRPC status, so the translation of cell-state's
 * exceptions happens once.
 *
 * | thrown                                        | status               |
 * |-----------------------------------------------|----------------------|
 * | ApiError (StoreTimeoutError: UNAVAILABLE)     | its own code         |
 * | InvalidRecordError (field named, proto names) | INVALID_ARGUMENT     |
 * | KvInvalidRequestError                         | INVALID_ARGUMENT     |
 * | RequestIdReusedError, RequestJobGoneError     | ALREADY_EXISTS       |
 * | KvUnavailableError, MirrorStoppedError        | UNAVAILABLE          |
 * | other retryable KvError                       | UNAVAILABLE          |
 * | ContentionError                               | ABORTED (retryable)  |
 * | anything else                                 | INTERNAL (logged)    |
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  ContentionError,
  InvalidRecordError,
  KvError,
  KvInvalidRequestError,
  KvUnavailableError,
  MirrorStoppedError,
  RequestIdReusedError,
  RequestJobGoneError,
} from '@omega/cell-state';

/** A failure the API reports on purpose, with the gRPC status it should have. */
export class ApiError extends Error {
  constructor(
    readonly code: status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiError';
  }
}

/** `INVALID_ARGUMENT` naming the field (proto names): `job.task.resources.memory_bytes: must be > 0`. */
export function invalidArgument(field: string, problem: string): ApiError {
  return new ApiError(status.INVALID_ARGUMENT, `${field}: ${problem}`);
}

export function notFound(message: string): ApiError {
  return new ApiError(status.NOT_FOUND, message);
}

export function failedPrecondition(message: string): ApiError {
  return new ApiError(status.FAILED_PRECONDITION, message);
}

export function unavailable(message: string, cause?: unknown): ApiError {
  return new ApiError(status.UNAVAILABLE, message, cause === undefined ? undefined : { cause });
}

/**
 * A cell-state field path in the proto's names: camelCase segments become snake_case
 * (`job.task.resources.memoryBytes` → `job.task.resources.memory_bytes`), except what follows
 * `task.env.`, which is a user's variable name and kept as given.
 */
export function protoFieldPath(path: string): string {
  const env = /^(.*?\btask\.(?:env|secretEnv)\.)([\s\S]*)$/.exec(path);
  const head = env?.[1] ?? path;
  const tail = env?.[2] ?? '';
  return head.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) + tail;
}

/**
 * The message of an InvalidRecordError in proto names. Its message is `<field>: <problems>`,
 * where the problems may themselves be `<field>: <problem>; ...` (Cell.createJob joins every
 * problem of a spec): each field path is rewritten.
 */
function invalidRecordMessage(error: InvalidRecordError): string {
  const body = error.message.startsWith(`${error.field}: `) ? error.message.slice(error.field.length + 2) : error.message;
  const parts = body.split('; ');
  const pathLike = /^[A-Za-z_][A-Za-z0-9_.[\]]*: /;
  if (parts.every((part) => pathLike.test(part))) {
    return parts.map((part) => {
      const colon = part.indexOf(': ');
      return `${protoFieldPath(part.slice(0, colon))}${part.slice(colon)}`;
    }).join('; ');
  }
  return `${protoFieldPath(error.field)}: ${body}`;
}

export interface TranslatedError {
  readonly serviceError: Partial<ServiceError>;
  /** The error was not one the API expects: log it with its stack. */
  readonly unexpected: boolean;
}

/** Any error thrown by a handler → the status sent to the client. */
export function toServiceError(error: unknown): TranslatedError {
  const make = (code: status, details: string, unexpected = false): TranslatedError => ({
    serviceError: { code, details, message: details, metadata: new Metadata() },
    unexpected,
  });
  if (error instanceof ApiError) return make(error.code, error.message);
  if (error instanceof InvalidRecordError) return make(status.INVALID_ARGUMENT, invalidRecordMessage(error));
  // Their messages name request_id and the job: `request_id "abc": already used for job X ...`.
  if (error instanceof RequestIdReusedError || error instanceof RequestJobGoneError) return make(status.ALREADY_EXISTS, error.message);
  if (error instanceof KvInvalidRequestError) return make(status.INVALID_ARGUMENT, `the cell store refused the request: ${error.message}`);
  if (error instanceof KvUnavailableError) return make(status.UNAVAILABLE, `the cell store (etcd) is unavailable: ${error.message}`);
  if (error instanceof MirrorStoppedError) return make(status.UNAVAILABLE, 'the API server is shutting down');
  if (error instanceof ContentionError) return make(status.ABORTED, `${error.message}; retry`);
  if (error instanceof KvError && error.retryable) return make(status.UNAVAILABLE, `the cell store (etcd) failed: ${error.message}`);
  return make(status.INTERNAL, 'internal error (see the API server log)', true);
}
