import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobFileError, parseJobDocument } from './job-file.js';
import { resolveSecretEnv } from './secret-env.js';

const base = 'name: hello\nkind: batch\ncommand: [env]\ncpu: 100m\nmemory: 64Mi\n';

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof JobFileError) return error.problems;
    throw error;
  }
  throw new Error('the secrets were accepted');
}

describe('resolveSecretEnv', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'omega-secret-env-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads literal values, the submitter environment and files relative to the job file, without one trailing newline', () => {
    writeFileSync(join(dir, 'key.pem'), 'line1\nline2\n');
    writeFileSync(join(dir, 'crlf'), 'value\r\n');
    const parsed = parseJobDocument(`${base}secretEnv:\n  A: literal\n  B: {fromEnv: PGPASS}\n  C: {fromFile: key.pem}\n  D: {fromFile: ./crlf}\n`);
    const values = resolveSecretEnv(parsed.secretEnv, parsed.spec, { env: { PGPASS: 's3cret' }, baseDir: dir }, 'job.yaml');
    expect(values).toEqual({ A: 'literal', B: 's3cret', C: 'line1\nline2', D: 'value' });
  });

  it('names an unset variable and a missing file by their field, and reads nothing else into the message', () => {
    const parsed = parseJobFileWith(`secretEnv:\n  B: {fromEnv: NOT_SET}\n  C: {fromFile: missing.txt}\n  D: hunter2\n`);
    const problems = problemsOf(() => resolveSecretEnv(parsed.secretEnv, parsed.spec, { env: {}, baseDir: dir }, 'job.yaml'));
    expect(problems).toEqual(['secretEnv.B.fromEnv: $NOT_SET is not set', `secretEnv.C.fromFile: file not found (${join(dir, 'missing.txt')})`]);
  });

  it('refuses a value with a NUL byte without quoting it', () => {
    writeFileSync(join(dir, 'bin'), Buffer.from([104, 0, 105]));
    const parsed = parseJobFileWith('secretEnv: {BIN: {fromFile: bin}}\n');
    const problems = problemsOf(() => resolveSecretEnv(parsed.secretEnv, parsed.spec, { env: {}, baseDir: dir }, 'job.yaml'));
    expect(problems).toEqual(['secretEnv.BIN: value must be a string without NUL bytes']);
  });

  it('prefixes the message with the job file name', () => {
    const parsed = parseJobFileWith('secretEnv: {B: {fromEnv: NOT_SET}}\n');
    expect(() => resolveSecretEnv(parsed.secretEnv, parsed.spec, { env: {}, baseDir: dir }, 'jobs/a.yaml')).toThrow(/^jobs\/a\.yaml: secretEnv\.B\.fromEnv/);
  });
});

function parseJobFileWith(extra: string): ReturnType<typeof parseJobDocument> {
  return parseJobDocument(`${base}${extra}`);
}
