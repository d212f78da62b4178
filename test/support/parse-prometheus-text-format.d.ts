// The package ships no types: what this repository's tests use of it.
declare module 'parse-prometheus-text-format' {
  /** Parses Prometheus' text exposition format into metric families (name, help, type, metrics). */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
