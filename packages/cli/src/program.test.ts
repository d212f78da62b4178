import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Server, ServerCredentials, loadPackageDefinition, type ServerWritableStream, type ServiceDefinition } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@omega/api/client';
import { createCa } from '@omega/pki';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './program.js';

/** An empty working directory: no ./.omega/client.yaml is found by accident. */
const CWD = mkdtempSync(join(tmpdir(), 'omega-program-'));
afterAll(() => rmSync(CWD, { recursive: true, force: true }));

/** Runs the program in-process; returns its exit status and what it printed. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}, cwd = CWD): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runCli(['node', 'omega', ...args], { stdout, stderr, env, now: () => 0, cwd });
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
    const result = await run(['--insecure', '--api', `127.0.0.1:${port}`, 'jobs']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^omega: cannot reach the Omega API at 127\\.0\\.0\\.1:${port}: ECONNREFUSED .*\\n$`));
    expect(result.stdout).toBe('');
  });

  it('takes the address from OMEGA_API when --api is not given', async () => {
    const port = await closedPort();
    const result = await run(['machines', '--insecure'], { OMEGA_API: `127.0.0.1:${port}` });
    expect(result.stderr).toContain(`127.0.0.1:${port}`);
  });

  it('refuses a malformed address naming where it came from, exit status 2', async () => {
    expect(await run(['--api', 'nowhere', 'jobs'])).toMatchObject({ code: 2, stderr: 'omega: --api: "nowhere" is not HOST:PORT\n' });
    expect(await run(['stats'], { OMEGA_API: 'x:0' })).toMatchObject({ code: 2, stderr: 'omega: $OMEGA_API: "x:0" is not HOST:PORT\n' });
  });

  it('says what is missing when it has no credentials at all, exit status 2', async () => {
    expect(await run(['jobs'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'omega: no API credentials: pass --config, set OMEGA_CONFIG, or run omega dev (it prints export OMEGA_CONFIG=...); --insecure for a plaintext API\n',
    });
  });

  it('never prints a token it refuses', async () => {
    const secret = 'omg1.ci.not-the-right-length';
    const result = await run(['jobs', '--ca', '/nonexistent/ca.pem', '--token', secret]);
    expect(result).toMatchObject({ code: 2, stderr: 'omega: --ca: file not found (/nonexistent/ca.pem)\n' });
    const ca = join(CWD, 'ca.pem');
    writeFileSync(ca, (await createCa({ commonName: 'test CA' })).certPem);
    const malformed = await run(['jobs', '--ca', ca], { OMEGA_TOKEN: secret });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^omega: \$OMEGA_TOKEN: the token's secret is not 32 bytes/);
    expect(malformed.stderr).not.toContain(secret);
  });

  it('names a bad job file field before contacting the API', async () => {
    const result = await run(['--insecure', '--api', '127.0.0.1:1', 'submit', '-f', '/nonexistent/job.yaml']);
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

/** Every new command refuses bad arguments as a usage error, before it resolves a connection or calls the API. */
describe('argument checking of the access and namespace commands', () => {
  const usage = async (args: string[]): Promise<string> => {
    // --api at a closed port: a command that got as far as calling would exit 1, not 2.
    const result = await run(['--insecure', '--api', '127.0.0.1:1', ...args]);
    expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 2, stdout: '' });
    return result.stderr;
  };

  it('token create needs a DNS label name, a known role and, for read and submit, namespaces', async () => {
    expect(await usage(['token', 'create', 'ci'])).toMatch(/required option '--role <role>' not specified/);
    expect(await usage(['token', 'create', 'ci', '--role', 'root'])).toMatch(/--role <role>' argument 'root' is invalid. Allowed choices are read, submit, admin/);
    expect(await usage(['token', 'create', 'Bad_Name', '--role', 'read', '--namespaces', 'a'])).toMatch(/<name> must be a DNS label/);
    expect(await usage(['token', 'create', 'ci', '--role', 'submit'])).toBe('omega: --namespaces: a submit token needs the namespaces it may use (a,b, or * for every namespace)\n');
    expect(await usage(['token', 'create', 'ci', '--role', 'read', '--namespaces', 'a,,b'])).toMatch(/--namespaces must be namespace names separated by commas .* "" is not one/);
    expect(await usage(['token', 'create', 'ci', '--role', 'admin', '--namespaces', 'a'])).toBe('omega: --namespaces: an admin token covers every namespace; leave --namespaces out (or give *)\n');
    expect(await usage(['token', 'create', 'ci', '--role', 'read', '--namespaces', 'a', '--ttl', '30 days'])).toMatch(/--ttl: "30 days" is not a duration like 30s, 500ms, 2m, 1h or 30d/);
  });

  it('token revoke and namespace create need a DNS label', async () => {
    expect(await usage(['token', 'revoke'])).toMatch(/missing required argument 'name'/);
    expect(await usage(['token', 'revoke', 'a.b'])).toMatch(/<name> must be a DNS label/);
    expect(await usage(['namespace', 'create', '-x'])).toMatch(/unknown option '-x'/);
    expect(await usage(['namespace', 'create', 'Team'])).toMatch(/<name> must be a DNS label/);
  });

  it('quota set needs a namespace and at least one quantity, each a valid one', async () => {
    expect(await usage(['quota', 'set', 'team-a'])).toBe('omega: quota set: give at least one of --cpu, --memory, --tasks (0 removes that limit)\n');
    expect(await usage(['quota', 'set', 'team-a', '--cpu', 'four'])).toMatch(/--cpu: "four" is not a quantity like 0.5, 500m or 2 \(0: no limit\)/);
    expect(await usage(['quota', 'set', 'team-a', '--memory', '8 gigs'])).toMatch(/--memory: "8 gigs" is not a quantity like 64Mi/);
    expect(await usage(['quota', 'set', 'team-a', '--tasks', '-1'])).toMatch(/--tasks must be a whole number >= 0/);
    expect(await usage(['quota', 'get', 'NS'])).toMatch(/<namespace> must be a DNS label/);
  });

  it('cordon, uncordon and drain need a machine; drain a positive --deadline', async () => {
    expect(await usage(['cordon'])).toMatch(/missing required argument 'machine'/);
    expect(await usage(['uncordon'])).toMatch(/missing required argument 'machine'/);
    expect(await usage(['drain', 'm0', '--deadline', 'soon'])).toMatch(/--deadline: "soon" is not a duration like 30s/);
    expect(await usage(['drain', 'm0', '--deadline', '0'])).toMatch(/--deadline: "0" must be longer than 0/);
    expect(await usage(['cordon', 'm0', '--reason', 'x'.repeat(257)])).toMatch(/--reason must be at most 256 characters/);
  });

  it('plan needs a file, or --instances with the job to scale', async () => {
    expect(await usage(['plan'])).toBe('omega: plan: give -f FILE (a submit, or with ID an update) or --instances N with ID (a scale)\n');
    expect(await usage(['plan', '--instances', '3'])).toBe('omega: plan --instances: name the job to scale\n');
    expect(await usage(['plan', 'web-1', '--instances', '0'])).toMatch(/--instances must be a whole number >= 1/);
  });

  it('jobs and submit take a DNS label --namespace', async () => {
    expect(await usage(['jobs', '--namespace', 'A'])).toMatch(/--namespace must be a DNS label/);
    expect(await usage(['submit', '-f', 'x.yaml', '-n', 'a_b'])).toMatch(/--namespace must be a DNS label/);
  });
});

