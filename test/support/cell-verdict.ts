/**
 * The end-of-test judgement of a cell that went through faults, read from etcd through a fresh
 * mirror (not any process's replica): every acknowledged job is there, once; every job is placed,
 * finished or says why not; no machine's live claims exceed its capacity; no task has two live
 * claims. One line per problem; empty when the cell is sound.
 */
import { fitsWithin, usedResources, type Cell, type CellSnapshot, type JobId } from '@omega/cell-state';
import { jobAnswers, placementViolations, readStoredCell, type JobAnswer } from '@omega/scheduler-core/testing';

export interface CellVerdict {
  readonly problems: string[];
  readonly snapshot: CellSnapshot;
  readonly answers: ReadonlyMap<string, JobAnswer>;
  /** Jobs per answer (`placed`, `finished`, `reported`, `none`). */
  readonly counts: Readonly<Record<string, number>>;
}

/** Judges the cell as stored now against the jobs the API acknowledged (request id → job id). */
export async function judgeCell(cell: Cell, acknowledged: readonly { requestId: string; jobId: string }[]): Promise<CellVerdict> {
  const snapshot = await readStoredCell(cell);
  const problems: string[] = [];
  const answers = new Map(jobAnswers(snapshot, Date.now()).map((a) => [a.jobId as string, a]));
  const ackedIds = new Set<string>();
  for (const { requestId, jobId } of acknowledged) {
    if (ackedIds.has(jobId)) problems.push(`job ${jobId} was answered to two requests (the second: ${requestId})`);
    ackedIds.add(jobId);
    if (snapshot.job(jobId as JobId) === undefined) problems.push(`job ${jobId} (request ${requestId}) was acknowledged but is not in the cell`);
  }
  for (const job of snapshot.jobs()) {
    if (!ackedIds.has(job.id)) problems.push(`job ${job.id} is in the cell but no request was answered with it (a request made two jobs?)`);
  }
  for (const answer of answers.values()) {
    if (answer.answer === 'none') problems.push(`job ${answer.jobId} is neither placed nor ended nor says why: ${answer.detail}`);
  }
  problems.push(...placementViolations(snapshot));
  const lookup = (id: Parameters<CellSnapshot['task']>[0]) => snapshot.task(id);
  for (const machine of snapshot.machines()) {
    const used = usedResources(machine, lookup);
    if (!fitsWithin(used, machine.capacity)) problems.push(`machine ${machine.id}: live claims use ${JSON.stringify(used)}, more than its capacity ${JSON.stringify(machine.capacity)}`);
  }
  const counts: Record<string, number> = {};
  for (const a of answers.values()) counts[a.answer] = (counts[a.answer] ?? 0) + 1;
  return { problems: [...new Set(problems)], snapshot, answers, counts };
}
