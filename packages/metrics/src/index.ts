/**
 * @omega/metrics: the metrics seam every Omega component records through (no-op by default) and
 * its Prometheus implementation. See README.md. `@omega/metrics/seam` is the seam alone (no
 * prom-client loaded): what libraries that only record import.
 */
export { LATENCY_BUCKETS_SECONDS, NO_METRICS, WAIT_BUCKETS_SECONDS, parseListen, type Counter, type Histogram, type Labels, type MetricDef, type Metrics, type Sample } from './metrics.js';
export { PrometheusMetrics, startMetricsServer, type MetricsServer } from './prometheus.js';
