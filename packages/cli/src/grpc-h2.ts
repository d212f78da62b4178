/**
 * The two call shapes the CLI makes (unary, and server streaming) as gRPC over `node:http2`.
 *
 * Why not grpc-js here: loading it costs more CPU than the rest of a CLI command together (65
 * CommonJS modules: about 45 ms on an idle core, 140 ms on a loaded one, measured with
 * `omega bench cli` and a CPU profile of `omega jobs`), and a command makes one or two calls on
 * one connection. The servers, schedulers and tests keep grpc-js; this client speaks the same
 * protocol to it (gRPC over HTTP/2: `application/grpc`, 5-byte length-prefixed messages, the
 * status in `grpc-status` / `grpc-message` trailers, `grpc-timeout`), with the messages encoded and
 * decoded by the generated definitions the server uses.
 *
 * What it leaves out, because the CLI needs none of it: client streaming, compression (it
 * advertises none, so the server sends none), retries (the CLI resends with its request ids),
 * keepalive pings (a command's connection lives for the command).
 *
 * Failures are {@link GrpcFailure}s with the spec's status codes: the server's status as sent;
 * a connection that fails (refused, TLS, protocol) is UNAVAILABLE with the socket's words in
 * `details`; a deadline is DEADLINE_EXCEEDED; a reply over the size limit RESOURCE_EXHAUSTED.
 */
import type { MethodCodec } from '@omega/api/wire';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader } from 'node:http2';

/** gRPC's status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A code's name (`UNAVAILABLE`), or undefined for a number outside the spec. */
export function grpcStatusName(code: number): string | undefined {
  return Object.entries(GRPC_STATUS).find(([, value]) => value === code)?.[0];
}

/** A failed call: the gRPC status code and the server's (or the connection's) words. */
export class GrpcFailure extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(`${code} ${grpcStatusName(code) ?? 'UNKNOWN'}: ${details}`, options);
    this.name = 'GrpcFailure';
  }
}

export interface H2ChannelOptions {
  /** `host:port`. */
  readonly address: string;
  /** The CA to verify the server against; absent: plaintext (h2c). */
  readonly ca?: Buffer;
  /** Sent as `authorization` on every call (only ever given with `ca`). */
  readonly authorization?: string;
  /** The largest message accepted from the server. */
  readonly maxReceiveBytes: number;
}


/** One HTTP/2 connection to a gRPC server, opened on the first call. */
export class H2Channel {
  private session: ClientHttp2Session | undefined;
  /** Why the connection failed, once it has (every later call fails the same way). */
  private broken: GrpcFailure | undefined;
  private readonly streams = new Set<ClientHttp2Stream>();

  constructor(private readonly options: H2ChannelOptions) {}

