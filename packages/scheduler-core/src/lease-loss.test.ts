import { KvUnavailableError, type KvLease, type KvStore, type TxnRequest } from '@omega/cell-state';
import { outageKv, type OutageKv } from '@omega/cell-state/testing';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Scheduler } from './scheduler.js';
import { SchedulerHarness, firstFitPolicy, flushAsync, jobSpec } from './testing/index.js';

let h: SchedulerHarness;
afterEach(async () => {
  await h?.close();
});

/** Whether a transaction writes task records (a commit of claims does). */
function writesTasks(request: TxnRequest, tasksPrefix: string): boolean {
  const visit = (txn: TxnRequest): boolean => [...txn.success, ...txn.failure].some((op) => ((op.type === 'put' || op.type === 'delete') && op.key.startsWith(tasksPrefix)) || (op.type === 'txn' && visit(op.txn)));
  return visit(request);
}

/**
 * A store wrapper that records every commit an instance sends while it holds no lease. The
 * instance is looked up lazily (the wrapper is made before the scheduler exists).
 */
function commitsWithoutLease(prefix: string): { wrap: (kv: KvStore) => KvStore; bind: (s: Scheduler) => void; seen: string[] } {
  let scheduler: Scheduler | undefined;
  const seen: string[] = [];
  const wrap = (kv: KvStore): KvStore =>
    new Proxy(kv, {
      get(target, property, receiver) {
        if (property === 'txn') {
          return async (request: TxnRequest) => {
            if (scheduler !== undefined && scheduler.currentLease === undefined && writesTasks(request, prefix)) seen.push(`commit while ${scheduler.name} held no lease`);
            return target.txn(request);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  return { wrap, bind: (s) => (scheduler = s), seen };
}

describe('a scheduler whose store fails for less than its lease TTL', () => {
  it('fails its steps while the store is down, logs that once, and schedules again when it is back', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const outage = (kv: KvStore): KvStore => (store ??= outageKv(kv)).kv;
    let store: OutageKv | undefined;
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', store: outage, logger });
    store!.refuse();
    const job = await h.submit(jobSpec('waits').instances(2).cpu(500));
    for (let i = 0; i < 5; i++) {
      expect((await h.step(a)).kind).toBe('error');
      await h.advance(1000);
    }
    store!.resume();
    await h.runUntilIdle();
    expect((await h.snapshot()).status(job)?.state).toBe('running');
    expect(a.metrics()).toMatchObject({ storeErrors: 5, leasesLost: 0 });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'store error; retrying'],
      [30, 'store errors over; scheduling again'],
    ]);
  });
});

describe('a scheduler whose lease is lost', () => {
  it('keeps running, takes a new lease, owns its jobs again under it, and places a job submitted afterwards', async () => {
    h = await SchedulerHarness.open({ machines: 4 });
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a' });
    const before = await h.submit(jobSpec('before').instances(3).cpu(500));
    await h.runUntilIdle();
    expect((await h.snapshot()).status(before)?.state).toBe('running');
    const placedBefore = (await h.tasks(before)).map((t) => [t.machineId, t.claimId]);

    const lostId = await h.expireLease(a);
    expect((await h.snapshot()).owner(before)).toBeUndefined();
    await h.runUntilIdle();

    const lease = a.currentLease;
    expect(lease).toBeDefined();
    expect(lease?.id).not.toBe(lostId);
    let snapshot = await h.snapshot();
    expect(snapshot.owner(before)).toMatchObject({ scheduler: 'batch-a', lease: lease?.id });
    expect([...snapshot.schedulerStats()].find((s) => s.name === 'batch-a')).toBeDefined();
    // Re-owning a placed job places nothing again.
    expect((await h.tasks(before)).map((t) => [t.machineId, t.claimId])).toEqual(placedBefore);

    const after = await h.submit(jobSpec('after').instances(2).cpu(500));
    await h.runUntilIdle();
    snapshot = await h.snapshot();
    expect(snapshot.status(after)?.state).toBe('running');
    expect(snapshot.owner(after)).toMatchObject({ scheduler: 'batch-a', lease: lease?.id });
    expect((await h.tasks(after)).every((t) => t.state === 'placed' && t.scheduler === 'batch-a')).toBe(true);
    expect(a.metrics()).toMatchObject({ leasesLost: 1, leasesGranted: 1, jobsPlaced: 2, claimsCommitted: 5 });
    expect(a.isRecovering).toBe(false);
    expect(await h.violations()).toEqual([]);
  });

  it('drops the attempt it was thinking about and commits nothing until it holds a new lease', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const spy = commitsWithoutLease(h.cell.keys.root + 'tasks/');
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', settings: { thinkTimeJobMs: 1000 }, store: spy.wrap });
    spy.bind(a);
    const job = await h.submit(jobSpec('slow').instances(2).cpu(500));

    // Step until the instance sleeps in its think time, then lose the lease under it.
    const step = a.runOnce();
    for (let i = 0; i < 100 && h.clock.pendingTimers === 0; i++) await flushAsync();
    expect(h.clock.pendingTimers).toBe(1);
    await h.expireLease(a);
    const dropped = await step;
    expect(dropped).toMatchObject({ kind: 'attempt', attempt: { jobId: job, outcome: 'interrupted', committed: 0 } });
    expect(await h.tasks(job)).toEqual([]);
    expect(a.ownedJobs()).toEqual([]);
    expect(a.metrics()).toMatchObject({ attempts: 1, interruptedAttempts: 1, transactionsOk: 0, claimsAttempted: 0, leasesLost: 1 });

    await h.runUntilIdle();
    expect((await h.snapshot()).status(job)?.state).toBe('running');
    expect(a.metrics()).toMatchObject({ attempts: 2, interruptedAttempts: 1, transactionsOk: 1, claimsCommitted: 2, leasesGranted: 1 });
    expect(spy.seen).toEqual([]);
    expect(await h.violations()).toEqual([]);
  });

  it('lets a commit already in flight when the lease is lost stand, writes nothing more for it, and places its tasks once', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    const harness = h;
    let scheduler: Scheduler | undefined;
    let expired = false;
    const tasksPrefix = h.cell.keys.root + 'tasks/';
    const losingMidCommit = (kv: KvStore): KvStore =>
      new Proxy(kv, {
        get(target, property, receiver) {
          if (property === 'txn') {
            return async (request: TxnRequest) => {
              const lease = scheduler?.currentLease;
              if (!expired && lease !== undefined && writesTasks(request, tasksPrefix)) {
                expired = true;
                harness.kv.expireLease(lease.id);
              }
              return target.txn(request);
            };
          }
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', store: losingMidCommit });
    scheduler = a;
    const job = await h.submit(jobSpec('racing').instances(2).cpu(500));
    await h.runUntilIdle();
    expect(expired).toBe(true);
    const snapshot = await h.snapshot();
    expect(snapshot.status(job)?.state).toBe('running');
    expect(snapshot.owner(job)).toMatchObject({ scheduler: 'batch-a', lease: a.currentLease?.id });
    expect((await h.tasks(job)).map((t) => [t.state, t.attempt])).toEqual([
      ['placed', 1],
      ['placed', 1],
    ]);
    expect(a.metrics()).toMatchObject({ attempts: 1, transactionsOk: 1, claimsCommitted: 2, leasesLost: 1, leasesGranted: 1, jobsAcquired: 2 });
    expect(await h.violations()).toEqual([]);
  });

  it('retries the lease grant with a doubling backoff until the store grants one, then resumes', async () => {
    h = await SchedulerHarness.open({ machines: 2 });
    let refusals = 3;
    const leases = async (): Promise<KvLease> => {
      if (refusals-- > 0) throw new KvUnavailableError('etcd unavailable: test');
      return h.kv.grantLease(10, { autoKeepAlive: true });
    };
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', leases });
    await h.expireLease(a);
    const start = h.clock.now();
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const step = await h.step(a);
      expect(step.kind).toBe('recovering');
      if (step.kind !== 'recovering') break;
      expect(step.error).toBeInstanceOf(KvUnavailableError);
      waits.push(step.retryAtMs - h.clock.now());
      // Early calls do nothing until the retry time.
      expect(await h.step(a)).toMatchObject({ kind: 'recovering', retryAtMs: step.retryAtMs });
      await h.clock.advanceTo(step.retryAtMs);
    }
    expect(waits).toEqual([250, 500, 1000]);
    expect(h.clock.now() - start).toBe(1750);
    expect(await h.step(a)).toMatchObject({ kind: 'maintenance' });
    expect(a.currentLease).toBeDefined();
    const job = await h.submit(jobSpec('later'));
    await h.runUntilIdle();
    expect((await h.snapshot()).status(job)?.state).toBe('running');
  });

  it('stops while it waits to grant a lease: run() returns without a lease and without writing', async () => {
    h = await SchedulerHarness.open({ machines: 1 });
    const leases = async (): Promise<KvLease> => {
      throw new KvUnavailableError('etcd unavailable: test');
    };
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', leases });
    const running = a.run();
    await flushAsync();
    await h.expireLease(a);
    // A few backoff rounds, then a stop in the middle of a wait.
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 20 && h.clock.pendingTimers === 0; j++) await flushAsync();
      h.clock.fireNext();
      await flushAsync();
    }
    for (let j = 0; j < 20 && h.clock.pendingTimers === 0; j++) await flushAsync();
    a.stop();
    await running;
    expect(a.currentLease).toBeUndefined();
    expect(a.isRecovering).toBe(true);
    expect([...(await h.snapshot()).schedulerStats()].find((s) => s.name === 'batch-a')).toBeUndefined();
  });

  it('loses no job and over-commits nothing when one of two instances loses its lease mid-burst', async () => {
    h = await SchedulerHarness.open({ machines: 6 });
    const a = await h.addScheduler(firstFitPolicy(), { name: 'batch-a', settings: { thinkTimeJobMs: 20, ownershipGraceMs: 100 } });
    await h.addScheduler(firstFitPolicy(), { name: 'batch-b', settings: { thinkTimeJobMs: 20, ownershipGraceMs: 100 } });
    const jobs = [];
    for (let i = 0; i < 30; i++) jobs.push(await h.submit(jobSpec('burst').instances(2).cpu(300)));
    await h.runUntilIdle({ untilMs: h.clock.now() + 200 });
    await h.expireLease(a);
    for (let i = 0; i < 10; i++) jobs.push(await h.submit(jobSpec('late').instances(1).cpu(300)));
    await h.runUntilIdle();
    // While a was gone, b took a's jobs over (a's records vanished with its lease); once back, a
    // shares new jobs again.
    for (let i = 0; i < 10; i++) jobs.push(await h.submit(jobSpec('back').instances(1).cpu(100)));
    await h.runUntilIdle();
    const snapshot = await h.snapshot();
    for (const job of jobs) expect(snapshot.status(job)?.state).toBe('running');
    expect(a.metrics()).toMatchObject({ leasesLost: 1, leasesGranted: 1 });
    expect(a.ownedJobs().length).toBeGreaterThan(0);
    for (const id of a.ownedJobs()) expect(snapshot.owner(id)).toMatchObject({ scheduler: 'batch-a', lease: a.currentLease?.id });
    expect(await h.violations()).toEqual([]);
  });
});
