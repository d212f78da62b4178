/**
 * Adapters from async handler functions to grpc-js's callback and stream style, with the error
 * translation of {@link toServiceError} applied once here, for every method.
 */
import type {
  handleServerStreamingCall,
  handleUnaryCall,
  sendUnaryData,
  ServerUnaryCall,
  ServerWritableStream,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toServiceError } from './errors.js';

/** Reports a failed call: unexpected errors at error level with their stack, others at debug. */
function report(logger: Logger, method: string, error: unknown): ReturnType<typeof toServiceError> {
  const translated = toServiceError(error);
  if (translated.unexpected) logger.error({ err: error, method }, 'request failed unexpectedly');
  else logger.debug({ method, code: translated.serviceError.code, details: translated.serviceError.details }, 'request refused');
  return translated;
}

/** A unary method from `(request) => Promise<response>`. */
export function unary<Req, Res>(logger: Logger, method: string, handle: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    handle(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => callback(report(logger, method, error).serviceError),
    );
  };
}

/**
 * A server-streaming method from `(request, call) => Promise<void>` that writes to `call`; the
 * stream is ended when the promise resolves, and ended with the error's status when it rejects.
 */
export function serverStream<Req, Res>(logger: Logger, method: string, handle: (request: Req, call: ServerWritableStream<Req, Res>) => Promise<void>): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    handle(call.request, call).then(
      () => {
        if (!call.writableEnded) call.end();
      },
      (error: unknown) => {
        const translated = report(logger, method, error);
        if (!call.writableEnded && !call.cancelled) call.emit('error', translated.serviceError);
      },
    );
  };
}

/** Writes one message, waiting for the stream to drain when its buffer is full (backpressure). */
export async function writeMessage<Res>(call: ServerWritableStream<unknown, Res>, message: Res): Promise<void> {
  if (call.write(message)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('close', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
    call.on('cancelled', done);
  });
}