  /** A unary call; rejects with a {@link GrpcFailure}. */
  unary(method: MethodCodec, request: unknown, deadlineMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let reply: unknown;
      let replies = 0;
      this.call(method, request, deadlineMs, {
        message: (bytes) => {
          replies += 1;
          reply = method.deserialize(bytes);
        },
        end: (failure) => {
          if (failure !== undefined) reject(failure);
          else if (replies !== 1) reject(new GrpcFailure(GRPC_STATUS.UNIMPLEMENTED, `expected one reply to ${method.path}, got ${replies}`));
          else resolve(reply);
        },
      });
    });
  }

  /**
   * A server-streaming call: every message goes to `onMessage` in order, the next one only after
   * the promise it returns settles (the stream is paused meanwhile). Resolves at the end of the
   * stream; rejects with a {@link GrpcFailure}, or with `onMessage`'s error (which cancels the
   * call). No deadline: a watch lasts as long as what it watches.
   */
  stream(method: MethodCodec, request: unknown, onMessage: (message: unknown) => void | Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending = Promise.resolve();
      let failed = false;
      const handle = this.call(method, request, undefined, {
        message: (bytes) => {
          const message = method.deserialize(bytes);
          handle?.pause();
          pending = pending
            .then(() => onMessage(message))
            .then(
              () => handle?.resume(),
              (error: unknown) => {
                failed = true;
                handle?.cancel();
                reject(error);
              },
            );
        },
        end: (failure) => {
          if (failed) return;
          void pending.then(() => (failure === undefined ? resolve() : reject(failure)));
        },
      });
    });
  }

  /** Closes the connection; calls still open end CANCELLED. */
  close(): void {
    for (const stream of this.streams) stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session?.close();
    this.session = undefined;
  }

  private connect(): ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const { address, ca } = this.options;
    const authority = `${ca === undefined ? 'http' : 'https'}://${address}`;
    const session = http2.connect(authority, ca === undefined ? {} : { ca, ALPNProtocols: ['h2'] });
    session.on('error', (error: NodeJS.ErrnoException) => {
      this.broken = new GrpcFailure(GRPC_STATUS.UNAVAILABLE, connectionWords(error), { cause: error });
      for (const stream of this.streams) stream.destroy(this.broken);
    });
    session.on('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
      const failure = this.broken ?? new GrpcFailure(GRPC_STATUS.UNAVAILABLE, 'Connection dropped');
      for (const stream of this.streams) stream.destroy(failure);
    });
    this.session = session;
    return session;
  }

  private call(
    method: MethodCodec,
    request: unknown,
    deadlineMs: number | undefined,
    on: { message: (bytes: Buffer) => void; end: (failure: GrpcFailure | undefined) => void },
  ): { pause(): void; resume(): void; cancel(): void } | undefined {
    let ended = false;
    let timer: NodeJS.Timeout | undefined;
    const end = (failure: GrpcFailure | undefined): void => {
      if (ended) return;
      ended = true;
      if (timer !== undefined) clearTimeout(timer);
      on.end(failure);
    };
    if (this.broken !== undefined) {
      end(this.broken);
      return undefined;
    }
    let body: Buffer;
    try {
      body = frame(method.serialize(request));
    } catch (error) {
      end(new GrpcFailure(GRPC_STATUS.INTERNAL, `cannot encode the request to ${method.path}: ${(error as Error).message}`, { cause: error }));
      return undefined;
    }
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': method.path,
      'content-type': 'application/grpc+proto',
      te: 'trailers',
      'user-agent': 'omega-cli',
    };
    if (this.options.authorization !== undefined) headers['authorization'] = this.options.authorization;
    if (deadlineMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(deadlineMs))}m`;
    let stream: ClientHttp2Stream;
    try {
      stream = this.connect().request(headers);
    } catch (error) {
      end(new GrpcFailure(GRPC_STATUS.UNAVAILABLE, connectionWords(error as NodeJS.ErrnoException), { cause: error }));
      return undefined;
    }
    this.streams.add(stream);
    if (deadlineMs !== undefined) {
      timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        end(new GrpcFailure(GRPC_STATUS.DEADLINE_EXCEEDED, `Deadline exceeded after ${deadlineMs} ms`));
      }, deadlineMs);
    }
    const reader = new FrameReader(this.options.maxReceiveBytes);
    let status: { code: number; details: string } | undefined;
    let httpStatus: number | undefined;
    stream.on('response', (response: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
      httpStatus = response[':status'];
      // A trailers-only reply (an error before any message) carries the status in its headers.
      status = statusOf(response) ?? status;
    });
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      status = statusOf(trailers) ?? status;
    });
    stream.on('data', (chunk: Buffer) => {
      if (ended) return;
      try {
        for (const message of reader.push(chunk)) on.message(message);
      } catch (error) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        end(error instanceof GrpcFailure ? error : new GrpcFailure(GRPC_STATUS.INTERNAL, `cannot decode a reply from ${method.path}: ${(error as Error).message}`, { cause: error }));
      }
    });
    stream.on('error', (error: Error) => {
      end(error instanceof GrpcFailure ? error : new GrpcFailure(GRPC_STATUS.UNAVAILABLE, connectionWords(error as NodeJS.ErrnoException), { cause: error }));
    });
    stream.on('close', () => {
      this.streams.delete(stream);
      if (status !== undefined) end(status.code === GRPC_STATUS.OK ? reader.leftover() : new GrpcFailure(status.code, status.details));
      else if (httpStatus !== undefined && httpStatus !== 200) end(new GrpcFailure(httpStatusCode(httpStatus), `the server answered HTTP ${httpStatus}, not gRPC`));
      else end(new GrpcFailure(GRPC_STATUS.UNAVAILABLE, this.broken?.details ?? 'Connection dropped (the call ended without a gRPC status)'));
    });
    stream.end(body);
    return {
      pause: () => stream.pause(),
      resume: () => stream.resume(),
      cancel: () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        end(new GrpcFailure(GRPC_STATUS.CANCELLED, 'Cancelled on client'));
      },
    };
  }
}

/** One length-prefixed, uncompressed gRPC message. */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Splits the reply's byte stream into messages, however the chunks fall. */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const messages: Buffer[] = [];
    while (this.buffered.length >= 5) {
      if (this.buffered[0] !== 0) throw new GrpcFailure(GRPC_STATUS.INTERNAL, 'the server sent a compressed message, which was not asked for');
      const length = this.buffered.readUInt32BE(1);
      if (length > this.maxBytes) throw new GrpcFailure(GRPC_STATUS.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${this.maxBytes})`);
      if (this.buffered.length < 5 + length) break;
      messages.push(this.buffered.subarray(5, 5 + length));
      this.buffered = this.buffered.subarray(5 + length);
    }
    return messages;
  }

  /** Undefined when the stream ended on a message boundary, else the failure to report. */
  leftover(): GrpcFailure | undefined {
    return this.buffered.length === 0 ? undefined : new GrpcFailure(GRPC_STATUS.INTERNAL, `the reply ended inside a message (${this.buffered.length} bytes left)`);
  }
}

function statusOf(headers: IncomingHttpHeaders): { code: number; details: string } | undefined {
  const raw = headers['grpc-status'];
  if (raw === undefined) return undefined;
  const code = Number(Array.isArray(raw) ? raw[0] : raw);
  const message = headers['grpc-message'];
  const text = Array.isArray(message) ? message[0] : message;
  return { code: Number.isInteger(code) ? code : GRPC_STATUS.UNKNOWN, details: text === undefined ? '' : percentDecode(text) };
}

/** `grpc-message` is percent-encoded UTF-8. */
function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The gRPC code for a non-gRPC HTTP reply, as the spec's HTTP-to-gRPC mapping has it. */
function httpStatusCode(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    default:
      return GRPC_STATUS.UNAVAILABLE;
  }
}

/** A socket or TLS error in words that keep OpenSSL's and the errno's names (the CLI's hints match them). */
function connectionWords(error: NodeJS.ErrnoException): string {
  const code = error.code;
  return code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
