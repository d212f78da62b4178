import { describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { decodeJob, decodeSecretEnv, InvalidRecordError } from './codec.js';
import { JOB_LIMITS } from './job-spec.js';
import { MemoryKv } from './memory-kv.js';
import { RequestIdReusedError } from './request-records.js';
import { secretEnvDigest } from './secrets.js';
import { jobSpec } from './testing/builders.js';
import { cellWithMachines, plan } from './testing/cell-contract.js';
import { keysWritten, replayingKv } from './testing/replaying-kv.js';
import { jobId, taskId, type MachineId, type TaskId } from './types.js';

const SECRET = 'hunter2-do-not-leak';

/** Every stored byte under a prefix, as text, to search for a value. */
async function storedText(kv: MemoryKv, prefix: string): Promise<string> {
  const { kvs } = await kv.range({ key: prefix, prefix: true });
  return kvs.map((kv) => `${kv.key}=${Buffer.from(kv.value).toString('latin1')}`).join('\n');
}

describe('secret env values at submit', () => {
  it('are stored apart from the job, at keys.secret(job), and the job keeps only their names', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, 'c1');
    const { job, created } = await cell.createJob({ id: jobId('web-1'), spec: jobSpec('web').env('PLAIN', 'x').build(), requestId: 'r1', secretEnv: { TOKEN: SECRET, A_KEY: 'k' } });
    expect(created).toBe(true);
    expect(job.spec.task.secretEnvNames).toEqual(['A_KEY', 'TOKEN']);
    const stored = await kv.range({ key: cell.keys.secret(jobId('web-1')) });
    expect(decodeSecretEnv(stored.kvs[0]!.value)).toEqual({ TOKEN: SECRET, A_KEY: 'k' });
    const jobKv = (await kv.range({ key: cell.keys.job(jobId('web-1')) })).kvs[0]!;
    expect(decodeJob(jobKv.value, jobKv.modRevision).spec.task.secretEnvNames).toEqual(['A_KEY', 'TOKEN']);
    // Nothing under the mirrored cell prefix holds the value (job, request record, anything).
    expect(await storedText(kv, cell.keys.root)).not.toContain(SECRET);
    expect(await storedText(kv, cell.keys.authRoot)).not.toContain(SECRET);
    expect(await cell.readSecretEnv(jobId('web-1'))).toEqual({ TOKEN: SECRET, A_KEY: 'k' });
  });

  it('without secret values writes no secret record and leaves the spec as it was', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, 'c1');
    const { job } = await cell.createJob({ id: jobId('plain-1'), spec: jobSpec('plain').build(), requestId: 'r1' });
    expect(job.spec.task.secretEnvNames).toBeUndefined();
    expect((await kv.range({ key: cell.keys.secretsRoot, prefix: true })).kvs).toEqual([]);
    expect(await cell.readSecretEnv(jobId('plain-1'))).toBeUndefined();
  });

  it('refuses bad names and values naming the field, never quoting a value, and writes nothing', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, 'c1');
    const cases: [Record<string, string>, string][] = [
      [{ '1BAD': SECRET }, 'job.task.secretEnv.1BAD'],
      [{ PLAIN: SECRET }, 'job.task.secretEnv.PLAIN'],
      [{ OMEGA_JOB_ID: SECRET }, 'job.task.secretEnv.OMEGA_JOB_ID'],
      [{ NUL: `a\0${SECRET}` }, 'job.task.secretEnv.NUL'],
      [Object.fromEntries(Array.from({ length: JOB_LIMITS.maxSecretEnvEntries + 1 }, (_, i) => [`S${i}`, SECRET])), 'job.task.secretEnv'],
      [{ BIG: SECRET.repeat(Math.ceil(JOB_LIMITS.maxSecretEnvBytes / SECRET.length) + 1) }, 'job.task.secretEnv'],
    ];
    const before = await kv.currentRevision();
    for (const [secretEnv, field] of cases) {
      const error = await cell.createJob({ id: jobId('bad-1'), spec: jobSpec('bad').env('PLAIN', 'x').build(), requestId: 'r1', secretEnv }).catch((e: unknown) => e);
      expect(error, field).toBeInstanceOf(InvalidRecordError);
      expect((error as Error).message, field).toContain(`${field}`);
      expect((error as Error).message, field).not.toContain(SECRET);
    }
    expect(await kv.currentRevision()).toBe(before);
  });

  it('refuses a spec naming secrets whose values were not given', async () => {
    const cell = new Cell(new MemoryKv(), 'c1');
    const spec = jobSpec('resubmit').build();
    const withNames = { ...spec, task: { ...spec.task, secretEnvNames: ['TOKEN'] } };
    await expect(cell.createJob({ id: jobId('resubmit-1'), spec: withNames })).rejects.toThrow(/job\.task\.secretEnvNames: must be the names/);
    await expect(cell.createJob({ id: jobId('resubmit-1'), spec: withNames, secretEnv: { OTHER: 'x' } })).rejects.toThrow(/job\.task\.secretEnvNames/);
    const { job } = await cell.createJob({ id: jobId('resubmit-1'), spec: withNames, secretEnv: { TOKEN: 'x' } });
    expect(job.spec.task.secretEnvNames).toEqual(['TOKEN']);
  });
});

