/**
 * The careful service policy: constraints, spread, scoring and priority preemption, as a
 * {@link PlacementPolicy} for the shared scheduling loop of @omega/scheduler-core.
 */
import type { PlaceInput, PlaceOutcome, PlacementPolicy } from '@omega/scheduler-core';
import { resolveServiceOptions, type ResolvedServiceOptions, type ServicePolicyOptions } from './options.js';
import { ServicePlacement } from './placement.js';

const NOTHING_RULED_OUT: ReadonlyMap<string, number> = new Map();

/**
 * Builds the service policy (kind `service`, default transaction mode `incremental` unless
 * configured). Options are validated here, once: a bad one throws {@link ServiceOptionsError}
 * naming it, so a misconfigured scheduler fails at startup, not at its first job.
 *
 * The policy is pure and synchronous: it reads `input.snapshot`, claims only on `input.cell`,
 * draws randomness only from `input.random` (same inputs and seed, same claims), logs nothing,
 * and keeps no state between calls, so one policy object may serve any number of loops.
 */
export function servicePolicy(options: ServicePolicyOptions = {}): PlacementPolicy {
  const resolved = resolveServiceOptions(options);
  return {
    kind: 'service',
    defaultTransactionMode: resolved.defaultTransactionMode,
    place: (input) => placeService(input, resolved),
  };
}

/**
 * Places `input.tasks` in order, each on the best machine the pipeline finds (see placement.ts),
 * preempting strictly lower-priority claims when a task fits nowhere and preemption is enabled.
 *
 * Stops at the first task that can be placed nowhere: a service job's tasks are identical (one
 * task spec), and a task that found no machine changed nothing, so every later task would fail
 * the same way against the same cell. `ruledOut` is that task's breakdown: every machine of
 * `input.machines` counted once, under the first filter that ruled it out (static filters in
 * constraint order, then `max-per-machine N`, `cpu`, `memory`); the counts sum to the number of
 * machines offered. It is empty when every task was placed (or refused as already placed).
 */
export function placeService(input: PlaceInput, options: ResolvedServiceOptions): PlaceOutcome {
  if (input.tasks.length === 0) return { placed: 0, ruledOut: NOTHING_RULED_OUT };
  const placement = new ServicePlacement(input, options);
  let placed = 0;
  for (const task of input.tasks) {
    const outcome = placement.placeTask(task.taskId);
    if (outcome === 'placed') placed++;
    else if (outcome === 'nowhere') return { placed, ruledOut: placement.ruledOut() };
    // 'task-refused': the task is live or claimed already; not a machine's fault, go on.
  }
  return { placed, ruledOut: NOTHING_RULED_OUT };
}
