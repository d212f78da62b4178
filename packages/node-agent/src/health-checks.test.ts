import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveHealthCheck, type HealthCheck, type HealthState } from '@omega/cell-state';
import { CheckSlots, HealthWatch, type HealthProbe, type ProbeResult } from './health-checks.js';
import { FakeTimerClock } from './testing/fake-timer-clock.js';
import { commandProbe, commandProbeArgv, httpProbe, tcpProbe } from './health-probes.js';

/** A wall clock that moves only when told, firing its timers in order (awaiting what they start). */
/** A probe answering from a script of results; `hang` never answers until aborted. */
function scripted(results: (boolean | 'hang')[]): { probe: HealthProbe; calls: number[]; aborted: number } {
  const state = { calls: [] as number[], aborted: 0 };
  let i = 0;
  const probe: HealthProbe = (signal) => {
    const r = results[Math.min(i++, results.length - 1)];
    state.calls.push(i);
    if (r === 'hang') {
      return new Promise<ProbeResult>((resolve) =>
        signal.addEventListener('abort', () => {
          state.aborted++;
          resolve({ passed: true, detail: 'late' });
        }),
      );
    }
    return Promise.resolve({ passed: r === true, detail: r === true ? 'ok' : 'bad' });
  };
  return { probe, get calls() { return state.calls; }, get aborted() { return state.aborted; } };
}

function watch(check: HealthCheck, probe: HealthProbe, options: { startedAgoMs?: number; initial?: HealthState; slots?: CheckSlots } = {}) {
  const clock = new FakeTimerClock(1_000_000);
  const reports: { health: HealthState; healthSinceMs: number }[] = [];
  const thresholds: number[] = [];
  const w = new HealthWatch({
    check: resolveHealthCheck(check),
    probe,
    startedAtMs: clock.now() - (options.startedAgoMs ?? 0),
    ...(options.initial === undefined ? {} : { initial: options.initial }),
    report: (patch) => reports.push(patch),
    onThreshold: (failures) => thresholds.push(failures),
    slots: options.slots ?? new CheckSlots(4),
    clock,
  });
  w.start();
  return { w, clock, reports, thresholds };
}

