/**
 * Deleting a finished job: its job record, task records, status and owner record, once, and only
 * while the job is still the finished job the caller saw. Called through {@link Cell.deleteJob}
 * by whatever enforces retention (the schedulers' janitor).
 *
 * The job's request record (`requests/<id>`) is left to expire on its own
 * (`Cell.deleteExpiredRequests`, the request retention): until then a client resending the
 * submit learns that its job was deleted instead of creating a second one, whatever the job's
 * own retention. Both retentions bound the state.
 *
 * ```
 *  read job + status + tasks ─► still as seen? finished? every task terminal? no live claim?
 *        │ no: 'gone' / 'changed' / 'active'
 *  read the machines that may hold the job's claims (caller's hint + each task's machine)
 *        │
 *  fits one transaction ──► [guards: job, status, each task, each machine mod_revision]
 *        │                   prune the job's claims, delete tasks/<job>/, status, owner,
 *        │                   secret env (/omega-secrets/), job              ──► 'deleted'
 *  too large ──► prune claims, machine by machine (each guarded by its mod_revision), then
 *                delete tasks in chunks (guarded by job, status, those tasks), then the rest
 * ```
 *
 * Why claims are pruned first (or together): cell-state's `isClaimLive` counts a claim whose task
 * record is missing as live (a view may not have seen the task yet), so a dead claim left on a
 * machine after its task is deleted would hold its resources forever. No claim of the job is
 * left pointing at a deleted task: claims go before, or in the same transaction as, their tasks.
 *
 * Pruning only removes claims that are dead (their task ended at the claim's attempt or moved
 * past it), so it only frees resources: it can never invalidate another scheduler's fit check.
 * A commit built on the machine record before the prune fails its sequence-number guard and,
 * under resource-fit, re-reads the pruned record; the claims it then writes never include the
 * pruned ones.
 *
 * Exactly once: every write is guarded by the mod_revisions it was computed from, so a resent
 * transaction (etcd3 retrying a call whose reply was lost) or a second janitor racing this one
 * finds its guards failed and changes nothing; the job then reads as gone. A finished job gets
 * no new placements (no scheduler takes one), and the task guards catch one that slipped through.
 */
import { decodeJobStatus, decodeMachine, decodeTask, encodeMachine } from './codec.js';
import type { CellKeys } from './keys.js';
import type { Compare, KeyValue, KvStore, Op } from './kv.js';
import { isClaimLive } from './resources.js';
import { isTerminal, parseTaskId, type Claim, type JobId, type JobState, type Machine, type MachineId, type Task, type TaskId } from './types.js';

/** What the caller saw: the job finished, at these revisions. */
export interface DeleteJobRequest {
  readonly jobId: JobId;
  /** The job record's mod_revision as seen (`Job.revision`). */
  readonly jobRevision: number;
  /** The status record's mod_revision as seen (`JobStatus.revision`). */
  readonly statusRevision: number;
  /**
   * Machines that may hold claims of the job's tasks, e.g. from the caller's snapshot (earlier
   * attempts may have left claims on machines other than their task's current one). Each task's
   * current machine is looked at too.
   */
  readonly machines?: Iterable<MachineId>;
}

/**
 * - `deleted`: this call deleted the job;
 * - `gone`: there is no job record (deleted already, by another caller or by this call's own
 *   write whose reply was lost and resent);
 * - `changed`: the job or its status is no longer the one the caller saw, or is not finished;
 * - `active`: a task of the job is not terminal or still has a live claim (nothing written);
 * - `contended`: the machines kept changing under the prune (the caller may try again later).
 */
export type DeleteJobOutcome = 'deleted' | 'gone' | 'changed' | 'active' | 'contended';

export interface DeleteJobResult {
  readonly outcome: DeleteJobOutcome;
  /** Task records deleted by this call. */
  readonly tasks: number;
  /** Dead claims of the job removed from machine records by this call. */
  readonly claimsPruned: number;
}

const FINISHED: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'killed']);
const ATTEMPTS = 16;

