/**
 * @omega/bench: the Omega paper's experiments, simulated and live, and the micro-benchmarks.
 * `runBench(argv)` is the whole command line (`omega bench sim|live ...`); the rest is exported
 * for tests and for people building on the results. See bench/README.md.
 */
export { BENCH_USAGE, parseBenchArgs, runBench } from './run-bench.js';
export { runSimCommand, type Print, type SimCommandOptions } from './sim-command.js';
export { runLiveCommand, LIVE_EXPERIMENTS, T1_TARGET, type LiveCommandOptions, type LiveExperimentId } from './live-command.js';
export { SIM_EXPERIMENTS, simExperiment, type SimExperiment, type SimExperimentId, type SimExperimentOptions, type SimPoint } from './sim-experiments.js';
export { runSimExperiment, type SimPointResult } from './sim-runner.js';
export { simChecks } from './sim-checks.js';
export { canonicalJson, checkLine, configHash, hostInfo, writeResult, type BenchResult, type CheckResult, type HostInfo, type PaperReference } from './result.js';
export { renderSvg, vegaLiteSpec, type ChartPoint, type ChartSpec, type Panel } from './charts.js';
