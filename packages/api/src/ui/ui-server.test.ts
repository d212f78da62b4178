import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Cell, createNamespace, createToken, machineId, MemoryKv, revokeToken, taskId, type JobId } from '@omega/cell-state';
import { machine, plan } from '@omega/cell-state/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../server.js';
import { ApiTestClient } from '../testing/index.js';

let kv: MemoryKv;
let cell: Cell;
let server: ApiServer;
let client: ApiTestClient;
let base: string;
let adminToken: string;
let logServer: Server | undefined;

const job = (namespace: string, name = 'hello') => ({
  name,
  namespace,
  kind: 'JOB_KIND_BATCH',
  instances: 2,
  task: { command: ['sleep', '60'], resources: { cpu_millis: 100, memory_bytes: 64 * 1024 * 1024 } },
});

async function token(name: string, role: 'read' | 'submit' | 'admin', namespaces: string[]): Promise<string> {
  const created = await createToken(kv, cell.keys, { name, role, namespaces });
  if (created.outcome !== 'created') throw new Error(`token ${name} exists`);
  return created.token;
}

async function submit(namespace = ''): Promise<JobId> {
  return (await client.unary<{ job_id: string }>('jobs', 'SubmitJob', { job: job(namespace) })).job_id as JobId;
}

/** A login through the UI; the session cookie it set (name=value). */
async function login(text: string): Promise<string> {
  const response = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: text }) });
  expect(response.status).toBe(200);
  const cookie = response.headers.get('set-cookie') ?? '';
  return cookie.split(';')[0] as string;
}

function get(path: string, cookie?: string): Promise<Response> {
  return fetch(`${base}${path}`, { redirect: 'manual', headers: cookie === undefined ? {} : { cookie } });
}

