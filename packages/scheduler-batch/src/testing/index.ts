/**
 * Test support for @omega/scheduler-batch: a harness with batch scheduler instances ready to go.
 */
import { SchedulerHarness, type AddSchedulerOptions, type HarnessOptions } from '@omega/scheduler-core/testing';
import type { Scheduler } from '@omega/scheduler-core';
import { batchPolicy, type BatchPolicyOptions } from '../batch-policy.js';

/** A harness over `options.machines` with `count` batch instances (`batch-0`, ...). */
export async function batchHarness(
  count: number,
  options: HarnessOptions & { readonly policy?: BatchPolicyOptions; readonly scheduler?: AddSchedulerOptions } = {},
): Promise<{ harness: SchedulerHarness; schedulers: Scheduler[] }> {
  const harness = await SchedulerHarness.open(options);
  const schedulers: Scheduler[] = [];
  for (let i = 0; i < count; i++) schedulers.push(await harness.addScheduler(batchPolicy(options.policy), { ...options.scheduler, name: `batch-${i}` }));
  return { harness, schedulers };
}
