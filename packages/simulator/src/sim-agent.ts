/**
 * The simulator's stand-in for every node agent of the cell: a task "runs" from the moment its
 * claim commits for its job's `runDurationMs`, then succeeds (or fails, with `hollowFail`). It
 * skips the `running` report (nothing in the experiments reads it) and writes the outcomes due
 * at one virtual instant in one batched request, so it adds as little store traffic as possible
 * to what is measured: the schedulers.
 */
import { isTerminal, type Cell, type CellMirror, type Task, type TaskId } from '@omega/cell-state';
import type { VirtualClock } from './virtual-clock.js';

export class SimAgent {
  /** Task id + claim id of each task whose end is scheduled, so a re-delivered change schedules nothing twice. */
  private readonly scheduled = new Set<string>();
  private readonly due = new Map<number, TaskId[]>();
  private unsubscribe: (() => void) | undefined;
  tasksEnded = 0;

  constructor(
    private readonly cell: Cell,
    private readonly mirror: CellMirror,
    private readonly clock: VirtualClock,
  ) {}

  start(): void {
    this.unsubscribe = this.mirror.onChange((change) => {
      // The records as held now, read without freezing a snapshot per batch (see CellMirror.task).
      const mirror = this.mirror;
      const snapshot = change.full ? mirror.snapshot() : undefined;
      const ids = snapshot !== undefined ? [...snapshot.jobs()].flatMap((j) => [...snapshot.tasksOf(j.id)].map((t) => t.id)) : change.changes.filter((c) => c.kind === 'task' && c.type === 'put').map((c) => c.id as TaskId);
      for (const id of ids) {
        const task = mirror.task(id);
        if (task === undefined || task.state !== 'placed') continue;
        const key = `${task.id}#${task.claimId}`;
        if (this.scheduled.has(key)) continue;
        this.scheduled.add(key);
        const duration = mirror.job(task.jobId)?.spec.task.runDurationMs ?? 0;
        this.endAt(this.clock.now() + duration, task.id);
      }
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private endAt(timeMs: number, id: TaskId): void {
    const batch = this.due.get(timeMs);
    if (batch !== undefined) {
      batch.push(id);
      return;
    }
    this.due.set(timeMs, [id]);
    this.clock.at(timeMs, () => {
      const ids = this.due.get(timeMs) ?? [];
      this.due.delete(timeMs);
      void this.finish(ids);
    });
  }

  private async finish(ids: readonly TaskId[]): Promise<void> {
    // The records as held now (what a snapshot frozen here would show), without freezing one:
    // a snapshot makes the next change to every part of the replica copy that part first.
    const mirror = this.mirror;
    const updates: { task: Task; patch: { state: 'succeeded' | 'failed'; exitCode: number; finishedAtMs: number } }[] = [];
    for (const id of ids) {
      const task = mirror.task(id);
      if (task === undefined || isTerminal(task.state)) continue;
      this.scheduled.delete(`${task.id}#${task.claimId}`);
      const fail = mirror.job(task.jobId)?.spec.task.hollowFail === true;
      updates.push({ task, patch: { state: fail ? 'failed' : 'succeeded', exitCode: fail ? 1 : 0, finishedAtMs: this.clock.now() } });
    }
    if (updates.length === 0) return;
    await this.cell.updateTasks(updates);
    this.tasksEnded += updates.length;
  }
}
