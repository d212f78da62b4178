/**
 * Tasks in namespaces of their own under a real agent on real cgroups (the native supervisor's
 * `-i`/`-N`, what `--isolation auto` gives on a host that allows them): a task sees only its own
 * processes in /proc, has a private /tmp and /dev/shm (its work dir bound back where a data dir
 * lies under either, also through a link), and with `network: none` only loopback (it cannot reach
 * a listener on the host's 127.0.0.1); its exit code and the signal that killed it are its own,
 * not its init's; a program that does not exist is `start-failed` with the failed exec as its
 * message; OOM is still `oom-killed`; a kill leaves no process. A job asking `network:
 * none` of an agent without isolation is refused (`isolation-unavailable`). Needs root, writable
 * cgroups and a host that allows the namespaces; skipped loudly otherwise. Runs the agent in this
 * process on a MemoryKv.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, chmod, stat, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell, jobId, machineId, MemoryKv, taskId, type CellMirror, type JobSpec, type Task } from '@omega/cell-state';
import { freshCellName, jobSpec } from '@omega/cell-state/testing';
import { Agent, defaultSupervisorPath, detectCgroupDriver, detectIsolation, ProcessExecutor, taskInstanceName, taskLogPaths, type CgroupDriver, type HostIsolation } from '@omega/node-agent';
import { eventually, placeTasks } from '@omega/node-agent/testing';
import { attemptEnded, processGone } from './support/real-agent.js';

const m1 = machineId('iso-m1');
const m2 = machineId('iso-m2');
/** Its data dir is a link (in /var/tmp) that leads into /dev/shm, which a task's own /dev/shm hides. */
const m3 = machineId('iso-m3');
const parent = `omega-test-iso-${process.pid}`;

const isRoot = process.getuid?.() === 0;
const detection = isRoot ? await detectCgroupDriver({ parent }) : { problem: 'the tests do not run as root' };
const isolation = isRoot ? await detectIsolation({ supervisorPath: defaultSupervisorPath(), mode: 'auto' }) : undefined;
const skipWhy = !isRoot
  ? 'the tests do not run as root'
  : detection.driver === undefined
    ? `cgroups are not writable here: ${detection.problem}`
    : isolation === undefined || !isolation.use.pid || !isolation.use.networkNone
      ? `this host does not allow the namespaces: ${isolation?.problem ?? 'unknown'}`
      : undefined;
if (skipWhy !== undefined) console.warn(`SKIPPED: task isolation tests because ${skipWhy}`);
const skip = skipWhy !== undefined;