interface JobRead {
  readonly tasks: readonly Task[];
}

interface Prune {
  readonly machine: Machine;
  readonly kept: readonly Claim[];
  readonly removed: number;
}

/** See the file header. */
export async function deleteFinishedJob(kv: KvStore, keys: CellKeys, request: DeleteJobRequest): Promise<DeleteJobResult> {
  const { jobId } = request;
  const hint = [...(request.machines ?? [])];
  let tasksDeleted = 0;
  let claimsPruned = 0;
  const result = (outcome: DeleteJobOutcome): DeleteJobResult => ({ outcome, tasks: tasksDeleted, claimsPruned });
  const maxOps = Math.max(4, kv.limits.maxTxnOps);

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const read = await readJob(kv, keys, request);
    if (read === 'gone' || read === 'changed' || read === 'active') return result(read);

    const byId = new Map<TaskId, Task>(read.tasks.map((t) => [t.id, t]));
    const lookup = (id: TaskId): Task | undefined => byId.get(id);
    const ids = new Set<MachineId>(hint);
    for (const t of read.tasks) if (t.machineId !== '') ids.add(t.machineId);
    const prunes: Prune[] = [];
    for (const machine of await readMachines(kv, keys, [...ids], maxOps)) {
      const ours = (c: Claim): boolean => parseTaskId(c.taskId)?.jobId === jobId;
      // A claim whose task record is missing can only be left over from a delete that stopped
      // half way (claims are committed with their task): it is dead too.
      if (machine.claims.some((c) => ours(c) && lookup(c.taskId) !== undefined && isClaimLive(c, lookup))) return result('active');
      const kept = machine.claims.filter((c) => !ours(c));
      if (kept.length < machine.claims.length) prunes.push({ machine, kept, removed: machine.claims.length - kept.length });
    }

    const jobGuards: Compare[] = [
      { key: keys.job(jobId), target: 'mod', op: '==', value: request.jobRevision },
      { key: keys.status(jobId), target: 'mod', op: '==', value: request.statusRevision },
    ];
    const taskGuards: Compare[] = read.tasks.map((t) => ({ key: keys.task(t.id), target: 'mod', op: '==', value: t.revision }));
    const pruneOps = prunes.map((p) => pruneOp(keys, p));
    const rest = finalOps(keys, jobId);
    const bytes = pruneOps.reduce((n, op) => n + op.put.value.length + op.put.key.length, 0);
    const oneTxn = jobGuards.length + taskGuards.length + prunes.length <= maxOps && rest.length + prunes.length <= maxOps && bytes <= kv.limits.maxRequestBytes / 2;

    if (oneTxn) {
      const reply = await kv.txn({ compare: [...jobGuards, ...taskGuards, ...pruneOps.map((o) => o.guard)], success: [...pruneOps.map((o) => o.put), ...rest], failure: [] });
      if (!reply.succeeded) continue; // re-read: gone, changed, or a machine moved (retry)
      tasksDeleted += read.tasks.length;
      claimsPruned += prunes.reduce((n, p) => n + p.removed, 0);
      return result('deleted');
    }

    if (prunes.length > 0) {
      // Too large for one transaction: prune first, machine by machine. Each prune stands on its
      // own (it removes dead claims only); a machine that moved is pruned again after a re-read.
      claimsPruned += await pruneInChunks(kv, prunes, pruneOps, maxOps);
      continue;
    }
    let complete = true;
    const chunk = maxOps - jobGuards.length;
    for (let start = 0; start < read.tasks.length; start += chunk) {
      const part = read.tasks.slice(start, start + chunk);
      const reply = await kv.txn({
        compare: [...jobGuards, ...taskGuards.slice(start, start + chunk)],
        success: part.map((t): Op => ({ type: 'delete', key: keys.task(t.id) })),
        failure: [],
      });
      if (!reply.succeeded) {
        complete = false;
        break;
      }
      tasksDeleted += part.length;
    }
    if (!complete) continue;
    const reply = await kv.txn({ compare: jobGuards, success: rest, failure: [] });
    if (reply.succeeded) return result('deleted');
  }
  return result('contended');
}

