import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from './program.js';

/** Runs the program in-process; returns its exit status and what it printed. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(['node', 'omega', ...args], { stdout, stderr, env, now: () => 0 });
  return { code, stdout: out, stderr: err };
}

/** A port on 127.0.0.1 where nothing listens (it did a moment ago). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 1));
    });
  });
}

describe('omega', () => {
  it('says which address it tried when the API is unreachable, on one line, exit status 1', async () => {
    const port = await closedPort();
    const result = await run(['--api', `127.0.0.1:${port}`, 'jobs']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^omega: cannot reach the Omega API at 127\\.0\\.0\\.1:${port}: ECONNREFUSED .*\\n$`));
    expect(result.stdout).toBe('');
  });

  it('takes the address from OMEGA_API when --api is not given', async () => {
    const port = await closedPort();
    const result = await run(['machines'], { OMEGA_API: `127.0.0.1:${port}` });
    expect(result.stderr).toContain(`127.0.0.1:${port}`);
  });

  it('refuses a malformed address naming where it came from, exit status 2', async () => {
    expect(await run(['--api', 'nowhere', 'jobs'])).toMatchObject({ code: 2, stderr: 'omega: --api: "nowhere" is not HOST:PORT\n' });
    expect(await run(['stats'], { OMEGA_API: 'x:0' })).toMatchObject({ code: 2, stderr: 'omega: OMEGA_API: "x:0" is not HOST:PORT\n' });
  });

  it('names a bad job file field before contacting the API', async () => {
    const result = await run(['--api', '127.0.0.1:1', 'submit', '-f', '/nonexistent/job.yaml']);
    expect(result).toMatchObject({ code: 1, stderr: 'omega: cannot read job file /nonexistent/job.yaml: no such file\n' });
  });

  it('refuses a malformed request id and unknown commands as usage errors', async () => {
    expect((await run(['submit', '-f', 'x.yaml', '--request-id', '../x'])).code).toBe(2);
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^omega: unknown command 'frobnicate'/);
  });

  it('refuses bad omega dev flags naming the flag', async () => {
    expect(await run(['dev', '--cell', 'Bad_Cell'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^omega: --cell: must be a DNS label/) });
    expect(await run(['dev', '--machine-memory', 'lots'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^omega: --machine-memory: /) });
    expect(await run(['dev', '--listen', '127.0.0.1:0'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^omega: --listen: /) });
  });
});
