/**
 * `omega dev --demo`: a small workload that shows the cell at work: a few batch jobs (one of
 * them failing on purpose) and a service of two instances. Submitted with fixed request ids, so
 * starting the demo again on the same data directory does not submit it twice.
 */
import { DEFAULT_NAMESPACE, type JobSpec } from '@omega/cell-state/vocabulary';
import type { ApiClient } from '../api-client.js';
import { jobSpecToWire } from '../wire.js';

const MiB = 1024 * 1024;

function spec(name: string, kind: JobSpec['kind'], instances: number, script: string, runDurationMs: number): JobSpec {
  return {
    name,
    namespace: DEFAULT_NAMESPACE,
    kind,
    priority: kind === 'service' ? 100 : 0,
    instances,
    commitMode: 'default',
    // runDurationMs: how long the task "runs" when it lands on a hollow machine.
    task: { command: ['sh', '-c', script], env: {}, resources: { cpuMillis: 100, memoryBytes: 32 * MiB }, runDurationMs, hollowFail: false, pidsLimit: 0 },
    constraints: [],
    restartPolicy: { kind: 'default', maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 },
  };
}

/** The demo's jobs. */
export const DEMO_JOBS: readonly JobSpec[] = [
  spec('hello', 'batch', 3, 'echo hello from $OMEGA_TASK_ID; sleep 2', 2_000),
  spec('count', 'batch', 2, 'for i in 1 2 3 4 5; do echo "$OMEGA_TASK_ID counts $i"; sleep 1; done', 5_000),
  spec('oops', 'batch', 1, 'echo "this task fails on purpose" >&2; exit 3', 1_000),
  spec('web', 'service', 2, 'while true; do echo "$OMEGA_TASK_ID is serving"; sleep 5; done', 3_600_000),
];

export interface SubmittedDemoJob {
  readonly id: string;
  readonly spec: JobSpec;
}

/** Submits the demo jobs; `runId` makes the request ids (one demo per data directory). */
export async function submitDemo(client: ApiClient, runId: string): Promise<SubmittedDemoJob[]> {
  const submitted: SubmittedDemoJob[] = [];
  for (const job of DEMO_JOBS) {
    const reply = await client.jobs.submitJob({ job: jobSpecToWire(job), request_id: `demo-${runId}-${job.name}` });
    submitted.push({ id: reply.job_id, spec: job });
  }
  return submitted;
}
