import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from './cell.js';
import { InvalidRecordError } from './codec.js';
import { jobSpecProblems, specRequirements } from './job-spec.js';
import { MemoryKv } from './memory-kv.js';
import { freshCellName, jobSpec } from './testing/index.js';
import { jobId } from './types.js';

let kv: MemoryKv | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
});

describe('job spec validation of the command', () => {
  it('refuses an empty command, naming the field with the prefix the caller gives', () => {
    const spec = jobSpec('empty').command().build();
    expect(jobSpecProblems(spec)).toEqual([{ field: 'task.command', problem: 'must not be empty' }]);
    expect(jobSpecProblems(spec, 'job.')).toEqual([{ field: 'job.task.command', problem: 'must not be empty' }]);
  });

  it('refuses an empty first word, and accepts empty later arguments', () => {
    expect(jobSpecProblems(jobSpec('blank').command('', 'x').build(), 'job.')).toEqual([{ field: 'job.task.command[0]', problem: 'must not be empty' }]);
    expect(jobSpecProblems(jobSpec('ok').command('printf', '').build())).toEqual([]);
  });

  it('makes Cell.createJob refuse such a job and write nothing', async () => {
    kv = new MemoryKv();
    const cell = new Cell(kv, freshCellName());
    const id = jobId('empty-command');
    const refusal = await cell.createJob({ id, spec: jobSpec('empty').command().build() }).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(InvalidRecordError);
    expect(refusal).toMatchObject({ field: 'job.task.command' });
    expect((refusal as InvalidRecordError).message).toMatch(/job\.task\.command: must not be empty$/);
    // Nothing at all under the cell's prefix: no job, no request record.
    expect((await kv.range({ key: cell.keys.root, prefix: true })).kvs).toEqual([]);
  });
});

describe('a job spec network', () => {
  const base = jobSpec('net').build();
  const withNetwork = (network: string) => ({ ...base, task: { ...base.task, network: network as 'host' } });
  it('is host or none, and anything else names the field', () => {
    expect(jobSpecProblems(withNetwork('host'))).toEqual([]);
    expect(jobSpecProblems(withNetwork('none'))).toEqual([]);
    expect(jobSpecProblems(withNetwork('bridge'))).toEqual([{ field: 'task.network', problem: 'must be one of host, none' }]);
  });
  it('none requires the network-none attribute of a machine, host requires nothing', () => {
    expect(specRequirements(base)).toEqual([]);
    expect(specRequirements(withNetwork('host'))).toEqual([]);
    expect(specRequirements(withNetwork('none'))).toEqual([{ name: 'attribute omega.isolation.network-none equals true', attribute: 'omega.isolation.network-none', value: 'true' }]);
  });
});

describe('a job spec user', () => {
  const base = jobSpec('as-user').build();
  const withUser = (user: string) => ({ ...base, task: { ...base.task, user } });
  it('is a POSIX user name, and root, an empty name or anything else names the field', () => {
    for (const ok of ['daemon', '_svc', 'build-01', 'a'.repeat(32)]) expect(jobSpecProblems(withUser(ok))).toEqual([]);
    for (const bad of ['', 'Root', '1abc', 'a b', 'a'.repeat(33), '../etc', 'x:y']) {
      expect(jobSpecProblems(withUser(bad))).toEqual([{ field: 'task.user', problem: expect.stringContaining('must be a user name') }]);
    }
    expect(jobSpecProblems(withUser('root'))).toEqual([{ field: 'task.user', problem: 'must not be root' }]);
    expect(jobSpecProblems({ ...base, task: { ...base.task, user: 7 as unknown as string } })).toEqual([{ field: 'task.user', problem: expect.stringContaining('must be a user name') }]);
  });
  it('requires the machine attribute omega.users.<name>, beside network: none when both are asked', () => {
    const userRequirement = { name: 'attribute omega.users.daemon equals true', attribute: 'omega.users.daemon', value: 'true' };
    expect(specRequirements(withUser('daemon'))).toEqual([userRequirement]);
    expect(specRequirements({ ...base, task: { ...base.task, user: 'daemon', network: 'none' } })).toEqual([
      { name: 'attribute omega.isolation.network-none equals true', attribute: 'omega.isolation.network-none', value: 'true' },
      userRequirement,
    ]);
  });
});

describe('job spec validation of the log limit', () => {
  it("accepts none, 0 and at least 4096 bytes, and names the field otherwise", () => {
    const base = jobSpec('logs').build();
    const withLimit = (logLimitBytes: number) => ({ ...base, task: { ...base.task, logLimitBytes } });
    expect(jobSpecProblems(base)).toEqual([]);
    expect(jobSpecProblems(withLimit(0))).toEqual([]);
    expect(jobSpecProblems(withLimit(4096))).toEqual([]);
    expect(jobSpecProblems(withLimit(100))).toEqual([{ field: 'task.logLimitBytes', problem: "must be 0 (the agent's cap) or an integer of at least 4096 bytes" }]);
    expect(jobSpecProblems(withLimit(4096.5))).toHaveLength(1);
  });
});

describe('job spec validation of the disk limit', () => {
  it('accepts none, 0 and at least 1 MiB, and names the field otherwise', () => {
    const base = jobSpec('disk').build();
    const withLimit = (diskLimitBytes: number) => ({ ...base, task: { ...base.task, diskLimitBytes } });
    expect(jobSpecProblems(withLimit(0))).toEqual([]);
    expect(jobSpecProblems(withLimit(1024 * 1024))).toEqual([]);
    expect(jobSpecProblems(withLimit(4096))).toEqual([{ field: 'task.diskLimitBytes', problem: "must be 0 (the agent's limit) or an integer of at least 1048576 bytes" }]);
    expect(jobSpecProblems(withLimit(-1))).toEqual([{ field: 'task.diskLimitBytes', problem: expect.stringMatching(/^must be 0/) }]);
    expect(jobSpecProblems(withLimit(2 ** 20 + 0.5))).toHaveLength(1);
  });
});
