// The agent's log server (packages/node-agent/src/log-server.ts), over real HTTP on 127.0.0.1.
// Lives here rather than beside the code so the node-agent package is only touched by its one
// new file until the agent's engineer wires the server in (then this can move next to it).
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLogPath, startLogServer, type LogServer } from '../packages/node-agent/src/log-server.js';

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

describe('parseLogPath', () => {
  it('reads the four segments of a valid path', () => {
    expect(parseLogPath('/logs/hello-abc/12/3/stderr')).toEqual({ jobId: 'hello-abc', index: 12, attempt: 3, stream: 'stderr' });
  });
});