describe('omega logs', () => {
  /** A JobService answering only GetTaskLogs with `chunks`. */
  async function logService(chunks: { data: Buffer; truncated?: boolean }[]): Promise<{ address: string; stop: () => Promise<void> }> {
    const loaded = loadPackageDefinition(protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS)) as unknown as { omega: { v1: Record<string, { service: ServiceDefinition }> } };
    const server = new Server();
    server.addService(loaded.omega.v1.JobService!.service, {
      GetTaskLogs: (call: ServerWritableStream<unknown, unknown>) => {
        for (const chunk of chunks) call.write(chunk);
        call.end();
      },
    } as never);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, p) => (error === null ? resolve(p) : reject(error))));
    return { address: `127.0.0.1:${port}`, stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
  }

  it('prints the output as sent and, when the agent truncated it, a note on stderr', async () => {
    const api = await logService([{ data: Buffer.from('newest ') }, { data: Buffer.from('bytes\n') }, { data: Buffer.alloc(0), truncated: true }]);
    try {
      const result = await run(['--insecure', '--api', api.address, 'logs', 'j-1', '2']);
      expect(result).toEqual({ code: 0, stdout: 'newest bytes\n', stderr: "omega: the stdout of j-1/2 was truncated by the agent's log cap: only its newest part is shown\n" });
      const whole = await logService([{ data: Buffer.from('all of it\n') }]);
      try {
        expect(await run(['--insecure', '--api', whole.address, 'logs', 'j-1', '2', '--stderr'])).toEqual({ code: 0, stdout: 'all of it\n', stderr: '' });
      } finally {
        await whole.stop();
      }
    } finally {
      await api.stop();
    }
  });
});
