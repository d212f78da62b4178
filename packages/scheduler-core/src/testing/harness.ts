/**
 * SchedulerHarness: scheduler instances over one in-memory cell, with a fake clock, driven step
 * by step. What a simulator does, small:
 *
 * ```
 *   const h = await SchedulerHarness.open({ machines: 10 });
 *   const s = await h.addScheduler(firstFitPolicy(), { settings: { thinkTimeJobMs: 100 } });
 *   const job = await h.submit(jobSpec('web').instances(3));
 *   await h.runUntilIdle();            // every instance stepped until none has work, clock advanced as needed
 *   expect((await h.snapshot()).status(job)?.state).toBe('running');
 *   await h.close();
 * ```
 *
 * Each instance has its own Cell, mirror and lease over the shared MemoryKv (optionally through
 * an interfering store, see interfering-kv.ts), as separate processes would. Every machine
 * heartbeats under its own lease, so a test can lose one machine. Instances are stepped together
 * (one `runOnce()` each per round, concurrently); the clock moves only when every running step
 * waits on it, to the earliest timer, and between rounds to the earliest wake time.
 */
import {
  Cell,
  MemoryKv,
  isTerminal,
  type CellMirror,
  type CellSnapshot,
  type Heartbeat,
  type JobId,
  type JobSpec,
  type KvStore,
  type MachineId,
  type MachineRegistration,
  type Task,
  type TaskId,
  type TaskPatch,
} from '@omega/cell-state';
import { freshCellName, machine, type JobSpecBuilder, type MachineBuilder } from '@omega/cell-state/testing';
import type { Logger } from 'pino';
import type { LeaseSource } from '../lease-keeper.js';
import type { PlacementPolicy } from '../policy.js';
import { seededRandom } from '../random.js';
import { hash32 } from '../rendezvous.js';
import { Scheduler, type Step } from '../scheduler.js';
import type { SchedulerSettings } from '../settings.js';
import { lostJobs, placementViolations, readStoredCell } from './cell-checks.js';
import { FakeClock, flushAsync } from './fake-clock.js';
import { interferingKv, type InterferenceCounters, type InterferenceOptions } from './interfering-kv.js';

export interface HarnessOptions {
  /** A count (4 CPU, 16 GiB each, named m0, m1, ...) or the machines to register. Default 10. */
  readonly machines?: number | readonly (MachineRegistration | MachineBuilder)[];
  /** Seed for the instances' Random sources (each instance mixes in its name). Default 1. */
  readonly seed?: number;
  readonly clock?: FakeClock;
}

export interface AddSchedulerOptions {
  /** Default `<kind>-<n>`. */
  readonly name?: string;
  readonly settings?: Partial<SchedulerSettings>;
  /** Make this instance's commits meet competing changes. */
  readonly interference?: InterferenceOptions;
  /** Wraps the store this instance sees (after `interference`), e.g. with `replayingKv`. */
  readonly store?: (kv: KvStore) => KvStore;
  /** Grants the instance's next lease after one is lost; default a keep-alive lease from the harness's store. */
  readonly leases?: LeaseSource;
  /** The instance's logger (default silent). */
  readonly logger?: Logger;
}

/** A scheduler instance of the harness and what belongs to it (its lease now: `scheduler.currentLease`). */
export interface HarnessInstance {
  readonly scheduler: Scheduler;
  readonly mirror: CellMirror;
  readonly interference: InterferenceCounters | undefined;
}

export interface RunOptions {
  /** Most rounds before giving up with an error (a livelock in the loop is a bug). Default 20,000. */
  readonly maxRounds?: number;
  /**
   * Return once the clock reaches this time, even with work left (rounds in progress finish
   * first); while idle, the clock is moved to exactly this time.
   */
  readonly untilMs?: number;
}

/** Steps spent with nothing but clock timers left before the harness calls a step stuck. */
const MAX_SPINS = 100_000;

export class SchedulerHarness {
  readonly instances: HarnessInstance[] = [];
  private readonly heartbeats = new Map<MachineId, Heartbeat>();
  private readonly extraMirrors: CellMirror[] = [];
  private jobCounter = 0;
  private readonly steps: Step[][] = [];

  private constructor(
    readonly kv: MemoryKv,
    readonly cell: Cell,
    readonly clock: FakeClock,
    readonly machineIds: readonly MachineId[],
    private readonly seed: number,
  ) {}

