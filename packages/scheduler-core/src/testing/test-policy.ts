/**
 * A plain, deterministic policy for testing the loop without a real policy package: each task
 * goes on the first offered machine (in order) where it fits; ruled-out counts are those of the
 * first task that fits nowhere (each machine under the first resource it lacks), as the real
 * policies report them.
 */
import { resourceShortage, type TransactionMode } from '@omega/cell-state';
import type { PlaceInput, PlaceOutcome, PlacementPolicy } from '../policy.js';

export interface TestPolicyOptions {
  readonly kind?: 'batch' | 'service';
  readonly defaultTransactionMode?: TransactionMode;
  /** Called on every placement (e.g. to throw, or to record inputs). */
  readonly onPlace?: (input: PlaceInput) => void;
}

export function firstFitPolicy(options: TestPolicyOptions = {}): PlacementPolicy {
  return {
    kind: options.kind ?? 'batch',
    defaultTransactionMode: options.defaultTransactionMode ?? 'incremental',
    place(input: PlaceInput): PlaceOutcome {
      options.onPlace?.(input);
      const request = input.job.spec.task.resources;
      let placed = 0;
      for (const task of input.tasks) {
        let done = false;
        for (const m of input.machines) {
          if (!input.cell.fits(m.id, request)) continue;
          const out = input.cell.claim(m.id, { taskId: task.taskId, resources: request, priority: input.job.spec.priority });
          if (out.refused === undefined) {
            placed++;
            done = true;
            break;
          }
        }
        if (done) continue;
        const ruledOut = new Map<string, number>();
        for (const m of input.machines) {
          const free = input.cell.free(m.id);
          const filter = resourceShortage(request.cpuMillis, request.memoryBytes, free.cpuMillis, free.memoryBytes) ?? 'refused';
          ruledOut.set(filter, (ruledOut.get(filter) ?? 0) + 1);
        }
        return { placed, ruledOut };
      }
      return { placed, ruledOut: new Map() };
    },
  };
}
