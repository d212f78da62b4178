/**
 * The seam over prom-client: one Registry per process (with Node's process metrics), served in
 * Prometheus' text format by {@link startMetricsServer}.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import { parseListen, type Counter, type Histogram, type Labels, type MetricDef, type Metrics, type Sample } from './metrics.js';

function labelled(labels: Labels | undefined): Record<string, string> {
  return labels === undefined ? {} : { ...labels };
}

export class PrometheusMetrics implements Metrics {
  readonly registry = new client.Registry();
  private readonly made = new Map<string, unknown>();

  /** @param options.processMetrics Node's process metrics (CPU, memory, event loop lag); default true. */
  constructor(options: { readonly processMetrics?: boolean; readonly labels?: Labels } = {}) {
    if (options.labels !== undefined) this.registry.setDefaultLabels({ ...options.labels });
    if (options.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
  }

  private once<T>(name: string, make: () => T): T {
    const existing = this.made.get(name);
    if (existing !== undefined) return existing as T;
    const made = make();
    this.made.set(name, made);
    return made;
  }

  counter(def: MetricDef): Counter {
    return this.once(def.name, () => {
      const c = new client.Counter({ name: def.name, help: def.help, labelNames: [...(def.labelNames ?? [])], registers: [this.registry] });
      return { inc: (labels?: Labels, by = 1) => c.inc(labelled(labels), by) };
    });
  }

  histogram(def: MetricDef & { readonly buckets: readonly number[] }): Histogram {
    return this.once(def.name, () => {
      const h = new client.Histogram({ name: def.name, help: def.help, labelNames: [...(def.labelNames ?? [])], buckets: [...def.buckets], registers: [this.registry] });
      return { observe: (value: number, labels?: Labels) => h.observe(labelled(labels), value) };
    });
  }

  observed(def: MetricDef & { readonly type: 'counter' | 'gauge' }, read: () => readonly Sample[] | Promise<readonly Sample[]>): void {
    this.once(def.name, () => {
      const common = { name: def.name, help: def.help, labelNames: [...(def.labelNames ?? [])], registers: [this.registry] };
      if (def.type === 'gauge') {
        return new client.Gauge({
          ...common,
          async collect() {
            this.reset();
            for (const s of await read()) this.set(labelled(s.labels), s.value);
          },
        });
      }
      return new client.Counter({
        ...common,
        async collect() {
          this.reset();
          for (const s of await read()) this.inc(labelled(s.labels), Math.max(0, s.value));
        },
      });
    });
  }

  /** Everything registered, in Prometheus' text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

export interface MetricsServer {
  /** `host:port` as listened on. */
  readonly address: string;
  /** `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (and `HEAD`) from `metrics` on `listen` (`host:port`, port 0: a free
 * one); anything else is 404, other methods 405. Plain HTTP: bind it where only the scraper
 * reaches (loopback or a management network); the figures hold no secrets.
 */
export async function startMetricsServer(metrics: PrometheusMetrics, listen: string): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if ((request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    metrics.text().then(
      (text) => {
        response.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`could not collect the metrics: ${(error as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    address: `${shown}:${bound}`,
    url: `http://${shown}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
