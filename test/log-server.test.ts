// The agent's log server (packages/node-agent/src/log-server.ts), over real HTTP and HTTPS on
// 127.0.0.1, and the API's side of it (packages/api/src/task-logs.ts) over HTTPS.
// Lives here rather than beside the code so the node-agent package is only touched by its one
// new file until the agent's engineer wires the server in (then this can move next to it).
import { appendFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_GRANT_TTL_MS, mintLogGrant, type LogGrantScope, type TlsIdentity } from '@omega/cell-state';
import { createCa, issueCertificate, type CertificateAuthority, type CertifiedKey } from '@omega/pki';
import { streamTaskLog } from '@omega/api';
import { parseLogPath, startLogServer, type LogServer } from '@omega/node-agent';

let dataDir: string;
let outsideDir: string;
let server: LogServer;
const asked: string[] = [];

/** A raw HTTP request: the path is sent exactly as given (no client-side normalisation). */
function get(path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const [host, port] = server.address.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'omega-logs-'));
  outsideDir = await mkdtemp(join(tmpdir(), 'omega-secret-'));
  await writeFile(join(outsideDir, 'secret'), 'not for you\n');
  await mkdir(join(dataDir, 'tasks', 'web-1~0~1'), { recursive: true });
  await writeFile(join(dataDir, 'tasks', 'web-1~0~1', 'stdout.log'), 'line one\nline two\n');
  await writeFile(join(dataDir, 'tasks', 'web-1~0~1', 'stderr.log'), '');
  await symlink(join(outsideDir, 'secret'), join(dataDir, 'tasks', 'web-1~0~1', 'escape.log'));
  server = await startLogServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    logPathFor: (jobId, index, attempt, stream) => {
      asked.push(`${jobId} ${index} ${attempt} ${stream}`);
      if (jobId === 'outside') return join(outsideDir, 'secret');
      if (jobId === 'symlinked') return join(dataDir, 'tasks', 'web-1~0~1', 'escape.log');
      return join(dataDir, 'tasks', `${jobId}~${index}~${attempt}`, `${stream}.log`);
    },
  });
});

afterAll(async () => {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(outsideDir, { recursive: true, force: true });
});

