/**
 * A steady workload for fault tests: every `everyMs` one job is submitted through the API (a
 * service job every `serviceEvery`-th time, else a short batch job), each submission retrying on
 * its own until acknowledged (see {@link JobSubmitter}), so a fault never stops the stream. Each
 * submission is tagged with the phase the test was in when it was first sent, so the test can ask
 * "were the jobs submitted after the leader died placed?". Shapes come from a seeded generator.
 */
import { hollowBatchJob, hollowServiceJob, SubmitFailedError, type JobSubmitter } from './job-submitter.js';

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface WorkloadOptions {
  readonly prefix: string;
  readonly seed: number;
  readonly everyMs: number;
  readonly serviceEvery: number;
  /** How long one submission keeps retrying before the test fails it (default 120 s). */
  readonly giveUpAfterMs?: number;
}

export class Workload {
  /** The phase new submissions are tagged with. */
  phase = 'start';
  readonly phases = new Map<string, string[]>();
  readonly failures: SubmitFailedError[] = [];
  private readonly random: () => number;
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private n = 0;

  constructor(
    private readonly submitter: JobSubmitter,
    private readonly options: WorkloadOptions,
  ) {
    this.random = seededRandom(options.seed);
  }

  start(): void {
    this.timer = setInterval(() => this.submitOne(), this.options.everyMs);
  }

  /** Stops sending new jobs and waits until every submission was answered or given up. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Request ids first sent during `phase`. */
  submittedIn(phase: string): string[] {
    return this.phases.get(phase) ?? [];
  }

  private submitOne(): void {
    const i = this.n++;
    const requestId = `${this.options.prefix}-${i}`;
    const service = i % this.options.serviceEvery === this.options.serviceEvery - 1;
    const name = `${service ? 'svc' : 'batch'}-${i}`;
    const job = service
      ? hollowServiceJob(name, 1 + Math.floor(this.random() * 3), 100 + 50 * Math.floor(this.random() * 3))
      : hollowBatchJob(name, 1 + Math.floor(this.random() * 8), 100 + 100 * Math.floor(this.random() * 4), 1_000 + Math.floor(this.random() * 3_000));
    const list = this.phases.get(this.phase) ?? [];
    list.push(requestId);
    this.phases.set(this.phase, list);
    const done = this.submitter
      .submit(requestId, service ? 'service' : 'batch', job, this.options.giveUpAfterMs === undefined ? {} : { giveUpAfterMs: this.options.giveUpAfterMs })
      .then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof SubmitFailedError) this.failures.push(error);
          else throw error;
        },
      )
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }
}