describe('the request record of a submit with secrets', () => {
  it('answers a repeat with the same values, through another Cell, with the existing job', async () => {
    const kv = new MemoryKv();
    const spec = jobSpec('web').build();
    const first = await new Cell(kv, 'c1').createJob({ id: jobId('web-1'), spec, requestId: 'r1', secretEnv: { TOKEN: SECRET } });
    const repeat = await new Cell(kv, 'c1').createJob({ id: jobId('web-2'), spec, requestId: 'r1', secretEnv: { TOKEN: SECRET } });
    expect(repeat).toEqual({ job: first.job, created: false });
  });

  it('refuses a repeat with other values, or without them, as a reused request id', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, 'c1');
    const spec = jobSpec('web').build();
    await cell.createJob({ id: jobId('web-1'), spec, requestId: 'r1', secretEnv: { TOKEN: SECRET } });
    await expect(cell.createJob({ id: jobId('web-2'), spec, requestId: 'r1', secretEnv: { TOKEN: 'other' } })).rejects.toBeInstanceOf(RequestIdReusedError);
    await expect(cell.createJob({ id: jobId('web-2'), spec, requestId: 'r1' })).rejects.toBeInstanceOf(RequestIdReusedError);
    await cell.createJob({ id: jobId('plain-1'), spec, requestId: 'r2' });
    await expect(cell.createJob({ id: jobId('plain-2'), spec, requestId: 'r2', secretEnv: { TOKEN: SECRET } })).rejects.toBeInstanceOf(RequestIdReusedError);
  });

  it('keeps an HMAC under a per-cell key only API servers read, not a plain hash of the values', async () => {
    const kv = new MemoryKv();
    const cell = new Cell(kv, 'c1');
    await cell.createJob({ id: jobId('web-1'), spec: jobSpec('web').build(), requestId: 'r1', secretEnv: { TOKEN: SECRET } });
    const key = (await kv.range({ key: cell.keys.secretDigestKey })).kvs[0]?.value;
    expect(key?.length).toBe(32);
    // The digest depends on the key: without it, the stored hash says nothing about the value.
    expect(secretEnvDigest(key!, { TOKEN: SECRET })).not.toBe(secretEnvDigest(new Uint8Array(32), { TOKEN: SECRET }));
    expect(cell.keys.secretDigestKey.startsWith(cell.keys.authRoot)).toBe(true);
  });

  it('a submit whose reply was lost and which was sent again stores the values once', async () => {
    const inner = new MemoryKv();
    const { kv, counters } = replayingKv(inner, { replay: (w) => w.type === 'txn' && keysWritten(w.request).some((k) => k.includes('/jobs/')) });
    const cell = new Cell(kv, 'c1');
    const { created } = await cell.createJob({ id: jobId('web-1'), spec: jobSpec('web').build(), requestId: 'r1', secretEnv: { TOKEN: SECRET } });
    expect(counters.replayed).toBe(1);
    expect(created).toBe(true);
    const stored = (await inner.range({ key: cell.keys.secretsRoot, prefix: true })).kvs;
    expect(stored.map((s) => [s.key, s.version])).toEqual([[cell.keys.secret(jobId('web-1')), 1]]);
  });
});

describe('deleting a finished job with secrets', () => {
  it('deletes its secret record in the same transaction as the job record', async () => {
    const kv = new MemoryKv();
    const { cell, mirror, ids } = await cellWithMachines(kv, 1);
    const id = jobId('done');
    const { job } = await cell.createJob({ id, spec: jobSpec('done').build(), secretEnv: { TOKEN: SECRET } });
    const result = await cell.committer().commit(plan(mirror.snapshot(), [[taskId(id, 0), ids[0] as MachineId, 100] as [TaskId, MachineId, number]], 's1').transaction('resource-fit', 'incremental'));
    for (const d of result.committed) await cell.updateTask(d.claim.taskId, d.claim.id, { state: 'succeeded', finishedAtMs: 1 });
    await cell.putJobStatus({ jobId: id, state: 'succeeded', reason: '', ruledOut: [], attempts: 1, scheduler: 's1', updatedAtMs: 1, firstAttemptAtMs: 1, fullyPlacedAtMs: 1 });
    const status = (await kv.range({ key: cell.keys.status(id) })).kvs[0]!;
    await mirror.waitForRevision(await kv.currentRevision());
    let secretGoneAt = 0;
    let jobGoneAt = 0;
    const watch = kv.watch('/', (await kv.currentRevision()) + 1, {
      onBatch: (batch) => {
        for (const e of batch.events) {
          if (e.type !== 'delete') continue;
          if (e.kv.key === cell.keys.secret(id)) secretGoneAt = e.kv.modRevision;
          if (e.kv.key === cell.keys.job(id)) jobGoneAt = e.kv.modRevision;
        }
      },
      onCompacted: () => undefined,
    });
    expect((await cell.deleteJob({ jobId: id, jobRevision: job.revision, statusRevision: status.modRevision })).outcome).toBe('deleted');
    expect((await kv.range({ key: cell.keys.secret(id) })).kvs).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await watch.cancel();
    expect(secretGoneAt).toBeGreaterThan(0);
    expect(secretGoneAt).toBe(jobGoneAt);
    await mirror.stop();
  });
});
