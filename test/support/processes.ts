/**
 * Helpers for integration tests that run the built entry points as child processes: start one
 * and wait for a line on its stdout, stop it (SIGTERM, then SIGKILL), run a command to its end,
 * and wait for a condition with a bound. Every process started here is stopped by the test that
 * started it; `stopAll()` is the safety net for afterAll, and every process is spawned so that the
 * kernel kills it when the test runner dies (`dieWithParent`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dieWithParent } from '@omega/cell-state';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Absolute path of a file in the repository. */
export function repoPath(relative: string): string {
  return `${REPO}${relative}`;
}

export interface Started {
  readonly child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

const started = new Set<Started>();

/**
 * Starts `node <script> <args>` and resolves once a line of its output matches `ready` (with the
 * match), or rejects with its output if it exits first or `timeoutMs` passes.
 */
export async function startNode(script: string, args: readonly string[], ready: RegExp, timeoutMs = 60_000, options: { detached?: boolean; cwd?: string } = {}): Promise<{ started: Started; match: RegExpExecArray }> {
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` (tsc -b) first`);
  // Bound to this thread's life (setpriv --pdeathsig): a runner killed on a timeout leaves nothing behind.
  const command = dieWithParent(process.execPath, [script, ...args]);
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true, ...(options.cwd === undefined ? {} : { cwd: options.cwd }) });
  let text = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    started.delete(handle);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    await exited;
    clearTimeout(timer);
  };
  const handle: Started = { child, output: () => text, stop };
  started.add(handle);
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not print ${ready} within ${timeoutMs} ms; its output:\n${text}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const m = ready.exec(text);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code ?? signal}) before it was ready; its output:\n${text}`));
    });
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { started: handle, match };
}

/** Stops every process started through this module that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((s) => s.stop()));
}

/** Runs `node <script> <args>` to its end. */
export function runNode(script: string, args: readonly string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const command = dieWithParent(process.execPath, [script, ...args]);
    const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')} did not finish within ${timeoutMs} ms; output:\n${stdout}${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs` (a bound, not an assertion on time). */
export async function eventually<T>(what: string, condition: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${(last as Error).message}`}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A process started by {@link spawnLogged}: the `msg` of every pino line it wrote, and its end. */
export interface LoggedProcess {
  readonly child: ChildProcess;
  /** Each stdout line's pino `msg` (the raw line when it is not JSON), then stderr chunks. */
  readonly messages: string[];
  readonly exited: Promise<number | null>;
}

/**
 * Starts `node <script> <args>` bound to the runner's life (like {@link startNode}) without waiting
 * for a line: for tests that follow what a process logs over its whole life. The caller stops it.
 */
export function spawnLogged(script: string, args: readonly string[]): LoggedProcess {
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` (tsc -b) first`);
  const command = dieWithParent(process.execPath, [script, ...args]);
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: string[] = [];
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        messages.push((JSON.parse(line) as { msg: string }).msg);
      } catch {
        messages.push(line);
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => messages.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, messages, exited };
}