/** The job, its status and its tasks in one read, checked against what the caller saw. */
async function readJob(kv: KvStore, keys: CellKeys, request: DeleteJobRequest): Promise<JobRead | 'gone' | 'changed' | 'active'> {
  const { jobId } = request;
  const reply = await kv.txn({
    compare: [],
    success: [
      { type: 'range', key: keys.job(jobId) },
      { type: 'range', key: keys.status(jobId) },
      { type: 'range', key: keys.tasksOfJob(jobId), prefix: true },
    ],
    failure: [],
  });
  const kvsOf = (i: number): readonly KeyValue[] => {
    const r = reply.results[i];
    return r?.type === 'range' ? r.kvs : [];
  };
  const job = kvsOf(0)[0];
  const status = kvsOf(1)[0];
  if (job === undefined) return 'gone';
  if (job.modRevision !== request.jobRevision || status === undefined || status.modRevision !== request.statusRevision) return 'changed';
  if (!FINISHED.has(decodeJobStatus(jobId, status.value, status.modRevision).state)) return 'changed';
  const tasks = kvsOf(2).map((t) => decodeTask(t.value, t.modRevision));
  if (tasks.some((t) => !isTerminal(t.state))) return 'active';
  return { tasks };
}

async function readMachines(kv: KvStore, keys: CellKeys, ids: readonly MachineId[], maxOps: number): Promise<Machine[]> {
  const out: Machine[] = [];
  for (let start = 0; start < ids.length; start += maxOps) {
    const part = ids.slice(start, start + maxOps);
    const reply = await kv.txn({ compare: [], success: part.map((id): Op => ({ type: 'range', key: keys.machine(id) })), failure: [] });
    for (const r of reply.results) {
      const m = r.type === 'range' ? r.kvs[0] : undefined;
      if (m !== undefined) out.push(decodeMachine(m.value, m.modRevision));
    }
  }
  return out;
}

function pruneOp(keys: CellKeys, p: Prune): { guard: Compare; put: { type: 'put'; key: string; value: Uint8Array } } {
  const key = keys.machine(p.machine.id);
  return {
    guard: { key, target: 'mod', op: '==', value: p.machine.seq },
    put: { type: 'put', key, value: encodeMachine({ ...p.machine, claims: p.kept }) },
  };
}

/**
 * Deletes of everything but the machines' claims, the job record last. The secret env values
 * (outside the cell prefix) go in the same transaction as the job record: no job outlives its
 * secrets' deletion unnoticed, and no secret outlives its job.
 */
function finalOps(keys: CellKeys, jobId: JobId): Op[] {
  return [
    { type: 'delete', key: keys.tasksOfJob(jobId), prefix: true },
    { type: 'delete', key: keys.status(jobId) },
    { type: 'delete', key: keys.owner(jobId) },
    { type: 'delete', key: keys.secret(jobId) },
    { type: 'delete', key: keys.historyOfJob(jobId), prefix: true },
    { type: 'delete', key: keys.job(jobId) },
  ];
}

/** Each machine's prune guarded on its own, many per request; returns the claims removed. */
async function pruneInChunks(kv: KvStore, prunes: readonly Prune[], ops: readonly ReturnType<typeof pruneOp>[], maxOps: number): Promise<number> {
  let removed = 0;
  // Machine records with many claims are large: few per request keeps it far below the size limit.
  const chunk = Math.min(maxOps, 100);
  for (let start = 0; start < ops.length; start += chunk) {
    const part = ops.slice(start, start + chunk);
    const reply = await kv.txn({ compare: [], success: part.map((o): Op => ({ type: 'txn', txn: { compare: [o.guard], success: [o.put], failure: [] } })), failure: [] });
    reply.results.forEach((r, i) => {
      if (r.type === 'txn' && r.succeeded) removed += prunes[start + i]?.removed ?? 0;
    });
  }
  return removed;
}