describe('tasks in namespaces of their own', () => {
  let kv: MemoryKv;
  let cell: Cell;
  let mirror: CellMirror;
  let agent: Agent;
  let plainAgent: Agent;
  let shmAgent: Agent;
  let dataDir: string;
  let shmDir: string;
  let shmLink: string;
  let driver: CgroupDriver;
  let listener: Server;
  let listenerPort = 0;
  let accepted = 0;

  beforeAll(async () => {
    if (skip) return;
    driver = detection.driver as CgroupDriver;
    dataDir = await mkdtemp(join(tmpdir(), 'omega-agent-iso-'));
    await chmod(dataDir, 0o755);
    for (const id of [m1, m2]) await mkdir(join(dataDir, id), { mode: 0o755 });
    shmDir = await mkdtemp('/dev/shm/omega-agent-iso-');
    await chmod(shmDir, 0o755);
    await mkdir(join(shmDir, m3), { mode: 0o755 });
    shmLink = `/var/tmp/omega-agent-iso-${process.pid}-${m3}`;
    await symlink(join(shmDir, m3), shmLink);
    kv = new MemoryKv();
    cell = new Cell(kv, freshCellName());
    // 500 uids per machine, none shared: tasks of different machines never share a uid.
    const uidsOf = (id: typeof m1): { first: number; last: number } => {
      const first = 230_000 + 500 * [m1, m2, m3].indexOf(id);
      return { first, last: first + 499 };
    };
    const agentFor = (id: typeof m1, use: HostIsolation): Agent =>
      new Agent({
        cell,
        machines: [{ id, capacity: { cpuMillis: 64_000, memoryBytes: 64 * 1024 ** 3 } }],
        executor: async ({ reporter }) => {
          const executor = new ProcessExecutor({ dataDir: id === m3 ? shmLink : join(dataDir, id), machineId: id, reporter, cgroups: driver, taskUids: uidsOf(id), killGraceMs: 500, isolation: use });
          await executor.init();
          return executor;
        },
        flushIntervalMs: 20,
      });
    agent = agentFor(m1, (isolation as { use: HostIsolation }).use);
    plainAgent = agentFor(m2, { pid: false, networkNone: false });
    shmAgent = agentFor(m3, (isolation as { use: HostIsolation }).use);
    await plainAgent.start();
    await agent.start();
    await shmAgent.start();
    mirror = cell.mirror();
    await mirror.start();
    listener = createServer((socket) => {
      accepted++;
      socket.on('error', () => undefined);
      socket.end('hello\n');
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    listenerPort = (listener.address() as { port: number }).port;
  });

  afterAll(async () => {
    if (skip) return;
    await new Promise<void>((resolve) => (listener === undefined ? resolve() : listener.close(() => resolve())));
    await agent?.stop({ drain: true });
    await plainAgent?.stop({ drain: true });
    await shmAgent?.stop({ drain: true });
    await mirror?.stop();
    await kv?.close();
    const { rmdir } = await import('node:fs/promises');
    for (const controller of driver.version === 'v2' ? [''] : ['cpu', 'cpuacct', 'memory', 'pids', 'freezer']) {
      await rmdir(join(driver.root, controller, parent)).catch(() => undefined);
    }
    await rm(dataDir, { recursive: true, force: true });
    await rm(shmDir, { recursive: true, force: true });
    await rm(shmLink, { force: true });
  });

  async function run(name: string, spec: JobSpec, machine = m1): Promise<void> {
    await cell.createJob({ id: jobId(name), spec });
    await placeTasks(cell, mirror, [{ taskId: taskId(name, 0), machineId: machine, resources: spec.task.resources }]);
  }
  const record = (name: string): Task | undefined => mirror.snapshot().task(taskId(name, 0));
  const ended = (name: string): boolean => attemptEnded(record(name));
  const stdout = (name: string, machine = m1): Promise<string> => readFile(taskLogPaths(join(dataDir, machine), taskId(name, 0), 1).stdout, 'utf8');
  const withNetwork = (spec: JobSpec, network: 'host' | 'none'): JobSpec => ({ ...spec, task: { ...spec.task, network } });

  it.skipIf(skip)('a task sees only its own processes in /proc: its init as pid 1 and itself', async () => {
    // The shell's own pid, then every numeric /proc entry (the shell, ls, and the init).
    await run('ps', jobSpec('ps').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'echo "self $$"; for p in /proc/[0-9]*; do echo "${p#/proc/}"; done').build());
    await eventually('the task to end', () => ended('ps'));
    expect(record('ps')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const lines = (await stdout('ps')).trim().split('\n');
    expect(lines[0]).toBe('self 2');
    const pids = lines.slice(1).map(Number).sort((a, b) => a - b);
    // The glob runs in the shell itself: only pid 1 (the init) and 2 (the shell) exist.
    expect(pids).toEqual([1, 2]);
    // The host's processes (this test's, pid 1's) are not there: /proc is its own.
    expect(pids).not.toContain(process.pid);
  });

  it.skipIf(skip)("a task's /tmp and /dev/shm are private: files written there are not in the host's, and its work dir under /tmp is still its cwd", async () => {
    const marker = `omega-iso-marker-${process.pid}`;
    await run('tmp', jobSpec('tmp').cpu(100).memory('32Mi').command('/bin/sh', '-c', `echo x > /tmp/${marker} && ls /tmp/${marker} && echo y > /dev/shm/${marker} && pwd && echo "$HOME" && touch here`).build());
    await eventually('the task to end', () => ended('tmp'));
    expect(record('tmp')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const work = join(taskLogPaths(join(dataDir, m1), taskId('tmp', 0), 1).dir, 'work');
    expect(await stdout('tmp')).toBe(`/tmp/${marker}\n${work}\n${work}\n`);
    await expect(stat(join(tmpdir(), marker))).rejects.toThrow(/ENOENT/);
    expect((await readdir(tmpdir())).includes(marker)).toBe(false);
    await expect(stat(join('/dev/shm', marker))).rejects.toThrow(/ENOENT/);
  });

  it.skipIf(skip)('a work dir reached through a link into /dev/shm is still the cwd under the private /dev/shm', async () => {
    const marker = `omega-iso-shm-${process.pid}`;
    await run('shm', jobSpec('shm').cpu(100).memory('32Mi').command('/bin/sh', '-c', `echo y > /dev/shm/${marker} && /bin/pwd && echo "$HOME" && touch here`).build(), m3);
    await eventually('the task to end', () => ended('shm'));
    expect(record('shm')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    // The kernel's cwd is the resolved work dir (writable: `touch` succeeded); HOME is the path as
    // the agent named it.
    const resolved = join(taskLogPaths(join(shmDir, m3), taskId('shm', 0), 1).dir, 'work');
    const named = join(taskLogPaths(shmLink, taskId('shm', 0), 1).dir, 'work');
    expect(await readFile(taskLogPaths(shmLink, taskId('shm', 0), 1).stdout, 'utf8')).toBe(`${resolved}\n${named}\n`);
    await expect(stat(join('/dev/shm', marker))).rejects.toThrow(/ENOENT/);
  });

  it.skipIf(skip)('with network: none a task has only loopback and cannot reach a listener on the host\'s 127.0.0.1', async () => {
    const script = `cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ls /sys/class/net 2>/dev/null | tr '\\n' ' '; echo; if (exec 3<>/dev/tcp/127.0.0.1/${listenerPort}) 2>/dev/null; then echo connected; else echo refused; fi`;
    // bash for /dev/tcp; the same task with the host network does connect (the check can fail).
    await run('net-none', withNetwork(jobSpec('net-none').cpu(100).memory('32Mi').command('/bin/bash', '-c', script).build(), 'none'));
    await run('net-host', withNetwork(jobSpec('net-host').cpu(100).memory('32Mi').command('/bin/bash', '-c', script).build(), 'host'));
    await eventually('both tasks to end', () => ended('net-none') && ended('net-host'));
    expect(record('net-none')).toMatchObject({ state: 'succeeded', exitCode: 0 });
    const [devs, , verdict] = (await stdout('net-none')).split('\n');
    expect(devs).toBe('lo');
    expect(verdict).toBe('refused');
    const hostOut = (await stdout('net-host')).trim().split('\n');
    expect(hostOut.at(-1)).toBe('connected');
    expect(hostOut.length).toBeGreaterThan(3);
    expect(accepted).toBe(1);
  });

  it.skipIf(skip)("the exit code of `exit 7` and death by SIGKILL are the task's own, not its init's", async () => {
    await run('seven', jobSpec('seven').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'sleep 30 & exit 7').build());
    await run('suicide', jobSpec('suicide').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'kill -9 $$').build());
    await run('termed', jobSpec('termed').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'kill -TERM $$').build());
    await eventually('the tasks to end', () => ended('seven') && ended('suicide') && ended('termed'));
    expect(record('seven')).toMatchObject({ state: 'failed', exitCode: 7 });
    expect(record('seven')?.signal ?? '').toBe('');
    expect(record('suicide')).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
    expect(record('termed')).toMatchObject({ state: 'failed', signal: 'SIGTERM' });
    const exit = JSON.parse(await readFile(join(taskLogPaths(join(dataDir, m1), taskId('suicide', 0), 1).dir, 'exit.json'), 'utf8')) as Record<string, unknown>;
    expect(exit).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
  });

  it.skipIf(skip)('a task asking for 32 MiB that allocates 256 MiB still ends failed with reason oom-killed', async () => {
    await run('oom', jobSpec('oom').cpu(500).memory('32Mi').command('dd', 'if=/dev/zero', 'of=/dev/null', 'bs=256M', 'count=1').build());
    await eventually('the task to end', () => ended('oom'));
    expect(record('oom')).toMatchObject({ state: 'failed', reason: 'oom-killed', signal: 'SIGKILL' });
  });

  it.skipIf(skip)('a killed task that forked a child and ignores TERM leaves no process behind, its init included', async () => {
    await run('forker', jobSpec('forker').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'trap "" TERM; sleep 1000 & sleep 1000').build());
    await eventually('the task to run', () => record('forker')?.state === 'running');
    const cgroup = driver.open(taskInstanceName(taskId('forker', 0), 1));
    // The shell and both sleeps are in the cgroup; the init (the started pid) is not.
    await eventually('three processes in the cgroup', async () => (await cgroup.pids()).length === 3);
    const pids = await cgroup.pids();
    const init = record('forker')?.pid ?? 0;
    expect(init).toBeGreaterThan(0);
    expect(pids).not.toContain(init);
    await cell.setJobDesired(jobId('forker'), 'killed');
    await eventually('the task to be killed', () => ended('forker'));
    expect(record('forker')).toMatchObject({ state: 'killed', reason: 'job-killed', signal: 'SIGKILL' });
    for (const pid of [...pids, init]) expect(await processGone(pid), `pid ${pid}`).toBe(true);
    expect(await cgroup.exists()).toBe(false);
  });

  it.skipIf(skip)('an isolated task whose program does not exist ends start-failed, its record naming the program', async () => {
    await run('iso-nosuch', jobSpec('iso-nosuch').cpu(100).memory('32Mi').command('/nonexistent/binary').build());
    await eventually('the task to end', () => ended('iso-nosuch'));
    expect(record('iso-nosuch')).toMatchObject({ state: 'failed', reason: 'start-failed', exitCode: 127, message: 'could not start the task: exec /nonexistent/binary: No such file or directory' });
  });

  it.skipIf(skip)('a job asking network: none of an agent that cannot give it fails with reason isolation-unavailable and runs nothing', async () => {
    await run('no-net', withNetwork(jobSpec('no-net').cpu(100).memory('32Mi').command('/bin/sh', '-c', 'echo ran').build(), 'none'), m2);
    await eventually('the task to end', () => ended('no-net'));
    expect(record('no-net')).toMatchObject({ state: 'failed', reason: 'isolation-unavailable', message: expect.stringContaining('network: none') });
    await expect(stdout('no-net', m2)).rejects.toThrow(/ENOENT/);
  });
});
