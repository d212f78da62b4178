/**
 * The metrics seam: what a component records (counters, histograms) and what it lets be read at
 * scrape time (figures it already keeps, such as a mirror's revision or a scheduler's
 * transactions). Injected like the logger; {@link NO_METRICS} (the default everywhere) records
 * nothing and costs nothing, so simulations and tests run without a registry.
 *
 * Names follow Prometheus' conventions: `omega_` prefix, base units (`_seconds`, `_bytes`),
 * `_total` on counters. A name is registered once per seam: asking again for the same name
 * returns the same metric (two components of one process may share it).
 */

export type Labels = Readonly<Record<string, string>>;

export interface MetricDef {
  /** `omega_<component>_<what>[_unit][_total]`. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}

export interface Histogram {
  /** One observation, in the metric's base unit (seconds for latencies). */
  observe(value: number, labels?: Labels): void;
}

/** One sample of a metric read at scrape time. */
export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

export interface Metrics {
  counter(def: MetricDef): Counter;
  histogram(def: MetricDef & { readonly buckets: readonly number[] }): Histogram;
  /**
   * A figure the component keeps itself, read when scraped: `counter` for ones that only grow
   * (exposed with their `_total` name), `gauge` for the others. `read` may be async (a store
   * round trip for a lag) and may return no sample.
   */
  observed(def: MetricDef & { readonly type: 'counter' | 'gauge' }, read: () => readonly Sample[] | Promise<readonly Sample[]>): void;
}

const NO_COUNTER: Counter = { inc: () => undefined };
const NO_HISTOGRAM: Histogram = { observe: () => undefined };

/** Records nothing. */
export const NO_METRICS: Metrics = Object.freeze({
  counter: () => NO_COUNTER,
  histogram: () => NO_HISTOGRAM,
  observed: () => undefined,
});

/** Latency buckets in seconds, from 1 ms to 30 s: commits, RPCs, task starts. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Buckets in seconds for waits that last minutes: submit to placed, to running. */
export const WAIT_BUCKETS_SECONDS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** `127.0.0.1:9100`, `[::1]:9100`, `0.0.0.0:0` → host and port; throws naming the problem. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port > 65535) throw new Error(`${JSON.stringify(value)} is not host:port (e.g. 127.0.0.1:9100, [::1]:9100; port 0 picks a free one)`);
  return { host: m[1] ?? m[2] ?? '', port };
}
