import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SupervisorLauncher, type LaunchedEnd } from './supervisor-launcher.js';

// Built by scripts/build-supervisor.mjs (the test setup runs it).
const LAUNCHER = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'omega-launcher');
const PATH = '/usr/bin:/bin';

async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!existsSync(LAUNCHER))('the supervisor launcher', () => {
  let dir: string;
  let launcher: SupervisorLauncher;
  const started: number[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omega-launcher-'));
    launcher = new SupervisorLauncher(LAUNCHER, { PATH });
  });
  afterEach(async () => {
    launcher.close();
    for (const pid of started.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it("starts a process in its own session with its stdin from the request, stdout /dev/null and the launcher's stderr, and reports its end", async () => {
    const out = join(dir, 'out');
    let end: LaunchedEnd | undefined;
    // Its stdout is looked at first, then it writes everything to a file; $PPID is the launcher.
    const script = `stdout=$(readlink /proc/$$/fd/1); exec > ${out}; cat; echo "sid=$(ps -o sid= -p $$ | tr -d " ") pid=$$ path=$PATH"; readlink /proc/$$/fd/2 /proc/$PPID/fd/2; echo "stdout=$stdout"`;
    const pid = await launcher.launch({ binary: '/bin/sh', args: ['-c', script], stdin: Buffer.from('from stdin\n') }, (e) => (end = e));
    started.push(pid);
    await eventually('the end to be reported', () => end !== undefined);
    expect(end).toBe('exited');
    const [input, ids, ownStderr, launcherStderr, stdout] = (await readFile(out, 'utf8')).split('\n');
    expect([input, ids, stdout]).toEqual(['from stdin', `sid=${pid} pid=${pid} path=${PATH}`, 'stdout=/dev/null']);
    expect(ownStderr).toBe(launcherStderr);
  });

  it('starts many at once, each reported with its own pid and its own end', async () => {
    let ended = 0;
    const pids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => launcher.launch({ binary: '/bin/sh', args: ['-c', `echo ${i} > ${join(dir, `log-${i}`)}`], stdin: Buffer.alloc(0) }, () => ended++)),
    );
    started.push(...pids);
    expect(new Set(pids).size).toBe(20);
    await eventually('every end', () => ended === 20);
    for (let i = 0; i < 20; i++) expect(await readFile(join(dir, `log-${i}`), 'utf8')).toBe(`${i}\n`);
  });

  it('reports the end of a launch whose binary does not exist (exec fails in the child)', async () => {
    let end: LaunchedEnd | undefined;
    // exec fails in the child: it exits 127 after the launch was answered.
    const pid = await launcher.launch({ binary: join(dir, 'missing'), args: [], stdin: Buffer.alloc(0) }, (e) => (end = e));
    started.push(pid);
    await eventually('the end to be reported', () => end !== undefined);
    expect(end).toBe('exited');
  });

  it('leaves what it started running when it is closed (the agent went away)', async () => {
    const gate = join(dir, 'gate');
    const done = join(dir, 'done');
    let end: LaunchedEnd | undefined;
    const pid = await launcher.launch({ binary: '/bin/sh', args: ['-c', `while [ ! -e ${gate} ]; do sleep 0.05; done; touch ${done}`], stdin: Buffer.alloc(0) }, (e) => (end = e));
    started.push(pid);
    launcher.close();
    expect(end).toBe('unknown');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(alive(pid)).toBe(true);
    await writeFile(gate, '');
    await eventually('the process to finish on its own', () => existsSync(done));
  });
});
