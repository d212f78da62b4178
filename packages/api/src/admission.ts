/**
 * A submit's admission at the API: Cell.submitJob (namespace exists, quota, the job stored in a
 * transaction guarded by the namespace record) with its refusals as gRPC statuses.
 *
 * | Cell.submitJob says | status             | message                                                        |
 * |---------------------|--------------------|----------------------------------------------------------------|
 * | unknown-namespace   | NOT_FOUND          | `job.namespace: namespace "x" does not exist (...)`            |
 * | over-quota          | RESOURCE_EXHAUSTED | `namespace "a": cpu 3000m requested + 8000m in use exceeds ...` |
 * | contended           | ABORTED            | `namespace "a": ... other submits kept getting in first; retry` |
 *
 * NOT_FOUND for an unknown namespace, as Kubernetes answers a create in a namespace that does not
 * exist (404 "namespaces \"x\" not found"); the message names the request field. Nothing is
 * stored for any refusal.
 */
import { status } from '@grpc/grpc-js';
import { describeExcess, type Job, type NewJob } from '@omega/cell-state';
import type { Logger } from 'pino';
import type { CellReader } from './cell-reader.js';
import type { Deadline } from './deadline.js';
import { ApiError } from './errors.js';

/**
 * Admits and stores `job` (see the file header), the quota judged on snapshots that the call's
 * `deadline` bounds. Resolves with the job (and whether this call created it); rejects with an
 * {@link ApiError} for a refusal, and as Cell.submitJob does for everything else (store errors,
 * a request id reused with another spec, a job id taken).
 */
export async function admitJob(reader: CellReader, job: NewJob, deadline: Deadline, logger: Logger): Promise<{ job: Job; created: boolean }> {
  // The mirror's namespace record lets a submit to a namespace without a quota cost one round trip.
  const result = await reader.cell.submitJob(job, { snapshotAtLeast: (revision) => reader.atLeast(revision, deadline), recentSnapshot: () => reader.mirror.snapshot() });
  const namespace = job.spec.namespace;
  switch (result.kind) {
    case 'admitted':
      if (result.conflicts > 0) logger.debug({ namespace, jobId: result.job.id, conflicts: result.conflicts }, 'admission judged again after concurrent submits');
      return { job: result.job, created: result.created };
    case 'unknown-namespace':
      throw new ApiError(status.NOT_FOUND, `job.namespace: namespace ${JSON.stringify(result.namespace)} does not exist (an admin creates it with CreateNamespace)`);
    case 'over-quota':
      logger.info({ namespace, resource: result.excess.resource, requested: result.excess.requested, used: result.excess.used, quota: result.excess.quota, conflicts: result.conflicts }, 'submit refused: over the namespace quota');
      throw new ApiError(status.RESOURCE_EXHAUSTED, describeExcess(result.excess));
    case 'contended':
      logger.warn({ namespace, conflicts: result.conflicts }, 'submit gave up: concurrent submits to the namespace kept getting in first');
      throw new ApiError(status.ABORTED, `namespace ${JSON.stringify(namespace)}: ${result.conflicts} other submits kept getting in first while this one was judged against the quota; retry`);
  }
}
