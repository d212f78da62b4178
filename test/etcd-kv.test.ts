import { access, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdKv, EtcdNotFoundError, KvUnavailableError, startEtcd, type KvStore, type RunningEtcd, type WatchEvent } from '@omega/cell-state';
import { describeKvContract } from '@omega/cell-state/testing';

let etcd: RunningEtcd;

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

describeKvContract('EtcdKv', async () => {
  const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  return { kv, close: () => kv.close() };
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Puts through a store that may be reconnecting: retries while etcd is unavailable. */
async function putEventually(kv: KvStore, key: string, value: string): Promise<number> {
  for (;;) {
    try {
      return await kv.put(key, bytes(value));
    } catch (error) {
      if (!(error instanceof KvUnavailableError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * A TCP proxy in front of etcd whose connections the test can cut (and refuse) at will, to drop
 * one client's gRPC connection while etcd and other clients carry on.
 */
async function cuttableProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut(): void {
      refusing = true;
      for (const socket of sockets) socket.destroy();
    },
    restore(): void {
      refusing = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('the etcd launcher', () => {
  it('refuses to start without an etcd binary and says how to install one', async () => {
    const failure = await startEtcd({ etcdPath: '/nonexistent/omega/etcd' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EtcdNotFoundError);
    expect((failure as Error).message).toBe(
      'etcd was not found: on Debian/Ubuntu run `apt-get install etcd-server`; elsewhere install etcd 3.4+ from https://etcd.io and put it on PATH or set OMEGA_ETCD',
    );
    expect((failure as EtcdNotFoundError).searched).toEqual(['/nonexistent/omega/etcd']);
  });

  it('starts a healthy member with the raised limits and removes its temporary data directory on stop', async () => {
    const member = await startEtcd({ maxTxnOps: 500 });
    expect(member.limits.maxTxnOps).toBe(500);
    const kv = new EtcdKv({ endpoints: member.endpoints, limits: member.limits });
    const puts = Array.from({ length: 300 }, (_, i) => ({ type: 'put', key: `many/${i}`, value: bytes('v') }) as const);
    await expect(kv.txn({ compare: [], success: puts, failure: [] })).resolves.toMatchObject({ succeeded: true });
    await kv.close();
    expect(await exists(member.dataDir)).toBe(true);
    await member.stop();
    await member.stop(); // idempotent
    expect(await exists(member.dataDir)).toBe(false);
  });
});

describe('EtcdKv when its connection drops', () => {
  it('resumes a watch after its gRPC connection is cut, twice, delivering the writes made meanwhile exactly once', async () => {
    const proxy = await cuttableProxy({ host: '127.0.0.1', port: Number(new URL(etcd.clientUrl).port) });
    const watching = new EtcdKv({ endpoints: [proxy.endpoint], limits: etcd.limits });
    const writing = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
    try {
      const events: WatchEvent[] = [];
      let disconnects = 0;
      let reconnects = 0;
      const first = await writing.put('cut/0', bytes('0'));
      const handle = watching.watch('cut/', first, {
        onBatch: (batch) => events.push(...batch.events),
        onCompacted: () => {
          throw new Error('nothing was compacted');
        },
        onDisconnected: () => disconnects++,
        onReconnected: () => {
          reconnects++;
          // etcd3 has just set its resume revision from the creation header, past the writes
          // made during the cut that are not delivered yet: a second cut now makes etcd3 skip
          // them unless EtcdKv resets the resume revision on disconnection.
          if (reconnects === 1) {
            proxy.cut();
            setTimeout(() => proxy.restore(), 200);
          }
        },
      });
      await eventually('the first event', () => events.length >= 1);

      proxy.cut();
      await eventually('the watch to notice the cut', () => disconnects > 0);
      // Written while the watch cannot reach etcd: it must resume from before them.
      for (let i = 1; i <= 3; i++) await writing.put(`cut/${i}`, bytes(String(i)));
      expect(events).toHaveLength(1);
      proxy.restore();

      await eventually('the writes made during the cut', () => events.length >= 4);
      await eventually('onReconnected after the second cut', () => reconnects >= 2);
      await writing.put('cut/4', bytes('4'));
      await eventually('a write after the reconnection', () => events.length >= 5);
      await handle.cancel();
      expect(events.map((e) => e.kv.key)).toEqual(['cut/0', 'cut/1', 'cut/2', 'cut/3', 'cut/4']);
      expect(reconnects).toBe(2);
      expect(disconnects).toBe(2);
    } finally {
      await watching.close();
      await writing.close();
      await proxy.close();
    }
  });
});

describe('EtcdKv across an etcd restart', () => {
  it('resumes a watch from the next undelivered revision, losing and repeating nothing', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'omega-etcd-restart-'));
    let member = await startEtcd({ dataDir });
    const { clientPort, peerPort } = member;
    const watching = new EtcdKv({ endpoints: member.endpoints, limits: member.limits });
    const writing = new EtcdKv({ endpoints: member.endpoints, limits: member.limits });
    try {
      const events: WatchEvent[] = [];
      let disconnects = 0;
      let reconnects = 0;
      const from = (await writing.currentRevision()) + 1;
      const handle = watching.watch('restart/', from, {
        onBatch: (batch) => events.push(...batch.events),
        onCompacted: () => {
          throw new Error('nothing was compacted');
        },
        onDisconnected: () => disconnects++,
        onReconnected: () => reconnects++,
      });
      for (let i = 0; i < 3; i++) await writing.put(`restart/before-${i}`, bytes(String(i)));
      await eventually('the first three events', () => events.length >= 3);

      await member.stop();
      expect(await exists(dataDir)).toBe(true); // a given data directory is never removed
      await eventually('the watch to notice', () => disconnects > 0);
      member = await startEtcd({ dataDir, clientPort, peerPort });

      // Written while the watch may still be reconnecting: it must resume from before them.
      for (let i = 0; i < 3; i++) await putEventually(writing, `restart/after-${i}`, String(i));
      await eventually('all six events', () => events.length >= 6);
      await eventually('onReconnected', () => reconnects > 0);
      await putEventually(writing, 'restart/last', 'x');
      await eventually('the last event', () => events.length >= 7);
      await handle.cancel();

      expect(events.map((e) => e.kv.key)).toEqual([
        'restart/before-0',
        'restart/before-1',
        'restart/before-2',
        'restart/after-0',
        'restart/after-1',
        'restart/after-2',
        'restart/last',
      ]);
      const revisions = events.map((e) => e.kv.modRevision);
      expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
      expect(new Set(revisions).size).toBe(revisions.length);
    } finally {
      await watching.close();
      await writing.close();
      await member.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
