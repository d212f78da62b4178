/**
 * Properties of several batch scheduler instances competing over one in-memory cell, with random
 * machines, jobs, think times, conflict modes, submission times, a crash of one instance and the
 * loss of a machine:
 * - no machine's live claims exceed its capacity, no task has two live claims (read from the
 *   store, not from any instance's replica);
 * - no job is lost: each ends fully placed, finished, or with a status saying why not.
 *
 * A failing run prints its seed and path; replay with `FC_SEED=<seed> FC_PATH=<path>`.
 */
import { type ConflictMode } from '@omega/cell-state';
import { lostJobs, machine, placementViolations, jobSpec } from '@omega/scheduler-core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BATCH_CHOICES, type BatchChoice } from './batch-policy.js';
import { batchHarness } from './testing/index.js';

function fcParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env['FC_SEED'];
  const path = process.env['FC_PATH'];
  return { numRuns, ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }), verbose: 1 };
}

const machineArb = fc.record({ cpu: fc.integer({ min: 2, max: 16 }).map((n) => n * 500), memoryGi: fc.integer({ min: 1, max: 16 }) });
const jobArb = fc.record({
  instances: fc.integer({ min: 1, max: 6 }),
  cpu: fc.integer({ min: 1, max: 6 }).map((n) => n * 250),
  memoryMi: fc.integer({ min: 1, max: 6 }).map((n) => n * 256),
  gang: fc.boolean(),
  priority: fc.integer({ min: 0, max: 3 }),
  /** Submitted this long after the previous job (0: in the same burst; else often while instances still think). */
  gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
});
const scenarioArb = fc.record({
  machines: fc.array(machineArb, { minLength: 1, maxLength: 6 }),
  jobs: fc.array(jobArb, { minLength: 1, maxLength: 16 }),
  instances: fc.integer({ min: 2, max: 3 }),
  thinkJobMs: fc.oneof(fc.constant(0), fc.integer({ min: 20, max: 200 })),
  thinkTaskMs: fc.integer({ min: 0, max: 20 }),
  conflictMode: fc.constantFrom<ConflictMode>('resource-fit', 'sequence-numbers'),
  choice: fc.constantFrom<BatchChoice>(...BATCH_CHOICES),
  /** Crash instance 0 after this many jobs were submitted (none when beyond the job count). */
  crashAfterJobs: fc.integer({ min: 0, max: 20 }),
  /** Lose machine `which` after `afterJobs` jobs were submitted (none when beyond the counts). */
  loseMachine: fc.record({ which: fc.integer({ min: 0, max: 10 }), afterJobs: fc.integer({ min: 1, max: 20 }) }),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});

describe('batch schedulers competing over one cell', () => {
  it('never over-commit a machine, never place a task twice, and never lose a job', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (sc) => {
        const { harness: h, schedulers } = await batchHarness(sc.instances, {
          machines: sc.machines.map((m, i) => machine(`m${i}`).cpu(m.cpu).memory(`${m.memoryGi}Gi`)),
          seed: sc.seed,
          policy: { choice: sc.choice },
          scheduler: {
            settings: {
              conflictMode: sc.conflictMode,
              thinkTimeJobMs: sc.thinkJobMs,
              thinkTimeTaskMs: sc.thinkTaskMs,
              maxAttemptsWithoutProgress: 6,
              machineLossGraceMs: 300,
              ownershipGraceMs: 200,
            },
          },
        });
        try {
          for (const [i, job] of sc.jobs.entries()) {
            // A gap of 0 submits in the same burst: instances then hold several jobs at once and race.
            if (job.gapMs > 0) await h.runUntilIdle({ untilMs: h.clock.now() + job.gapMs });
            const spec = jobSpec('p').instances(job.instances).cpu(job.cpu).memory(job.memoryMi * 1024 * 1024).priority(job.priority);
            await h.submit(job.gang ? spec.gang() : spec);
            if (i + 1 === sc.crashAfterJobs && schedulers[0] !== undefined) await h.crash(schedulers[0]);
            if (i + 1 === sc.loseMachine.afterJobs && sc.loseMachine.which < sc.machines.length) await h.loseMachine(`m${sc.loseMachine.which}`);
          }
          await h.runUntilIdle();
          const snapshot = await h.snapshot();
          expect(placementViolations(snapshot)).toEqual([]);
          expect(lostJobs(snapshot, h.clock.now())).toEqual([]);
          for (const s of h.schedulers) {
            const m = s.metrics();
            expect(m.claimsCommitted + m.claimsConflicted).toBe(m.claimsAttempted);
          }
        } finally {
          await h.close();
        }
      }),
      fcParams(100),
    );
  });
});