describe('startLogServer', () => {
  it('listens on 127.0.0.1 and reports host:port for the alive record', () => {
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('streams a task attempt log file', async () => {
    expect(await get('/logs/web-1/0/1/stdout')).toEqual({ status: 200, body: 'line one\nline two\n' });
    expect(await get('/logs/web-1/0/1/stderr')).toEqual({ status: 200, body: '' });
  });

  it('answers 404 for a log that does not exist', async () => {
    expect((await get('/logs/web-1/0/2/stdout')).status).toBe(404);
    expect((await get('/logs/other/3/1/stdout')).status).toBe(404);
  });

  it('refuses malformed paths with 400 without asking for a file', async () => {
    asked.length = 0;
    for (const path of [
      '/logs/../0/1/stdout',
      '/logs/%2e%2e/0/1/stdout',
      '/logs/web-1/../../etc/passwd',
      '/logs/web-1/x/1/stdout',
      '/logs/web-1/-1/1/stdout',
      '/logs/web-1/0/1.5/stdout',
      '/logs/web-1/0/1/stdin',
      '/logs/web-1/0/1/stdout/extra',
      '/logs/web-1/0/1/stdout?follow=1',
      '/logs//0/1/stdout',
      '/other/web-1/0/1/stdout',
      '/logs/.hidden/0/1/stdout',
      '/logs/web%2F1/0/1/stdout',
    ]) {
      expect((await get(path)).status, path).toBe(400);
    }
    expect(asked).toEqual([]);
  });

  it('serves nothing outside its data directory, also through a symlink', async () => {
    expect((await get('/logs/outside/0/1/stdout')).status).toBe(404);
    expect((await get('/logs/symlinked/0/1/stdout')).status).toBe(404);
  });

  it('allows only GET and HEAD', async () => {
    expect((await get('/logs/web-1/0/1/stdout', 'POST')).status).toBe(405);
    expect((await get('/logs/web-1/0/1/stdout', 'HEAD')).status).toBe(200);
  });
});

describe('following a log', () => {
  const dir = (job: string): string => join(dataDir, 'tasks', `${job}~0~1`);

  /** Follows `job`'s stdout through the API's client side; calls `step(received)` as bytes arrive. */
  async function follow(job: string, step: (received: string) => Promise<void>): Promise<{ text: string; truncated: boolean[] }> {
    const location = { url: `http://${server.address}/logs/${job}/0/1/stdout`, machineId: 'm0', jobId: job, index: 0, attempt: 1, stream: 'stdout' as const };
    const truncated: boolean[] = [];
    let text = '';
    for await (const chunk of streamTaskLog(location, { follow: true, onTruncated: (t) => truncated.push(t) })) {
      text += Buffer.from(chunk).toString();
      await step(text);
    }
    return { text, truncated };
  }

  it('sends what the task writes, across a rotation, until the attempt has ended', async () => {
    await mkdir(dir('tail-1'), { recursive: true });
    await writeFile(join(dir('tail-1'), 'stdout.log'), 'one\n');
    const steps: string[] = [];
    const result = await follow('tail-1', async (received) => {
      steps.push(received);
      if (received === 'one\n') await appendFile(join(dir('tail-1'), 'stdout.log'), 'two\n');
      if (received === 'one\ntwo\n') {
        // The supervisor's rotation: the full file becomes .1, a new one takes the writes.
        await rename(join(dir('tail-1'), 'stdout.log'), join(dir('tail-1'), 'stdout.log.1'));
        await writeFile(join(dir('tail-1'), 'stdout.log'), 'three\n');
      }
      if (received === 'one\ntwo\nthree\n') {
        await appendFile(join(dir('tail-1'), 'stdout.log'), 'four\n');
        await writeFile(join(dir('tail-1'), 'exit.json'), '{}');
      }
    });
    expect(result).toEqual({ text: 'one\ntwo\nthree\nfour\n', truncated: [false] });
    expect(steps.at(-1)).toBe('one\ntwo\nthree\nfour\n');
  });

  it('says when more than one rotation passed between two looks, and ends when the task directory is removed', async () => {
    await mkdir(dir('tail-2'), { recursive: true });
    await writeFile(join(dir('tail-2'), 'stdout.log'), 'a\n');
    const result = await follow('tail-2', async (received) => {
      if (received !== 'a\n') return;
      // Two rotations at once: b becomes .1, then c replaces it; d takes the writes.
      await rename(join(dir('tail-2'), 'stdout.log'), join(dir('tail-2'), 'old-a'));
      await writeFile(join(dir('tail-2'), 'stdout.log.1'), 'c\n');
      await writeFile(join(dir('tail-2'), 'stdout.log'), 'd\n');
      setTimeout(() => void rm(dir('tail-2'), { recursive: true, force: true }), 1_000);
    });
    expect(result.text).toBe('a\nc\nd\n');
    expect(result.truncated).toEqual([false, true]);
  });
});

describe('parseLogPath', () => {
  it('reads the four segments of a valid path', () => {
    expect(parseLogPath('/logs/hello-abc/12/3/stderr')).toEqual({ jobId: 'hello-abc', index: 12, attempt: 3, stream: 'stderr' });
  });
});

// ---- over TLS: client certificates of the cell's CA, CN omega-api, and a log grant ----------

describe('startLogServer with a TLS identity', () => {
  let cellCa: CertificateAuthority;
  let agentId: TlsIdentity;
  let apiId: TlsIdentity;
  let schedulerId: TlsIdentity;
  let strangerId: TlsIdentity;
  let tlsServer: LogServer;
  let tlsDir: string;
  let clock = Date.now();
  const machine = 'm1';

  const identity = (ca: CertificateAuthority, key: CertifiedKey): TlsIdentity => ({ ca: Buffer.from(ca.certPem), cert: Buffer.from(key.certPem), key: Buffer.from(key.keyPem) });
  const scope = (over: Partial<LogGrantScope> = {}): LogGrantScope => ({ jobId: 'web-1', index: 0, attempt: 1, stream: 'stdout', machineId: machine, ...over });

  /** An HTTPS GET presenting `client` (or no certificate); rejects when the handshake fails. */
  function tlsGet(client: TlsIdentity | undefined, path: string, grant?: string): Promise<{ status: number; body: string }> {
    const [host, port] = tlsServer.address.split(':');
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host,
          port: Number(port),
          path,
          method: 'GET',
          agent: false,
          ca: cellCa.certPem,
          ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
          headers: grant === undefined ? {} : { authorization: `Bearer ${grant}` },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    cellCa = await createCa({ commonName: 'test cell CA' });
    const otherCa = await createCa({ commonName: 'another CA' });
    const hosts = ['127.0.0.1', 'localhost'];
    agentId = identity(cellCa, await issueCertificate(cellCa, { commonName: `omega-agent-${machine}`, hosts }));
    apiId = identity(cellCa, await issueCertificate(cellCa, { commonName: 'omega-api', hosts }));
    schedulerId = identity(cellCa, await issueCertificate(cellCa, { commonName: 'omega-scheduler', hosts }));
    strangerId = identity(otherCa, await issueCertificate(otherCa, { commonName: 'omega-api', hosts }));
    tlsDir = await mkdtemp(join(tmpdir(), 'omega-tls-logs-'));
    await mkdir(join(tlsDir, 'web-1~0~1'), { recursive: true });
    await writeFile(join(tlsDir, 'web-1~0~1', 'stdout.log'), 'secret output\n');
    tlsServer = await startLogServer({
      dataDir: tlsDir,
      host: '127.0.0.1',
      port: 0,
      logPathFor: (jobId, index, attempt, stream) => join(tlsDir, `${jobId}~${index}~${attempt}`, `${stream}.log`),
      tls: { identity: agentId, machineId: machine, now: () => clock },
    });
  });

  afterAll(async () => {
    await tlsServer?.close();
    await rm(tlsDir, { recursive: true, force: true });
  });

  it('serves a log to the API presenting a grant for exactly that log', async () => {
    const grant = mintLogGrant(scope(), apiId.key, clock);
    expect(await tlsGet(apiId, '/logs/web-1/0/1/stdout', grant)).toEqual({ status: 200, body: 'secret output\n' });
  });

  it('refuses a client without a certificate, or with one of another CA, at the handshake', async () => {
    const grant = mintLogGrant(scope(), apiId.key, clock);
    await expect(tlsGet(undefined, '/logs/web-1/0/1/stdout', grant)).rejects.toThrow();
    await expect(tlsGet(strangerId, '/logs/web-1/0/1/stdout', mintLogGrant(scope(), strangerId.key, clock))).rejects.toThrow();
  });

  it('refuses a plaintext client', async () => {
    const [host, port] = tlsServer.address.split(':');
    const plain = await new Promise<string>((resolve) => {
      const req = request({ host, port: Number(port), path: '/logs/web-1/0/1/stdout' }, (res) => {
        res.resume();
        resolve(`status ${res.statusCode}`);
      });
      req.on('error', () => resolve('refused'));
      req.end();
    });
    expect(plain).not.toBe('status 200');
  });

  it('refuses a certificate of the cell that is not the API (403), even with a grant signed by its own key', async () => {
    const response = await tlsGet(schedulerId, '/logs/web-1/0/1/stdout', mintLogGrant(scope(), schedulerId.key, clock));
    expect(response.status).toBe(403);
    expect(response.body).not.toContain('secret output');
  });

  it('refuses the API without a grant, with a malformed one, or with one signed by another key (401)', async () => {
    for (const grant of [undefined, 'nonsense', mintLogGrant(scope(), schedulerId.key, clock)]) {
      const response = await tlsGet(apiId, '/logs/web-1/0/1/stdout', grant);
      expect(response.status, String(grant)).toBe(401);
      expect(response.body).not.toContain('secret output');
    }
  });

  it('refuses an expired grant (401), and one valid for far too long', async () => {
    const minted = clock;
    const grant = mintLogGrant(scope(), apiId.key, minted);
    clock = minted + LOG_GRANT_TTL_MS + 1;
    try {
      expect((await tlsGet(apiId, '/logs/web-1/0/1/stdout', grant)).status).toBe(401);
    } finally {
      clock = minted;
    }
    expect((await tlsGet(apiId, '/logs/web-1/0/1/stdout', mintLogGrant(scope(), apiId.key, clock, 24 * 3600_000))).status).toBe(401);
  });

  it('refuses a grant for another task, attempt, stream or machine (403)', async () => {
    for (const other of [scope({ jobId: 'web-2' }), scope({ index: 1 }), scope({ attempt: 2 }), scope({ stream: 'stderr' }), scope({ machineId: 'm2' })]) {
      const response = await tlsGet(apiId, '/logs/web-1/0/1/stdout', mintLogGrant(other, apiId.key, clock));
      expect(response.status, JSON.stringify(other)).toBe(403);
      expect(response.body).not.toContain('secret output');
    }
  });

  it("is what the API's log reader talks to: it mints the grant and checks the agent's certificate", async () => {
    const location = { url: `https://${tlsServer.address}/logs/web-1/0/1/stdout`, machineId: machine, jobId: 'web-1', index: 0, attempt: 1, stream: 'stdout' as const };
    const chunks: Uint8Array[] = [];
    for await (const chunk of streamTaskLog(location, { tls: apiId, now: () => clock })) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('secret output\n');
    // The same server claimed for another machine: its certificate is not that machine's.
    const elsewhere = { ...location, machineId: 'm2' };
    await expect(
      (async () => {
        for await (const chunk of streamTaskLog(elsewhere, { tls: apiId, now: () => clock })) chunks.push(chunk);
      })(),
    ).rejects.toThrow(/not omega-agent-m2/);
  });
});
