/**
 * @omega/metrics: the metrics seam every Omega component records through (no-op by default) and
 * its Prometheus implementation. See README.md.
 */
export { LATENCY_BUCKETS_SECONDS, NO_METRICS, WAIT_BUCKETS_SECONDS, type Counter, type Histogram, type Labels, type MetricDef, type Metrics, type Sample } from './metrics.js';
export { PrometheusMetrics, parseListen, startMetricsServer, type MetricsServer } from './prometheus.js';
