/**
 * Worker thread of the simulation pool (sim-runner.ts): runs one simulation per message and
 * posts back its result (or the error's stack).
 */
import { parentPort } from 'node:worker_threads';
import { runSimulation, type SimulationConfig } from '@omega/simulator';

const port = parentPort;
if (port === null) throw new Error('sim-worker.js must run as a worker thread');
port.on('message', (config: SimulationConfig) => {
  runSimulation(config).then(
    (result) => port.postMessage({ ok: true, result }),
    (error: unknown) => port.postMessage({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
