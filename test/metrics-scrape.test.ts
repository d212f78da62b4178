/**
 * A scheduler process's `/metrics` during a live placement run on a real etcd, parsed with a
 * Prometheus text-format parser: the committed-claims counter is what the scheduler's published
 * stats record says (what `omega stats` shows), the commit latency histogram has buckets, sum
 * and count, and the mirror's figures are there. Runs the built entry points (`tsc -b` first);
 * every process listens on 127.0.0.1 and is stopped here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { freePort, type JobId } from '@omega/cell-state';
import { jobSpec, machine } from '@omega/cell-state/testing';
import { readStoredCell } from '@omega/scheduler-core/testing';
import { startEtcdCell, type EtcdCell } from './support/etcd-cell.js';
import { eventually, repoPath, startNode, stopAll } from './support/processes.js';

const BATCH = repoPath('packages/scheduler-batch/dist/main.js');
const AGENT = repoPath('packages/node-agent/dist/main.js');

let cluster: EtcdCell | undefined;

afterEach(async () => {
  await stopAll();
  await cluster?.stop();
  cluster = undefined;
});

interface Family {
  name: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

async function scrape(url: string): Promise<Map<string, Family> & { text: string }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text) as Family[];
  return Object.assign(new Map(families.map((f) => [f.name, f])), { text });
}

/** A histogram's `_sum` or `_count` line (the parser keeps only the buckets of labelled histograms). */
function histogramLine(text: string, name: string, part: 'sum' | 'count'): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}_${part}{`) || l.startsWith(`${name}_${part} `));
  return Number(line?.slice(line.lastIndexOf(' ') + 1) ?? Number.NaN);
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return Number(sample?.value ?? Number.NaN);
}

describe('a scheduler process scraped by Prometheus', () => {
  it('serves its transactions, claims and commit latency, agreeing with its published stats', async () => {
    cluster = await startEtcdCell(Array.from({ length: 20 }, (_, i) => machine(`m${i}`).cpu(4000).memory('16Gi').build()));
    const { etcd, cell, cellName } = cluster;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    await startNode(BATCH, ['--insecure', '--etcd', etcd.clientUrl, '--cell', cellName, '--name', 'batch-m', '--stats-interval-ms', '200', '--metrics-listen', `127.0.0.1:${port}`, '--seed', '1'], /"msg":"scheduler started"/, 30_000);

    const jobs: JobId[] = [];
    for (let i = 0; i < 20; i++) jobs.push((await cell.createJob({ id: `job-${i}` as JobId, spec: jobSpec(`job-${i}`).instances(10).cpu(100).build() })).job.id);
    // Scraped while it places.
    const during = await scrape(url);
    expect(during.get('omega_scheduler_claims_total')?.type).toBe('COUNTER');
    await eventually('every task placed', async () => {
      const snapshot = await readStoredCell(cell);
      return jobs.every((id) => [...snapshot.tasksOf(id)].filter((t) => t.state === 'placed').length === 10);
    }, 30_000, 200);
    // Quiet now: the stats record published after the last commit says what the counters say.
    const stats = await eventually('stats published after the last placement', async () => {
      const record = [...(await readStoredCell(cell)).schedulerStats()].find((s) => s.name === 'batch-m');
      return record !== undefined && record.claimsCommitted === 200 ? record : undefined;
    }, 20_000, 100);
    const after = await scrape(url);
    expect(value(after, 'omega_scheduler_claims_total', { result: 'committed' })).toBe(stats.claimsCommitted);
    expect(value(after, 'omega_scheduler_transactions_total', { result: 'ok' })).toBe(stats.transactionsOk);
    expect(value(after, 'omega_scheduler_transactions_total', { result: 'failed' })).toBe(stats.transactionsFailed);
    expect(value(after, 'omega_scheduler_claims_total', { result: 'committed', scheduler: 'batch-m' })).toBe(200);
    const latency = after.get('omega_scheduler_commit_latency_seconds');
    expect(latency?.type).toBe('HISTOGRAM');
    const series = latency?.metrics[0];
    expect(Object.keys(series?.buckets ?? {}).length).toBeGreaterThan(5);
    const count = histogramLine(after.text, 'omega_scheduler_commit_latency_seconds', 'count');
    expect(count).toBe(stats.transactionsOk + stats.transactionsFailed);
    expect(Number(series?.buckets?.['+Inf'])).toBe(count);
    expect(histogramLine(after.text, 'omega_scheduler_commit_latency_seconds', 'sum')).toBeGreaterThan(0);
    expect(value(after, 'omega_scheduler_jobs_total', { event: 'placed' })).toBe(20);
    expect(value(after, 'omega_scheduler_queue_depth')).toBe(0);
    expect(value(after, 'omega_mirror_revision')).toBeGreaterThan(0);
    expect(value(after, 'omega_mirror_revision_lag')).toBeGreaterThanOrEqual(0);
    expect(value(after, 'omega_mirror_relists_total')).toBe(0);
    expect(after.has('process_cpu_seconds_total')).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
  }, 90_000);

  it('a hollow agent serves its tasks, starts, endings and status writes', async () => {
    cluster = await startEtcdCell([]);
    const { etcd, cell, cellName } = cluster;
    const agentPort = await freePort();
    await startNode(AGENT, ['--insecure', '--etcd', etcd.clientUrl, '--cell', cellName, '--hollow', '4', '--cpu', '4', '--memory', '8Gi', '--metrics-listen', `127.0.0.1:${agentPort}`, '--log-listen', 'none'], /metrics on http/, 30_000);
    await startNode(BATCH, ['--insecure', '--etcd', etcd.clientUrl, '--cell', cellName, '--name', 'batch-h', '--seed', '1'], /"msg":"scheduler started"/, 30_000);
    const job = (await cell.createJob({ id: 'short' as JobId, spec: jobSpec('short').instances(6).cpu(100).duration(200).build() })).job.id;
    await eventually('every task succeeded', async () => [...(await readStoredCell(cell)).tasksOf(job)].filter((t) => t.state === 'succeeded').length === 6, 30_000, 200);
    const url = `http://127.0.0.1:${agentPort}/metrics`;
    const families = await eventually('the agent to have flushed its reports', async () => {
      const f = await scrape(url);
      return value(f, 'omega_agent_status_updates_total') >= 12 ? f : undefined;
    }, 10_000, 200);
    expect(value(families, 'omega_agent_up')).toBe(1);
    expect(value(families, 'omega_agent_task_starts_total')).toBe(6);
    expect(value(families, 'omega_agent_task_endings_total', { reason: 'exited' })).toBe(6);
    expect(value(families, 'omega_agent_tasks', { state: 'succeeded' })).toBe(6);
    expect(value(families, 'omega_agent_status_writes_total', { kind: 'batch' })).toBeGreaterThan(0);
    expect(value(families, 'omega_agent_supervision_reserved_bytes')).toBe(0);
    expect(value(families, 'omega_mirror_revision')).toBeGreaterThan(0);
  }, 90_000);
});
