/**
 * Runs the points of a simulated experiment over a pool of worker threads (one simulation per
 * worker at a time; a simulation is single-threaded, so on a 2-core machine two workers halve the
 * wall time), or in this thread when run from sources (tests). Results do not depend on the pool:
 * each point is a pure function of its config. One job still runs in a worker, for its heap
 * settings: a simulation allocates short-lived records at a high rate, and a young generation
 * larger than V8's default (256 MiB semi-spaces instead of 16) lets most of them die before a
 * scavenge has to copy them.
 */
import { Worker } from 'node:worker_threads';
import { runSimulation, type SimulationConfig, type SimulationResult } from '@omega/simulator';
import type { SimExperiment, SimPoint } from './sim-experiments.js';

/** Heap of each simulation worker: a full-scale simulated day holds ~2 million task records. */
const WORKER_HEAP_MB = 8192;
/**
 * Young generation of each simulation worker (V8 splits it into two 256 MiB semi-spaces and a
 * large-object space). Measured on the E3 reference point, one simulated hour in-process: 64 MiB
 * semi-spaces 17.9-18.3 s of CPU, 256 MiB 14.7-16.4 s (fewer scavenges, each copying about as
 * many survivors), 512 MiB and more no better; +120 MiB of peak RSS.
 */
const WORKER_YOUNG_MB = 768;

/** A point with its measurements. */
export interface SimPointResult {
  readonly id: string;
  readonly arm: string;
  readonly workload: string;
  readonly x: Readonly<Record<string, number>>;
  readonly config: SimulationConfig;
  readonly result: SimulationResult;
}

export interface SimRunOptions {
  /** Simulations at once (worker threads, when run from the build). Default 1. */
  readonly jobs?: number;
  /** Called after each point, e.g. to print progress. */
  readonly onPoint?: (done: number, total: number, point: SimPointResult) => void;
}

/** Whether this module runs from the build (workers need the compiled `sim-worker.js`). */
function workerUrl(): URL | undefined {
  const url = new URL('./sim-worker.js', import.meta.url);
  return import.meta.url.endsWith('.js') ? url : undefined;
}

/** Runs every point; results come back in the experiment's order. */
export async function runSimExperiment(experiment: SimExperiment, options: SimRunOptions = {}): Promise<SimPointResult[]> {
  const points = experiment.points;
  const results: (SimPointResult | undefined)[] = new Array(points.length).fill(undefined);
  const url = workerUrl();
  const jobs = url === undefined ? 1 : Math.max(1, Math.min(options.jobs ?? 1, points.length));
  let next = 0;
  let done = 0;
  const finish = (i: number, result: SimulationResult): void => {
    const p = points[i] as SimPoint;
    const r: SimPointResult = { id: p.id, arm: p.arm, workload: p.workload, x: p.x, config: p.config, result };
    results[i] = r;
    done++;
    options.onPoint?.(done, points.length, r);
  };
  if (url === undefined) {
    for (let i = 0; i < points.length; i++) finish(i, await runSimulation((points[i] as SimPoint).config));
    return results as SimPointResult[];
  }
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      // A simulated day keeps millions of task records (store + mirror): more than V8's default heap.
      const worker = new Worker(url, { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
      try {
        for (let i = next++; i < points.length; i = next++) finish(i, await runInWorker(worker, (points[i] as SimPoint).config));
      } finally {
        await worker.terminate();
      }
    }),
  );
  return results as SimPointResult[];
}

function runInWorker(worker: Worker, config: SimulationConfig): Promise<SimulationResult> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { ok: true; result: SimulationResult } | { ok: false; error: string }): void => {
      cleanup();
      if (message.ok) resolve(message.result);
      else reject(new Error(`simulation failed in a worker: ${message.error}`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.postMessage(config);
  });
}
