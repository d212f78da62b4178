/**
 * A gRPC server on which no method runs before its caller is authenticated and its role checked.
 *
 * ```
 *   call ─► authenticate (token-auth.ts) ─► decideRole (policy.ts) ─► remember the caller ─► handler
 *              UNAUTHENTICATED                 PERMISSION_DENIED                              │
 *                                                                                              └─ callerOf(call), and
 *                                                                  authorize(caller, action, namespace) for namespaced actions
 * ```
 *
 * {@link GuardedServer} wraps every service added to it, whoever adds it, so "every call of every
 * service is authenticated" holds by construction. An open stream authenticates again every
 * `recheckMs` (5 s), so a revoked or expired token's watch ends too, within that time. A method without a rule in
 * {@link METHOD_ACTIONS} makes `addService` throw at start: a method nobody decided about is
 * closed, not open.
 */
import {
  Server,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type sendUnaryData,
  type ServerOptions,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { RpcMetrics } from '../rpc-metrics.js';
import { toServiceError } from '../errors.js';
import { decideRole, enforce, METHOD_ACTIONS, type Action, type Caller } from './policy.js';
import { UnauthenticatedError, type Authenticate } from './token-auth.js';

const callers = new WeakMap<object, Caller>();

/**
 * The authenticated caller of a call a {@link GuardedServer} admitted. Throws (INTERNAL at the
 * client) for a call that did not pass through one: a handler served unguarded answers nothing.
 */
export function callerOf(call: object): Caller {
  const caller = callers.get(call);
  if (caller === undefined) throw new Error('no authenticated caller for this call: its service was not added to a GuardedServer');
  return caller;
}

/** The action of a method (`/omega.v1.JobService/SubmitJob` → `submit-jobs`); undefined when it has no rule. */
export function methodAction(path: string): Action | undefined {
  return METHOD_ACTIONS[path.replace(/^\//, '')];
}

export interface GuardOptions {
  readonly authenticate: Authenticate;
  readonly logger: Logger;
  /**
   * How often an open stream (WatchJob, GetTaskLogs) authenticates its caller again; a token
   * revoked or expired meanwhile ends it with UNAUTHENTICATED. Default 5 s.
   */
  readonly recheckMs?: number;
  /** Where every call is counted (rpc-metrics.ts); absent: nowhere. */
  readonly rpcMetrics?: RpcMetrics;
}

/** {@link GuardOptions.recheckMs}' default. */
export const DEFAULT_RECHECK_MS = 5_000;

/**
 * Authenticates a stream's caller again every `recheckMs` until the stream ends. A refusal
 * (revoked, expired) ends it with UNAUTHENTICATED and stops its handler (as a client's cancel
 * would: every stream handler stops on `cancelled`); a store that does not answer is left to the
 * stream's own checks. Returns the function that stops checking.
 */
function recheckWhileOpen(call: ServerWritableStream<unknown, unknown>, name: string, options: GuardOptions): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (call.cancelled || call.writableEnded) return stop();
    if (checking) return;
    checking = true;
    options.authenticate(call.metadata).then(
      () => {
        checking = false;
      },
      (error: unknown) => {
        checking = false;
        if (!(error instanceof UnauthenticatedError) || call.cancelled || call.writableEnded) return;
        stop();
        call.emit('error', refused(options.logger, name, error));
        call.emit('cancelled');
      },
    );
  }, options.recheckMs ?? DEFAULT_RECHECK_MS);
  const stop = (): void => {
    clearInterval(timer);
    call.off('finish', stop);
    call.off('cancelled', stop);
  };
  call.on('finish', stop);
  call.on('cancelled', stop);
  return stop;
}

/** A refused call, logged at debug: what was refused and why (the message never holds a token). */
function refused(logger: Logger, method: string, error: unknown): ReturnType<typeof toServiceError>['serviceError'] {
  const translated = toServiceError(error);
  if (translated.unexpected) logger.error({ err: error, method }, 'request failed unexpectedly');
  else logger.debug({ method, code: translated.serviceError.code, details: translated.serviceError.details }, 'request refused');
  return translated.serviceError;
}

/** Every method of `implementation`, each behind authentication and its role check. */
export function guardService(definition: ServiceDefinition, implementation: UntypedServiceImplementation, options: GuardOptions): UntypedServiceImplementation {
  const { authenticate, logger } = options;
  const guarded: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const action = methodAction(method.path);
    if (action === undefined) throw new Error(`no access rule for ${method.path}: add it to METHOD_ACTIONS (auth/policy.ts)`);
    const handler: UntypedHandleCall | undefined = implementation[name];
    if (handler === undefined) continue;
    const admit = async (call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): Promise<Caller> => {
      const caller = await authenticate(call.metadata);
      enforce(decideRole(caller, action));
      callers.set(call, caller);
      return caller;
    };
    if (method.requestStream) throw new Error(`${method.path}: client-streaming methods are not supported by the guard`);
    if (method.responseStream) {
      const serve = handler as handleServerStreamingCall<unknown, unknown>;
      guarded[name] = ((call: ServerWritableStream<unknown, unknown>) => {
        options.rpcMetrics?.track(name, call);
        admit(call).then(
          (caller) => {
            if (caller.via === 'token') recheckWhileOpen(call, name, options);
            serve(call);
          },
          (error: unknown) => {
            const serviceError = refused(logger, name, error);
            if (!call.writableEnded && !call.cancelled) call.emit('error', serviceError);
          },
        );
      }) satisfies handleServerStreamingCall<unknown, unknown>;
    } else {
      const serve = handler as handleUnaryCall<unknown, unknown>;
      guarded[name] = ((call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const metrics = options.rpcMetrics;
        const startedAt = performance.now();
        const answer: sendUnaryData<unknown> =
          metrics === undefined
            ? callback
            : (error, value) => {
                metrics.unaryDone(name, startedAt, error);
                callback(error, value);
              };
        admit(call).then(
          () => serve(call, answer),
          (error: unknown) => answer(refused(logger, name, error)),
        );
      }) satisfies handleUnaryCall<unknown, unknown>;
    }
  }
  return guarded;
}

/** A grpc-js Server whose every service is guarded (see the file header). */
export class GuardedServer extends Server {
  constructor(
    options: ServerOptions,
    private readonly guard: GuardOptions,
  ) {
    super(options);
  }

  override addService(service: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    super.addService(service, guardService(service, implementation, this.guard));
  }
}
