// A namespace quota under a submit race, on a real etcd as a secured cell runs it (TLS, client
// certificates, the cell's etcd roles): 2 TLS API servers in this process over one etcd, each as
// etcd user omega-api, asking tokens; 8 clients, each with its own submit token of the namespace,
// submitting concurrently (each to either server, seeded), jobs of random sizes.
// The quota must never be exceeded (judged from the jobs stored in etcd at the end, summed here,
// not by the code under test) and every refusal must be RESOURCE_EXHAUSTED. The seed is printed;
// replay with QUOTA_RACE_SEED=<seed>.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { startApiServer, type ApiServer } from '@omega/api';
import { ApiTestClient } from '@omega/api/testing';
import { Cell, CellKeys, EtcdKv, createToken } from '@omega/cell-state';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSecureEtcd, type SecureEtcd } from './support/secure-etcd.js';
import { seededRandom } from './support/workload.js';

const SEED = Number(process.env.QUOTA_RACE_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CLIENTS = 8;
const SUBMITS_PER_CLIENT = 12;
const MiB = 1024 * 1024;
const QUOTA = { cpu_millis: 40_000, memory_bytes: 6 * 1024 * MiB, tasks: 60 };

let secure: SecureEtcd;
let adminToken: string;
const kvs: EtcdKv[] = [];
const servers: ApiServer[] = [];
const clients: ApiTestClient[] = [];
/** From both servers' logs: per submit, how often it was judged again after another admission got in. */
const admissionRetries: number[] = [];

beforeAll(async () => {
  secure = await startSecureEtcd({ cell: 'race', agents: [] });
  const root = new EtcdKv({ endpoints: secure.endpoints, tls: secure.pki.identity('root') });
  try {
    const created = await createToken(root, new CellKeys('race'), { name: 'admin', role: 'admin', namespaces: [] });
    if (created.outcome !== 'created') throw new Error('the admin token existed already');
    adminToken = created.token;
  } finally {
    await root.close();
  }
  const lines = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line.includes('admission judged again') || line.includes('submit refused: over the namespace quota')) admissionRetries.push((JSON.parse(line) as { conflicts: number }).conflicts);
      }
      done();
    },
  });
  for (let i = 0; i < 2; i++) {
    const identity = secure.pki.identity('omega-api');
    const kv = new EtcdKv({ endpoints: secure.endpoints, limits: secure.etcd.limits, tls: identity, probeKey: new CellKeys('race').root });
    kvs.push(kv);
    servers.push(await startApiServer({ cell: new Cell(kv, 'race'), tls: identity, auth: 'tokens', listen: '127.0.0.1:0', shutdownGraceMs: 1_000, logger: pino({ level: 'debug' }, lines) }));
  }
});

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(kvs.map((kv) => kv.close()));
  await secure?.stop();
});

describe('a namespace quota under concurrent submits through two API servers', () => {
  it('is never exceeded, and every refused submit is RESOURCE_EXHAUSTED', async () => {
    console.log(`quota-race seed ${SEED} (replay: QUOTA_RACE_SEED=${SEED})`);
    const rand = seededRandom(SEED);
    const tls = credentials.createSsl(readFileSync(secure.pki.caFile));
    const connect = (i: number, token: string): ApiTestClient => {
      const made = new ApiTestClient((servers[i] as ApiServer).address, { credentials: tls, token });
      clients.push(made);
      return made;
    };
    const [first, second] = [connect(0, adminToken), connect(1, adminToken)];
    await first.unary('namespaces', 'CreateNamespace', { name: 'team' });
    await second.unary('namespaces', 'SetQuota', { namespace: 'team', quota: QUOTA });
    // Each client submits with a token of its own that may submit in the namespace, and nothing else.
    const submitters = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const { secret } = await first.unary<{ secret: string }>('access', 'CreateToken', { name: `client-${c}`, role: 'ROLE_SUBMIT', namespaces: ['team'] });
        return [connect(0, secret), connect(1, secret)] as const;
      }),
    );

    // Every client's plan is drawn up front, so the seed fixes what is submitted (the interleaving is the race's).
    const plans = Array.from({ length: CLIENTS }, (_, c) =>
      Array.from({ length: SUBMITS_PER_CLIENT }, (_, i) => ({
        server: (submitters[c] as readonly [ApiTestClient, ApiTestClient])[rand() < 0.5 ? 0 : 1],
        requestId: `c${c}-s${i}`,
        cpu: 250 * (1 + Math.floor(rand() * 8)),
        memory: 64 * MiB * (1 + Math.floor(rand() * 4)),
        instances: 1 + Math.floor(rand() * 3),
      })),
    );
    const refusals: ServiceError[] = [];
    let admitted = 0;
    await Promise.all(
      plans.map(async (plan) => {
        for (const p of plan) {
          const job = { name: 'w', namespace: 'team', kind: 'JOB_KIND_BATCH', instances: p.instances, task: { command: ['true'], resources: { cpu_millis: p.cpu, memory_bytes: p.memory } } };
          try {
            await p.server.unary('jobs', 'SubmitJob', { job, request_id: p.requestId });
            admitted++;
          } catch (error) {
            refusals.push(error as ServiceError);
          }
        }
      }),
    );

    // The stored jobs, listed from etcd by a new mirror and summed here.
    const mirror = new Cell(kvs[0]!, 'race').mirror();
    await mirror.start();
    const stored = [...mirror.snapshot().jobs()];
    await mirror.stop();
    const used = { cpu: 0, memory: 0, tasks: 0 };
    for (const job of stored) {
      expect(job.spec.namespace).toBe('team');
      used.cpu += job.spec.instances * job.spec.task.resources.cpuMillis;
      used.memory += job.spec.instances * job.spec.task.resources.memoryBytes;
      used.tasks += job.spec.instances;
    }
    const retries = admissionRetries.reduce((a, b) => a + b, 0);
    console.log(
      `quota-race: ${admitted} admitted, ${refusals.length} refused, ${retries} admission retries after conflicts (in ${admissionRetries.filter((n) => n > 0).length} submits, at most ${Math.max(0, ...admissionRetries)} in one); ` +
        `use cpu ${used.cpu}/${QUOTA.cpu_millis}m memory ${used.memory / MiB}/${QUOTA.memory_bytes / MiB}Mi tasks ${used.tasks}/${QUOTA.tasks}`,
    );
    expect(stored).toHaveLength(admitted);
    expect(used.cpu).toBeLessThanOrEqual(QUOTA.cpu_millis);
    expect(used.memory).toBeLessThanOrEqual(QUOTA.memory_bytes);
    expect(used.tasks).toBeLessThanOrEqual(QUOTA.tasks);
    expect(refusals.map((e) => `${e.code} ${e.details}`).filter((e) => !e.startsWith(`${status.RESOURCE_EXHAUSTED} namespace "team": `))).toEqual([]);
    // The run must have raced at the quota to mean anything: some refused, some admitted.
    expect(refusals.length).toBeGreaterThan(0);
    expect(admitted).toBeGreaterThan(0);
    // What the API reports as the namespace's use is the same sum.
    expect(await first.unary('namespaces', 'GetQuota', { namespace: 'team' })).toMatchObject({ used: { cpu_millis: used.cpu, memory_bytes: used.memory, tasks: used.tasks } });
  });
});
