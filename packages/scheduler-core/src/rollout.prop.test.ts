/**
 * Property: during a rolling update, the update itself never leaves fewer than
 * `instances - maxUnavailable` instances healthy, whatever the instance count, the budget, how
 * long new instances take to start, and whether the new version works at all; and it ends
 * `succeeded` (a working version) or `failed` / rolled back (a broken one), never stuck.
 * Old instances never fail by themselves here, so every drop of the healthy count would be the
 * update's doing. A failing run prints its seed; replay it with `FC_SEED=<seed> FC_PATH=<path>`.
 */
import { jobTaskVersion, taskId, taskVersion, type JobId, type JobSpec } from '@omega/cell-state';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerHarness, firstFitPolicy, jobSpec } from './testing/index.js';

function fcParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env['FC_SEED'];
  const path = process.env['FC_PATH'];
  return { numRuns, ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }), verbose: 1 };
}

const MIN_HEALTHY_MS = 3_000;
let h: SchedulerHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('rolling update stepping (property)', () => {
  it('never has fewer than instances - maxUnavailable healthy because of the update, and always comes to an end', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 40, maxLength: 40 }),
        async (instances, maxUnavailable, works, autoRollback, startDelays) => {
          const harness = await SchedulerHarness.open({ machines: 4 });
          h = harness;
          await harness.addScheduler(firstFitPolicy({ kind: 'service' }), {});
          const spec = (command: string): JobSpec => ({
            ...jobSpec('web').service().instances(instances).cpu(100).memory('64Mi').command(command).build(),
            update: { maxUnavailable, maxSurge: 0, minHealthyTimeMs: MIN_HEALTHY_MS, healthyDeadlineMs: 20_000, autoRollback },
          });
          const job = await harness.submit(spec('old'));
          let delay = 0;
          /** Agents: a placed task starts after a random 0-4 s; the new version, unless it works, exits at once. */
          const pending = new Map<string, number>();
          const agents = async (id: JobId): Promise<void> => {
            const snapshot = await harness.snapshot();
            const current = snapshot.job(id);
            for (const task of snapshot.tasksOf(id)) {
              if (task.state !== 'placed') continue;
              const key = task.claimId;
              if (!pending.has(key)) pending.set(key, harness.clock.now() + 1_000 * (startDelays[delay++ % startDelays.length] ?? 0));
              if ((pending.get(key) ?? 0) > harness.clock.now()) continue;
              const broken = !works && current?.spec.task.command[0] === 'new' && taskVersion(task) >= jobTaskVersion(current);
              if (broken) await harness.setTaskState(task.id, 'failed', { exitCode: 1 });
              else await harness.setTaskState(task.id, 'running', { startedAtMs: harness.clock.now() });
            }
          };
          const healthy = async (id: JobId): Promise<number> => {
            const snapshot = await harness.snapshot();
            const current = snapshot.job(id);
            if (current === undefined) return 0;
            let n = 0;
            for (let index = 0; index < current.spec.instances; index++) {
              const task = snapshot.task(taskId(id, index));
              if (task?.state === 'running' && (taskVersion(task) < jobTaskVersion(current) || harness.clock.now() - task.startedAtMs >= MIN_HEALTHY_MS)) n++;
            }
            return n;
          };
          const second = async (): Promise<void> => {
            const target = harness.clock.now() + 1_000;
            await harness.runUntilIdle({ untilMs: target });
            if (harness.clock.now() < target) await harness.advance(target - harness.clock.now());
            await agents(job);
            await harness.runUntilIdle({ untilMs: harness.clock.now() });
          };
          for (let s = 0; s < 20; s++) await second();
          expect(await healthy(job)).toBe(instances);
          await harness.cell.updateJob({ jobId: job, change: { kind: 'spec', spec: spec('new') }, by: 'test' });
          const floor = instances - Math.min(maxUnavailable, instances);
          // The end: version 2 succeeded or failed, or (rolled back) the rollback's version 3 succeeded.
          let end: string | undefined;
          for (let s = 0; s < 240 && end === undefined; s++) {
            await second();
            expect(await healthy(job), `second ${s}`).toBeGreaterThanOrEqual(floor);
            const deployment = (await harness.snapshot()).status(job)?.deployment;
            if (deployment !== undefined && deployment.state !== 'running') end = `${deployment.version} ${deployment.state}`;
          }
          expect(end).toBe(works ? '2 succeeded' : autoRollback ? '3 succeeded' : '2 failed');
          if (!works && autoRollback) expect((await harness.snapshot()).job(job)?.versionChange).toMatch(/^auto-rollback to version 1: /);
          await harness.close();
          h = undefined;
        },
      ),
      fcParams(12),
    );
  }, 240_000);
});