/** Reads server-sent events until `until` says stop (or the stream ends); returns every event. */
async function events(path: string, cookie: string, until: (seen: { event: string; data: unknown }[]) => boolean, timeoutMs = 10_000): Promise<{ event: string; data: unknown }[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const seen: { event: string; data: unknown }[] = [];
  try {
    const response = await fetch(`${base}${path}`, { headers: { cookie }, signal: controller.signal });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (data === '') continue;
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        seen.push({ event, data: JSON.parse(data) });
        if (until(seen)) return seen;
      }
    }
  } catch (error) {
    if (controller.signal.aborted) throw new Error(`no end within ${timeoutMs} ms; saw ${JSON.stringify(seen).slice(0, 2000)}`);
    throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

async function place(id: JobId, index: number): Promise<void> {
  const { revision } = await cell.kv.range({ key: cell.keys.root });
  await server.mirror.waitForRevision(revision);
  const pc = plan(server.mirror.snapshot(), [[taskId(id, index), machineId('m0'), 100]]);
  const result = await cell.committer().commit(pc.transaction('resource-fit', 'incremental'));
  if (result.committed.length !== 1) throw new Error('placement conflicted');
}

beforeEach(async () => {
  kv = new MemoryKv();
  cell = new Cell(kv, 'test');
  adminToken = await token('admin', 'admin', []);
  await createNamespace(kv, cell.keys, 'a', 0);
  await createNamespace(kv, cell.keys, 'b', 0);
  server = await startApiServer({ cell, auth: 'tokens', listen: '127.0.0.1:0', shutdownGraceMs: 1_000, ui: { listen: '127.0.0.1:0', coalesceMs: 20, recheckMs: 200, sampleMs: 50 } });
  client = new ApiTestClient(server.address, { token: adminToken });
  base = `http://${server.ui?.address ?? ''}`;
  await cell.registerMachine(machine('m0').cpu(4000).memory('8Gi').attr('zone', 'z1').build());
});

afterEach(async () => {
  client.close();
  await server.close();
  await new Promise<void>((resolve) => (logServer === undefined ? resolve() : logServer.close(() => resolve())));
  logServer = undefined;
});

describe('the web UI login', () => {
  it('sends a page request without a session to the login page, and answers its JSON with 401 saying what is missing', async () => {
    const page = await get('/');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2F');
    const jobPage = await get('/jobs/x-1');
    expect(jobPage.headers.get('location')).toBe('/login?next=%2Fjobs%2Fx-1');
    const json = await get('/api/overview');
    expect(json.status).toBe(401);
    expect(((await json.json()) as { error: string }).error).toMatch(/^missing credentials/);
    const loginPage = await get('/login');
    expect(loginPage.status).toBe(200);
    expect(loginPage.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('refuses a malformed or unknown token at login and sets no cookie, never echoing the token', async () => {
    const secretLooking = 'omg1.nobody.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    for (const [text, expected] of [
      ['not a token', 400],
      ['not-a-token', 401],
      [secretLooking, 401],
      [`${adminToken.slice(0, -2)}xx`, 401],
    ] as const) {
      const response = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: text }) });
      const body = await response.text();
      expect([text, response.status]).toEqual([text, expected]);
      expect(response.headers.get('set-cookie')).toBeNull();
      expect(body).not.toContain(text);
    }
  });

  it('keeps a good token in an HttpOnly SameSite=Strict cookie that then opens the pages', async () => {
    const response = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: adminToken }) });
    expect(response.status).toBe(200);
    const setCookie = response.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^omega_session=omg1\.admin\./);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    const body = await response.text();
    expect(body).not.toContain(adminToken);
    expect(JSON.parse(body)).toMatchObject({ name: 'admin', role: 'admin', insecure: false });
    const cookie = setCookie.split(';')[0] as string;
    expect((await get('/', cookie)).status).toBe(200);
    const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: '{}' });
    expect(logout.headers.get('set-cookie')).toContain('Max-Age=0');
  });

  it('refuses a login posted from another origin or as a form (CSRF), and serves no state-changing method', async () => {
    const foreign = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: JSON.stringify({ token: adminToken }) });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('set-cookie')).toBeNull();
    const form = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${adminToken}` });
    expect(form.status).toBe(403);
    const cookie = await login(adminToken);
    for (const method of ['PUT', 'DELETE', 'PATCH']) expect((await fetch(`${base}/api/overview`, { method, headers: { cookie } })).status).toBe(405);
  });

  it('refuses a revoked token on the very next request, pages and JSON alike', async () => {
    const reader = await token('viewer', 'read', ['*']);
    const cookie = await login(reader);
    expect((await get('/api/overview', cookie)).status).toBe(200);
    await revokeToken(kv, cell.keys, 'viewer');
    const json = await get('/api/overview', cookie);
    expect(json.status).toBe(401);
    expect(((await json.json()) as { error: string }).error).toBe('token "viewer" is not valid (unknown, revoked, or not its secret)');
    expect((await get('/', cookie)).status).toBe(303);
  });
});

describe('the web UI data', () => {
  it('shows a read token the machines and only the jobs of its namespaces, and refuses another namespace\'s job as GetJob does', async () => {
    const inA = await submit('a');
    const inB = await submit('b');
    const cookie = await login(await token('team-a', 'read', ['a']));
    const overview = (await (await get('/api/overview', cookie)).json()) as { cell: string; machines: { id: string; attributes: Record<string, string>; capacity: { cpu_millis: number } }[]; jobs: { id: string; state: string; task_counts: { pending: number } }[] };
    expect(overview.cell).toBe('test');
    expect(overview.machines.map((m) => [m.id, m.capacity.cpu_millis, m.attributes.zone])).toEqual([['m0', 4000, 'z1']]);
    expect(overview.jobs.map((j) => j.id)).toEqual([inA]);
    expect(overview.jobs[0]).toMatchObject({ state: 'JOB_VIEW_STATE_PENDING', task_counts: { pending: 2 } });
    const mine = await get(`/api/jobs/${inA}`, cookie);
    expect(mine.status).toBe(200);
    const page = (await mine.json()) as { job: { id: string; tasks: unknown[] }; versions: { version: number; current: boolean }[] };
    expect(page.job.tasks).toHaveLength(2);
    expect(page.versions[0]).toMatchObject({ version: 1, current: true });
    const theirs = await get(`/api/jobs/${inB}`, cookie);
    expect(theirs.status).toBe(403);
    expect(((await theirs.json()) as { error: string }).error).toBe('token "team-a" (namespaces "a") may not read jobs in namespace "b": it is not one of its namespaces');
    expect((await get(`/api/events?job=${inB}`, cookie)).status).toBe(403);
    expect((await get('/api/jobs/no-such-job', cookie)).status).toBe(404);
    expect((await get('/api/jobs/..%2Fx', cookie)).status).toBe(400);
  });

  it('lists at most 500 machines (by id) on the overview, with totals over every machine', async () => {
    await cell.registerMachines(Array.from({ length: 520 }, (_, i) => machine(`n${String(i).padStart(3, '0')}`).build()));
    const heartbeat = await cell.startHeartbeat(machineId('n000'));
    const cookie = await login(adminToken);
    const overview = (await (await get('/api/overview', cookie)).json()) as { machines: { id: string }[]; machineTotals: { machines: number; alive: number } };
    await heartbeat.stop();
    expect(overview.machines).toHaveLength(500);
    expect(overview.machines[0]?.id).toBe('m0');
    expect(overview.machines.at(-1)?.id).toBe('n498');
    expect(overview.machineTotals).toEqual({ machines: 521, alive: 1 });
  });

  it('streams the overview as server-sent events and sends a new one when a job is placed and when it is killed', async () => {
    const cookie = await login(adminToken);
    const first = await submit('a');
    type Seen = { jobs: { id: string; state: string; kill_requested: boolean; task_counts: { placed: number } }[] };
    const ofJob = (e: { data: unknown }) => (e.data as Seen).jobs.find((j) => j.id === first);
    const seen = events('/api/events', cookie, (all) => all.some((e) => e.event === 'message' && ofJob(e)?.kill_requested === true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await place(first, 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.unary('jobs', 'KillJob', { job_id: first });
    const views = (await seen).filter((e) => e.event === 'message').map(ofJob);
    expect(views[0]).toMatchObject({ state: 'JOB_VIEW_STATE_PENDING', kill_requested: false });
    expect(views.some((v) => v?.state === 'JOB_VIEW_STATE_RUNNING' && v.task_counts.placed === 1 && !v.kill_requested)).toBe(true);
    expect(views.at(-1)).toMatchObject({ kill_requested: true });
  });

  it("ends an open event stream with session-ended once its token is revoked", async () => {
    const cookie = await login(await token('watcher', 'read', ['*']));
    const seen = events('/api/events', cookie, (all) => all.some((e) => e.event === 'session-ended'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await revokeToken(kv, cell.keys, 'watcher');
    const ended = (await seen).find((e) => e.event === 'session-ended');
    expect(ended?.data).toEqual({ error: 'token "watcher" is not valid (unknown, revoked, or not its secret)' });
  });

  it("samples the schedulers' stats into a history of per-interval conflict fraction and busyness", async () => {
    const cookie = await login(adminToken);
    const stats = { name: 'batch-0', kind: 'batch', conflictMode: 'fine', transactionMode: 'incremental', claimsCommitted: 0, claimsConflicted: 0, busyNoFitMs: 0, jobsPlaced: 0, jobsAbandoned: 0, waitFirstAttemptMeanMs: 0, waitFirstAttemptP90Ms: 0, waitFullyPlacedMeanMs: 0, waitFullyPlacedP90Ms: 0, spuriousRetries: 0 };
    await cell.publishSchedulerStats({ ...stats, transactionsOk: 10, transactionsFailed: 1, busyUsefulMs: 100, busyWastedMs: 0, elapsedMs: 1000, updatedAtMs: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await cell.publishSchedulerStats({ ...stats, transactionsOk: 20, transactionsFailed: 6, busyUsefulMs: 400, busyWastedMs: 100, elapsedMs: 2000, updatedAtMs: 2000 });
    let history: { schedulers: { name: string; points: { atMs: number; conflictFraction: number; busyness: number }[] }[] } = { schedulers: [] };
    for (let i = 0; i < 50 && (history.schedulers[0]?.points.length ?? 0) < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      history = (await (await get('/api/stats-history', cookie)).json()) as typeof history;
    }
    expect(history.schedulers.map((s) => s.name)).toEqual(['batch-0']);
    expect(history.schedulers[0]?.points).toEqual([
      { atMs: 1000, conflictFraction: 0.1, busyness: 0.1, transactions: 11 },
      { atMs: 2000, conflictFraction: 0.5, busyness: 0.4, transactions: 15 },
    ]);
  });

  it("serves a task's log from its agent's log server to a reader of its namespace", async () => {
    logServer = createServer((request, response) => {
      response.end(`log of ${request.url ?? ''}\n`);
    });
    await new Promise<void>((resolve) => logServer?.listen(0, '127.0.0.1', resolve));
    const port = (logServer.address() as AddressInfo).port;
    const heartbeat = await cell.startHeartbeat(machineId('m0'), { logAddress: `127.0.0.1:${port}` });
    try {
      const id = await submit('a');
      await place(id, 0);
      const cookie = await login(await token('team-a', 'read', ['a']));
      const response = await get(`/api/logs/${id}/0?stream=stderr`, cookie);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(`log of /logs/${id}/0/1/stderr\n`);
      const unplaced = await get(`/api/logs/${id}/1`, cookie);
      expect(unplaced.status).toBe(409);
      expect(((await unplaced.json()) as { error: string }).error).toBe(`task ${id}/1 has not been placed yet: it has no logs`);
      const other = await get(`/api/logs/${id}/0`, await login(await token('team-b', 'read', ['b'])));
      expect(other.status).toBe(403);
    } finally {
      await heartbeat.stop();
    }
  });
});

describe('the web UI of an insecure server', () => {
  it('asks for no login (every visitor is admin, as on the gRPC port) and says so in the session', async () => {
    const open = await startApiServer({ cell: new Cell(kv, 'test'), auth: 'none', listen: '127.0.0.1:0', shutdownGraceMs: 1_000, ui: { listen: '127.0.0.1:0' } });
    try {
      expect(open.ui?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(open.ui?.url ?? '', { redirect: 'manual' });
      expect(page.status).toBe(200);
      expect(await (await fetch(`${open.ui?.url ?? ''}api/session`)).json()).toEqual({ name: 'insecure', role: 'admin', namespaces: ['*'], insecure: true });
      const rebound = await new Promise<number>((resolve, reject) => {
        const ask = httpRequest({ host: '127.0.0.1', port: open.ui?.port, path: '/api/overview', headers: { host: `evil.example:${open.ui?.port ?? 0}` } }, (answer) => {
          answer.resume();
          resolve(answer.statusCode ?? 0);
        });
        ask.on('error', reject);
        ask.end();
      });
      expect(rebound).toBe(421);
    } finally {
      await open.close();
    }
  });

  it('serves no UI unless asked', async () => {
    const plain = await startApiServer({ cell: new Cell(kv, 'test'), auth: 'none', listen: '127.0.0.1:0', shutdownGraceMs: 1_000 });
    try {
      expect(plain.ui).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});

describe('plainHostAllowed', () => {
  it('lets plain HTTP answer IP addresses and localhost only, so a rebound DNS name cannot read an insecure cell', async () => {
    const { plainHostAllowed } = await import('./ui-server.js');
    expect(['127.0.0.1:8080', '10.1.2.3', '[::1]:80', 'localhost:7071', 'LOCALHOST'].map(plainHostAllowed)).toEqual([true, true, true, true, true]);
    expect(['evil.example:8080', 'evil.example', '127.0.0.1.nip.io', '', undefined].map(plainHostAllowed)).toEqual([false, false, false, false, false]);
  });
});