describe('a health watch', () => {
  it('reports passing once, at the first passing check, and writes nothing while it stays passing', async () => {
    const p = scripted([true]);
    const { clock, reports, w } = watch({ command: ['x'], intervalMs: 1000 }, p.probe);
    await clock.advanceSettling(0);
    expect(reports).toEqual([{ health: 'passing', healthSinceMs: 1_000_000 }]);
    await clock.advanceSettling(10_000);
    expect(p.calls.length).toBe(11);
    expect(reports.length).toBe(1);
    expect(w.counters).toMatchObject({ checks: 11, failures: 0, reports: 1 });
    w.stop();
  });

  it('reports failing at the first failure and passing again when a check passes, with the time each began', async () => {
    const p = scripted([true, false, true]);
    const { clock, reports, thresholds, w } = watch({ command: ['x'], intervalMs: 1000 }, p.probe);
    await clock.advanceSettling(2_500);
    expect(reports).toEqual([
      { health: 'passing', healthSinceMs: 1_000_000 },
      { health: 'failing', healthSinceMs: 1_001_000 },
      { health: 'passing', healthSinceMs: 1_002_000 },
    ]);
    expect(thresholds).toEqual([]);
    w.stop();
  });

  it('calls the threshold once after failureThreshold consecutive failures and runs no check after it', async () => {
    const p = scripted([false, false, true, false, false, false]);
    const { clock, reports, thresholds } = watch({ command: ['x'], intervalMs: 1000, failureThreshold: 3 }, p.probe);
    await clock.advanceSettling(4_500);
    // The pass after two failures reset the count: only the third failure in a row counts.
    expect(thresholds).toEqual([]);
    await clock.advanceSettling(1_000);
    expect(thresholds).toEqual([3]);
    expect(reports.map((r) => r.health)).toEqual(['failing', 'passing', 'failing']);
    const calls = p.calls.length;
    await clock.advanceSettling(10_000);
    expect(p.calls.length).toBe(calls);
  });

  it('runs no check during the grace period, counted from when the task started', async () => {
    const p = scripted([true]);
    const { clock, reports, w } = watch({ tcp: { port: 1 }, intervalMs: 1000, gracePeriodMs: 5000 }, p.probe, { startedAgoMs: 2000 });
    await clock.advanceSettling(2_999);
    expect(p.calls.length).toBe(0);
    await clock.advanceSettling(1);
    expect(p.calls.length).toBe(1);
    expect(reports).toEqual([{ health: 'passing', healthSinceMs: 1_003_000 }]);
    w.stop();
  });

  it('fails a check that outlasts its timeout, aborting it', async () => {
    const p = scripted(['hang']);
    const { clock, reports, thresholds, w } = watch({ command: ['x'], intervalMs: 1000, timeoutMs: 300, failureThreshold: 2 }, p.probe);
    await clock.advanceSettling(299);
    expect(p.aborted).toBe(0);
    expect(reports).toEqual([]);
    await clock.advanceSettling(1);
    expect(p.aborted).toBe(1);
    expect(reports).toEqual([{ health: 'failing', healthSinceMs: 1_000_300 }]);
    await clock.advanceSettling(1_000);
    expect(thresholds).toEqual([2]);
    expect(w.counters.timeouts).toBe(2);
  });

  it('writes nothing for an adopted attempt whose record already says what the check finds', async () => {
    const p = scripted([true]);
    const { clock, reports, w } = watch({ command: ['x'], intervalMs: 1000 }, p.probe, { initial: 'passing' });
    await clock.advanceSettling(5_000);
    expect(p.calls.length).toBe(6);
    expect(reports).toEqual([]);
    w.stop();
  });

  it('stops: no more checks, and a check in flight is aborted and its result dropped', async () => {
    const p = scripted(['hang']);
    const { clock, reports, w } = watch({ command: ['x'], intervalMs: 1000, timeoutMs: 1000 }, p.probe);
    await clock.advanceSettling(100);
    w.stop();
    await clock.advanceSettling(0);
    expect(p.aborted).toBe(1);
    await clock.advanceSettling(10_000);
    expect(p.calls.length).toBe(1);
    expect(reports).toEqual([]);
  });

  it('runs at most the slots\' number of checks at once over all watches', async () => {
    const slots = new CheckSlots(2);
    let running = 0;
    let most = 0;
    const probe: HealthProbe = () => {
      running++;
      most = Math.max(most, running);
      return new Promise((resolve) =>
        setImmediate(() => {
          running--;
          resolve({ passed: true, detail: 'ok' });
        }),
      );
    };
    const clock = new FakeTimerClock(1_000_000);
    const watches = Array.from({ length: 6 }, () => new HealthWatch({ check: resolveHealthCheck({ command: ['x'], intervalMs: 1000 }), probe, startedAtMs: clock.now(), report: () => undefined, onThreshold: () => undefined, slots, clock }));
    for (const w of watches) w.start();
    await clock.advanceSettling(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(watches.every((w) => w.current === 'passing')).toBe(true);
    expect(most).toBe(2);
    expect(slots.running).toBe(0);
    for (const w of watches) w.stop();
  });
});

describe('the probes', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
    server = undefined;
  });

  it('http passes on 2xx and 3xx, fails on 5xx and on a closed port', async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 204 : req.url === '/moved' ? 302 : 503;
      res.end();
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const signal = new AbortController().signal;
    expect(await httpProbe(port, '/ok')(signal)).toEqual({ passed: true, detail: 'HTTP 204' });
    expect((await httpProbe(port, '/moved')(signal)).passed).toBe(true);
    expect(await httpProbe(port, '/broken')(signal)).toEqual({ passed: false, detail: 'HTTP 503' });
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
    expect((await httpProbe(port, '/ok')(signal)).passed).toBe(false);
  });

  it('tcp passes when it connects and fails when nothing listens', async () => {
    const tcp = createTcpServer((socket) => socket.end());
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as AddressInfo).port;
    const signal = new AbortController().signal;
    expect((await tcpProbe(port)(signal)).passed).toBe(true);
    await new Promise((resolve) => tcp.close(resolve));
    expect((await tcpProbe(port)(signal)).passed).toBe(false);
  });

  it('command without namespaces to enter runs through setpriv as the task uid, joining the cgroup first when there is one', () => {
    const target = { argv: ['test', '-e', 'ready'], env: {}, cwd: '/work', uid: 1234, gid: 1234, procsFiles: [] as string[], pid: () => process.pid };
    const plain = commandProbeArgv(target);
    expect(plain.file).toMatch(/setpriv$/);
    expect(plain.args).toEqual(['--reuid', '1234', '--regid', '1234', '--clear-groups', '--', 'test', '-e', 'ready']);
    expect(plain.cwd).toBe('/work');
    const joined = commandProbeArgv({ ...target, procsFiles: ['/cg/a/cgroup.procs', '/cg/b/cgroup.procs'] });
    expect(joined.file).toMatch(/sh$/);
    expect(joined.args.slice(2)).toEqual(['omega-health-check', '/cg/a/cgroup.procs', '/cg/b/cgroup.procs', '--', plain.file, ...plain.args]);
    expect(() => commandProbeArgv({ ...target, pid: () => undefined })).toThrow(/no process/);
  });

  it.skipIf(process.getuid?.() !== 0)('command runs as the task uid with no supplementary groups (as root)', async () => {
    const result = await commandProbe({ argv: ['sh', '-c', 'echo "$(id -u) $(id -G)" >&2; exit 1'], env: { PATH: '/usr/bin:/bin' }, cwd: '/', uid: 65534, gid: 65534, procsFiles: [], pid: () => process.pid })(new AbortController().signal);
    expect(result).toEqual({ passed: false, detail: 'exit 1: 65534 65534' });
  });

  it('command passes on exit 0, fails otherwise with its stderr, and is killed when aborted', async () => {
    const target = (argv: string[]) => ({ argv, env: { PATH: '/usr/bin:/bin' }, cwd: '/', procsFiles: [], pid: () => process.pid });
    const signal = new AbortController().signal;
    expect((await commandProbe(target(['true']))(signal)).passed).toBe(true);
    expect(await commandProbe(target(['sh', '-c', 'echo broken >&2; exit 3']))(signal)).toEqual({ passed: false, detail: 'exit 3: broken' });
    const controller = new AbortController();
    const pending = commandProbe(target(['sleep', '30']))(controller.signal);
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toEqual({ passed: false, detail: 'killed by SIGKILL' });
  });
});
