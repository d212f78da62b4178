/**
 * The API's figures on the metrics seam, recorded around every guarded method (so refused
 * calls count too, under their status code):
 *
 * | metric | type | what |
 * |---|---|---|
 * | `omega_api_requests_total{method, code}` | counter | calls ended, by gRPC status (`OK`, `INVALID_ARGUMENT`, `UNAUTHENTICATED`, ...) |
 * | `omega_api_request_duration_seconds{method}` | histogram | unary calls, received to answered |
 * | `omega_api_streams_open{method}` | gauge | WatchJob / GetTaskLogs streams open now |
 */
import { status, type ServerWritableStream } from '@grpc/grpc-js';
import { LATENCY_BUCKETS_SECONDS, type Counter, type Histogram, type Metrics } from '@omega/metrics/seam';

const CODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

/** The status name of a call's error (`OK` for none). */
export function codeName(error: { code?: number } | null | undefined): string {
  if (error === null || error === undefined) return 'OK';
  return CODE_NAMES[error.code ?? status.UNKNOWN] ?? 'UNKNOWN';
}

export class RpcMetrics {
  private readonly requests: Counter;
  private readonly duration: Histogram;
  private readonly open = new Map<string, number>();

  constructor(metrics: Metrics) {
    this.requests = metrics.counter({ name: 'omega_api_requests_total', help: 'API calls ended, by method and gRPC status code.', labelNames: ['method', 'code'] });
    this.duration = metrics.histogram({ name: 'omega_api_request_duration_seconds', help: 'Unary API calls, received to answered.', labelNames: ['method'], buckets: LATENCY_BUCKETS_SECONDS });
    metrics.observed({ name: 'omega_api_streams_open', help: 'Server streams (WatchJob, GetTaskLogs) open now.', labelNames: ['method'], type: 'gauge' }, () =>
      [...this.open].map(([method, value]) => ({ labels: { method }, value })),
    );
  }

  /** Call when a unary call was answered. */
  unaryDone(method: string, startedAt: number, error: { code?: number } | null | undefined): void {
    this.requests.inc({ method, code: codeName(error) });
    this.duration.observe((performance.now() - startedAt) / 1000, { method });
  }

  /** Counts a server stream while it is open, and its end by status. */
  track(method: string, call: ServerWritableStream<unknown, unknown>): void {
    this.open.set(method, (this.open.get(method) ?? 0) + 1);
    let ended = false;
    const end = (code: string): void => {
      if (ended) return;
      ended = true;
      this.open.set(method, (this.open.get(method) ?? 1) - 1);
      this.requests.inc({ method, code });
    };
    const emit = call.emit.bind(call);
    call.emit = ((event: string | symbol, ...args: unknown[]) => {
      if (event === 'error') end(codeName(args[0] as { code?: number }));
      return emit(event, ...args);
    }) as typeof call.emit;
    call.once('finish', () => end('OK'));
    call.once('cancelled', () => end('CANCELLED'));
    call.once('close', () => end('OK'));
  }
}
