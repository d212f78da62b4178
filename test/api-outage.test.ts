// The API server process through etcd outages: etcd frozen (SIGSTOP) under a running server, and
// a server started before etcd listens. In both it must stay up, answer UNAVAILABLE (asserted by
// code, not by time), and serve again once etcd is back, as the same process.
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { freePort, startEtcd, type RunningEtcd } from '@omega/cell-state';
import { ApiTestClient, refusal } from '@omega/api/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventually, repoPath, startNode, stopAll, type Started } from './support/processes.js';

const API = repoPath('packages/api/dist/main.js');

const job = (name: string) => ({
  name,
  kind: 'JOB_KIND_BATCH',
  instances: 1,
  task: { command: ['true'], resources: { cpu_millis: '100', memory_bytes: String(64 * 1024 * 1024) } },
});

const etcds: RunningEtcd[] = [];
const clients: ApiTestClient[] = [];
const frozen = new Set<number>();

afterEach(async () => {
  // Never leave a frozen etcd behind, whatever failed.
  for (const pid of frozen) process.kill(pid, 'SIGCONT');
  frozen.clear();
  for (const client of clients.splice(0)) client.close();
  await stopAll();
  await Promise.all(etcds.splice(0).map((etcd) => etcd.stop()));
});

afterAll(async () => {
  await stopAll();
});

async function startApi(etcdUrl: string): Promise<{ api: Started; client: ApiTestClient }> {
  const cell = `outage-${randomBytes(3).toString('hex')}`;
  const { started, match } = await startNode(API, ['--insecure', '--etcd', etcdUrl, '--cell', cell, '--listen', '127.0.0.1:0', '--log-level', 'info', '--etcd-timeout-ms', '1000'], /omega-api listening on (\S+)/);
  const client = new ApiTestClient(match[1] as string);
  clients.push(client);
  return { api: started, client };
}

describe('the API server process through an etcd outage', () => {
  it('answers UNAVAILABLE while etcd is frozen and serves again after, as the same process', async () => {
    const etcd = await startEtcd();
    etcds.push(etcd);
    const { api, client } = await startApi(etcd.clientUrl);
    const pid = api.child.pid;
    const first = await eventually('a first submit', () => client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job('before') }), 30_000);
    expect(first.created).toBe(true);
    // A watch of a job that never ends (no scheduler runs): it must not go silent during the outage.
    let sent: () => void = () => undefined;
    const firstView = new Promise<void>((resolve) => (sent = resolve));
    const watching = client.stream('WatchJob', { job_id: first.job_id }, () => sent());
    await firstView;

    process.kill(etcd.pid, 'SIGSTOP');
    frozen.add(etcd.pid);
    const refused = [
      await refusal(client.unary('jobs', 'GetJob', { job_id: first.job_id })),
      await refusal(client.unary('jobs', 'ListJobs', {})),
      await refusal(client.unary('jobs', 'SubmitJob', { job: job('during'), request_id: 'during-1' })),
    ];
    expect(refused.map((e) => e.code)).toEqual([status.UNAVAILABLE, status.UNAVAILABLE, status.UNAVAILABLE]);
    expect((await watching).error?.code).toBe(status.UNAVAILABLE);

    process.kill(etcd.pid, 'SIGCONT');
    frozen.delete(etcd.pid);
    // etcd3's circuit breaker may still be open for a few seconds: poll, bounded.
    const after = await eventually('a submit after etcd is back', () => client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job('after'), request_id: 'after-1' }), 30_000);
    expect(after.created).toBe(true);
    // The submit refused during the outage may have been applied: its request id tells, and never makes a second job.
    const during = await client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job('during'), request_id: 'during-1' });
    const listed = await client.unary<{ jobs: { id: string }[] }>('jobs', 'ListJobs', {});
    expect(listed.jobs.map((j) => j.id).sort()).toEqual([first.job_id, after.job_id, during.job_id].sort());
    expect(api.child.exitCode).toBeNull();
    expect(api.child.pid).toBe(pid);
  });

  it('starts before etcd listens, answers UNAVAILABLE, then serves once etcd starts', async () => {
    const clientPort = await freePort();
    const { api, client } = await startApi(`http://127.0.0.1:${clientPort}`);
    const pid = api.child.pid;
    const error = await refusal(client.unary('jobs', 'ListJobs', {}));
    expect(error.code).toBe(status.UNAVAILABLE);
    expect((await refusal(client.unary('jobs', 'SubmitJob', { job: job('early') }))).code).toBe(status.UNAVAILABLE);

    const etcd = await startEtcd({ clientPort });
    etcds.push(etcd);
    const submitted = await eventually('a submit once etcd is up', () => client.unary<{ job_id: string; created: boolean }>('jobs', 'SubmitJob', { job: job('late') }), 30_000);
    expect(submitted.created).toBe(true);
    // A submit needs etcd only; a read also needs the mirror listed, which may take one more retry.
    const read = await eventually('the job read back once the mirror is listed', () => client.unary('jobs', 'GetJob', { job_id: submitted.job_id }).catch(() => undefined), 30_000);
    expect(read).toMatchObject({ id: submitted.job_id });
    expect(api.child.exitCode).toBeNull();
    expect(api.child.pid).toBe(pid);
    expect(api.output()).toMatch(/cell store unreachable; listing the mirror in the background/);
  });
});