  static async open(options: HarnessOptions = {}): Promise<SchedulerHarness> {
    const clock = options.clock ?? new FakeClock();
    const kv = new MemoryKv({ clock });
    const cellName = freshCellName();
    const cell = new Cell(kv, cellName, { now: () => clock.now() });
    const given = options.machines ?? 10;
    const regs =
      typeof given === 'number'
        ? Array.from({ length: given }, (_, i) => machine(`m${i}`).cpu(4000).memory('16Gi').build())
        : given.map((m) => ('build' in m ? m.build() : m));
    if (regs.length > 0) await cell.registerMachines(regs);
    const harness = new SchedulerHarness(kv, cell, clock, regs.map((r) => r.id), options.seed ?? 1);
    for (const r of regs) await harness.reviveMachine(r.id);
    return harness;
  }

  get schedulers(): Scheduler[] {
    return this.instances.map((i) => i.scheduler);
  }

  /** Starts a scheduler instance (its own Cell, started mirror and keep-alive lease) and announces it. */
  async addScheduler(policy: PlacementPolicy, options: AddSchedulerOptions = {}): Promise<Scheduler> {
    const name = options.name ?? `${policy.kind}-${this.instances.length}`;
    let kv: KvStore = this.kv;
    let interference: InterferenceCounters | undefined;
    if (options.interference !== undefined) {
      const intruderMirror = this.cell.mirror();
      await intruderMirror.start();
      this.extraMirrors.push(intruderMirror);
      const wrapped = interferingKv(this.kv, this.cell, intruderMirror, options.interference);
      kv = wrapped.kv;
      interference = wrapped.counters;
    }
    if (options.store !== undefined) kv = options.store(kv);
    const cell = new Cell(kv, this.cell.keys.cell, { now: () => this.clock.now() });
    const mirror = cell.mirror();
    await mirror.start();
    const lease = await this.kv.grantLease(10, { autoKeepAlive: true });
    const scheduler = new Scheduler({
      cell,
      mirror,
      policy,
      name,
      lease,
      leases: options.leases ?? (() => this.kv.grantLease(10, { autoKeepAlive: true })),
      clock: this.clock,
      random: seededRandom(this.seed ^ hash32(name)),
      settings: options.settings,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    this.instances.push({ scheduler, mirror, interference });
    // Announce it, as `run()` does first: the others count it in their rendezvous hashing.
    await scheduler.publishStats();
    await flushAsync();
    return scheduler;
  }

  /** Stores a job (id: its name, or `<name>-<n>` when taken), submitted now on the fake clock. */
  async submit(spec: JobSpec | JobSpecBuilder, options: { id?: string } = {}): Promise<JobId> {
    const built = 'build' in spec ? spec.build() : spec;
    const id = (options.id ?? `${built.name}-${this.jobCounter++}`) as JobId;
    await this.cell.createJob({ id, spec: built, submittedAtMs: this.clock.now() });
    return id;
  }

  /**
   * Steps every instance (one `runOnce()` each per round, concurrently) until a round where all
   * are idle and none has a wake time left; between rounds the clock jumps to the earliest wake
   * time. Returns the number of rounds. Throws after `maxRounds`.
   */
  async runUntilIdle(options: RunOptions = {}): Promise<number> {
    const maxRounds = options.maxRounds ?? 20_000;
    for (let round = 0; round < maxRounds; round++) {
      const steps = await this.drive(this.instances.map((i) => i.scheduler.runOnce()));
      this.steps.push(steps);
      if (this.steps.length > 64) this.steps.shift();
      // An instance re-granting a lost lease waits like an idle one, until its retry time.
      const waiting = (s: Step): boolean => s.kind === 'idle' || s.kind === 'stopped' || (s.kind === 'recovering' && s.retryAtMs > this.clock.now());
      if (!steps.every(waiting)) {
        // Busy past the deadline: return mid-work, so a test can submit while instances think.
        if (options.untilMs !== undefined && this.clock.now() >= options.untilMs) return round + 1;
        continue;
      }
      const wakes = steps.flatMap((s) => (s.kind === 'idle' && s.wakeAtMs !== undefined ? [s.wakeAtMs] : s.kind === 'recovering' ? [s.retryAtMs] : []));
      if (wakes.length === 0) return round + 1;
      const wake = Math.min(...wakes);
      if (options.untilMs !== undefined && wake > options.untilMs) {
        await this.clock.advanceTo(options.untilMs);
        return round + 1;
      }
      await this.clock.advanceTo(wake);
    }
    throw new Error(`instances still busy after ${maxRounds} rounds; last steps: ${JSON.stringify(this.steps.slice(-3))}`);
  }

  /** Runs one step of one instance (driving the clock while it sleeps). */
  async step(scheduler: Scheduler): Promise<Step> {
    const [step] = await this.drive([scheduler.runOnce()]);
    return step as Step;
  }

  /** Advances the clock (firing sleeps in order), e.g. past a grace period. */
  async advance(ms: number): Promise<void> {
    await this.clock.advance(ms);
  }

  /**
   * Waits for `promises`, firing clock timers whenever everything pending waits on the clock
   * only: a tiny discrete-event loop.
   */
  private async drive<T>(promises: Promise<T>[]): Promise<T[]> {
    let done = false;
    let failure: unknown;
    const all = Promise.all(promises).then(
      (v) => {
        done = true;
        return v;
      },
      (e: unknown) => {
        done = true;
        failure = e;
        return [] as T[];
      },
    );
    for (let spins = 0; !done; spins++) {
      await flushAsync();
      if (done) break;
      if (!this.clock.fireNext() && spins > MAX_SPINS) throw new Error('a scheduler step waits on something other than the clock and the store');
    }
    const values = await all;
    if (failure !== undefined) throw failure;
    return values;
  }

  /** A crash: the instance stops at once and its lease expires (its ownerships and stats vanish). */
  async crash(scheduler: Scheduler): Promise<void> {
    const index = this.instances.findIndex((i) => i.scheduler === scheduler);
    const instance = this.instances[index];
    if (instance === undefined) throw new Error(`unknown scheduler ${scheduler.name}`);
    this.instances.splice(index, 1);
    scheduler.close();
    await instance.mirror.stop();
    const lease = scheduler.currentLease;
    if (lease !== undefined) this.kv.expireLease(lease.id);
    await flushAsync();
  }

  /**
   * The instance's lease runs out while it keeps running (the store was unreachable past its
   * TTL): its ownerships and stats record vanish; it notices, grants a new lease and rebuilds at
   * its next steps. Returns the lost lease's id.
   */
  async expireLease(scheduler: Scheduler): Promise<string> {
    const lease = scheduler.currentLease;
    if (lease === undefined) throw new Error(`${scheduler.name} holds no lease now`);
    this.kv.expireLease(lease.id);
    await flushAsync();
    return lease.id;
  }

  /** The machine's agent stops heartbeating: its `alive/` key disappears. */
  async loseMachine(id: MachineId | string): Promise<void> {
    await this.heartbeats.get(id as MachineId)?.stop();
    this.heartbeats.delete(id as MachineId);
  }

  /** The machine's agent heartbeats (again). */
  async reviveMachine(id: MachineId | string): Promise<void> {
    if (this.heartbeats.has(id as MachineId)) return;
    this.heartbeats.set(id as MachineId, await this.cell.startHeartbeat(id as MachineId, { agent: 'harness' }));
  }

  /** The store's current state (through a mirror brought up to the store's revision). */
  async snapshot(): Promise<CellSnapshot> {
    return readStoredCell(this.cell);
  }

  /** A job's tasks as stored, by index. */
  async tasks(job: JobId): Promise<Task[]> {
    return [...(await this.snapshot()).tasksOf(job)].sort((a, b) => a.index - b.index);
  }

  /** What an agent reports: the task's current attempt moves to `state` (terminal states get `finishedAtMs` now). */
  async setTaskState(id: TaskId, state: Task['state'], patch: TaskPatch = {}): Promise<void> {
    const task = (await this.snapshot()).task(id);
    if (task === undefined) throw new Error(`task ${id} has no record`);
    await this.cell.updateTask(id, task.claimId, { state, ...(isTerminal(state) ? { finishedAtMs: this.clock.now() } : {}), ...patch });
  }

  /** Every live task of a job ends as `state`. */
  async endTasks(job: JobId, state: 'succeeded' | 'failed', patch: TaskPatch = {}): Promise<void> {
    for (const task of await this.tasks(job)) if (!isTerminal(task.state)) await this.setTaskState(task.id, state, patch);
  }

  /** Invariants 1 and 2 and "no job lost", from the store; empty when all hold. */
  async violations(options: { jobs?: boolean } = {}): Promise<string[]> {
    const snapshot = await this.snapshot();
    return [...placementViolations(snapshot), ...(options.jobs === false ? [] : lostJobs(snapshot, this.clock.now()))];
  }

  async close(): Promise<void> {
    for (const i of this.instances.splice(0)) {
      i.scheduler.close();
      await i.mirror.stop();
    }
    for (const m of this.extraMirrors.splice(0)) await m.stop();
    await this.kv.close();
  }
}
