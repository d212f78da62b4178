import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { probeListen, splitHostPort } from './port-probe.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function listening(host: string): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    servers.push(server);
    server.listen(0, host, () => resolve((server.address() as { port: number }).port));
  });
}

describe('probeListen', () => {
  it('finds a port another server listens on taken, and a free one free', async () => {
    const port = await listening('127.0.0.1');
    expect((await probeListen('127.0.0.1', port))?.code).toBe('EADDRINUSE');
    servers[0]?.close();
    servers.length = 0;
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await probeListen('127.0.0.1', port)).toBeUndefined();
  });

  it('finds a loopback port taken when another server listens on every address', async () => {
    const port = await listening('0.0.0.0');
    expect((await probeListen('127.0.0.1', port))?.code).toBe('EADDRINUSE');
  });
});

describe('splitHostPort', () => {
  it('takes IPv4, names and bracketed IPv6', () => {
    expect(splitHostPort('127.0.0.1:7070')).toEqual({ host: '127.0.0.1', port: 7070 });
    expect(splitHostPort('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    expect(splitHostPort('[::1]:7070')).toEqual({ host: '::1', port: 7070 });
  });
});
