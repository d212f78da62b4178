#!/usr/bin/env node
/**
 * `omega-bench`: the benchmark's command line until `omega bench` wires {@link runBench} in.
 * The only place that exits the process.
 */
import { runBench } from './run-bench.js';

process.exitCode = await runBench(process.argv.slice(2));
