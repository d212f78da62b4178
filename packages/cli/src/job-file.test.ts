import { describe, expect, it } from 'vitest';
import { JobFileError, parseDuration, parseJobDocument, parseJobFile } from './job-file.js';

function problemsOf(text: string): readonly string[] {
  try {
    parseJobFile(text, 'job.yaml');
  } catch (error) {
    if (error instanceof JobFileError) return error.problems;
    throw error;
  }
  throw new Error('the job file was accepted');
}

describe('parseJobFile', () => {
  it('reads the friendly YAML form with quantities, durations and constraints', () => {
    const spec = parseJobFile(`
name: web
kind: service
instances: 3
priority: 100
commitMode: all-or-nothing
command: [sh, -c, 'echo hi']
env: {GREETING: hello, PORT: 8080}
cpu: 0.5
memory: 64Mi
duration: 30s
pidsLimit: 64
constraints:
  - {attribute: zone, in: [a, b]}
  - {attribute: rack, notIn: r9}
  - {attribute: disk, equals: ssd}
  - {spread: rack}
  - {maxPerMachine: 1}
restart: {policy: on-failure, maxRestarts: 3, initialBackoff: 500ms, maxBackoff: 1m}
`);
    expect(spec).toEqual({
      name: 'web',
      namespace: 'default',
      kind: 'service',
      priority: 100,
      instances: 3,
      commitMode: 'all-or-nothing',
      task: { command: ['sh', '-c', 'echo hi'], env: { GREETING: 'hello', PORT: '8080' }, resources: { cpuMillis: 500, memoryBytes: 64 * 1024 * 1024 }, runDurationMs: 30_000, hollowFail: false, pidsLimit: 64 },
      constraints: [
        { attribute: 'zone', operator: 'in', values: ['a', 'b'], limit: 0 },
        { attribute: 'rack', operator: 'not-in', values: ['r9'], limit: 0 },
        { attribute: 'disk', operator: 'equals', values: ['ssd'], limit: 0 },
        { attribute: 'rack', operator: 'spread', values: [], limit: 0 },
        { attribute: '', operator: 'max-per-machine', values: [], limit: 1 },
      ],
      restartPolicy: { kind: 'on-failure', maxRestarts: 3, initialBackoffMs: 500, maxBackoffMs: 60_000 },
    });
  });

  it('reads JSON, millicores and byte counts, and defaults instances to 1', () => {
    const spec = parseJobFile('{"name": "hello", "kind": "batch", "command": ["true"], "cpu": "250m", "memory": 1048576}');
    expect(spec).toMatchObject({ instances: 1, commitMode: 'default', task: { resources: { cpuMillis: 250, memoryBytes: 1048576 } }, restartPolicy: { kind: 'default' } });
  });

  it('turns a command string into a shell command line', () => {
    expect(parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: echo $HOME').task.command).toEqual(['sh', '-c', 'echo $HOME']);
  });

  it('names every bad field by the file own names', () => {
    const problems = problemsOf('name: Bad_Name\nkind: cron\ncommand: [true]\ncpu: lots\nmemory: 0\ninstances: 0\n');
    expect(problems).toEqual([
      'kind: must be batch or service, not "cron"',
      'cpu: "lots" is not a quantity like 0.5, 500m or 2',
      expect.stringMatching(/^name: must be a DNS label/),
      'instances: must be an integer >= 1',
      'memory: must be > 0',
    ]);
  });

  it('reads logLimit as a quantity into logLimitBytes and names it when it is too small or not a quantity', () => {
    expect(parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\nlogLimit: 1Mi').task.logLimitBytes).toBe(1024 * 1024);
    expect('logLimitBytes' in parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]').task).toBe(false);
    expect(problemsOf('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\nlogLimit: 100')).toEqual([expect.stringMatching(/^logLimit: must be 0/)]);
    expect(problemsOf('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\nlogLimit: lots')).toEqual([expect.stringMatching(/^logLimit: /)]);
  });

  it('reads diskLimit as a quantity into diskLimitBytes and names it when it is too small or not a quantity', () => {
    expect(parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\ndiskLimit: 2Gi').task.diskLimitBytes).toBe(2 * 1024 ** 3);
    expect('diskLimitBytes' in parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]').task).toBe(false);
    expect(problemsOf('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\ndiskLimit: 4Ki')).toEqual([expect.stringMatching(/^diskLimit: must be 0/)]);
    expect(problemsOf('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\ndiskLimit: [1]')).toEqual([expect.stringMatching(/^diskLimit: must be a quantity/)]);
  });

  it('reads user: NAME into the task spec and names user when it is root, not a name or not a string', () => {
    const file = 'name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\n';
    expect(parseJobFile(`${file}user: daemon`).task.user).toBe('daemon');
    expect('user' in parseJobFile(file).task).toBe(false);
    expect(problemsOf(`${file}user: root`)).toEqual(['user: must not be root']);
    expect(problemsOf(`${file}user: Bad Name`)).toEqual([expect.stringMatching(/^user: must be a user name/)]);
    expect(problemsOf(`${file}user: true`)).toEqual(['user: must be a user name (a string)']);
  });

  it('reads network: none or host into the task spec and names network when it is anything else', () => {
    expect(parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\nnetwork: none').task.network).toBe('none');
    expect(parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\nnetwork: host').task.network).toBe('host');
    expect('network' in parseJobFile('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]').task).toBe(false);
    expect(problemsOf('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\ncommand: [true]\nnetwork: bridge')).toEqual(['network: must be one of host, none']);
  });

  it('requires kind, cpu and memory', () => {
    expect(problemsOf('name: a\ncommand: [true]\n')).toEqual(['kind: is required: batch or service', 'cpu: is required (e.g. 500m or 0.5)', 'memory: is required (e.g. 64Mi)']);
  });

  it('requires a command whose first word is not empty', () => {
    const base = 'name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\n';
    expect(problemsOf(base)).toEqual(['command: is required: a list of strings ([sh, -c, "echo hi"]) or one shell command line']);
    expect(problemsOf(`${base}command: []\n`)).toEqual(['command: must not be empty']);
    expect(problemsOf(`${base}command: ['', x]\n`)).toEqual(['command[0]: must not be empty']);
  });

  it('refuses unknown fields and suggests the near one', () => {
    expect(problemsOf('name: a\nkind: batch\ncpus: 1\nmemory: 1Mi\n')).toContain('cpus: is not a known field (did you mean cpu?)');
    expect(problemsOf('name: a\nkind: batch\ncpu: 1\nmemory: 1Mi\nconstraints: [{attribute: zone, notin: [a]}]\n')).toContain('constraints[0].notin: is not a known field (did you mean notIn?)');
  });

  it('names constraint and restart problems with their place in the file', () => {
    const problems = problemsOf(`name: a
kind: batch
command: [true]
cpu: 1
memory: 1Mi
constraints:
  - {attribute: zone, in: []}
  - {attribute: zone, in: [a], equals: b}
  - {maxPerMachine: 0}
restart: {policy: sometimes, initialBackoff: soon}
`);
    expect(problems).toEqual([
      'constraints[1]: needs exactly one of equals, in, notIn, spread, maxPerMachine',
      'constraints[2].maxPerMachine: must be an integer >= 1',
      'restart.policy: must be never, on-failure or always',
      'restart.initialBackoff: "soon" is not a duration like 30s, 500ms, 2m, 1h or 30d',
      'constraints[0]: must not be empty for in',
    ]);
  });

  it('names environment variables that are not valid names', () => {
    expect(problemsOf('name: a\nkind: batch\ncommand: [true]\ncpu: 1\nmemory: 1Mi\nenv: {"1X": y}\n')).toEqual([expect.stringMatching(/^env\.1X: name must be/)]);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problemsOf('name: a\nkind: [batch\n')[0]).toMatch(/^line \d+, column \d+: /);
    expect(problemsOf('- just\n- a list\n')).toEqual(['must be a mapping of fields (name, kind, command, cpu, memory, ...)']);
  });

  it('prefixes the message with the file name', () => {
    expect(() => parseJobFile('name: a\n', 'jobs/a.yaml')).toThrow(/^jobs\/a\.yaml: kind: is required/);
  });
});

describe('a job file retention', () => {
  it('reads an update block with durations, and leaves it out when not given', () => {
    const base = 'name: web\nkind: service\ncommand: [sleep, "100"]\ncpu: 100m\nmemory: 64Mi\n';
    expect(parseJobFile(`${base}update: {maxUnavailable: 2, minHealthyTime: 30s, healthyDeadline: 2m, autoRollback: true}\n`, 'job.yaml').update).toEqual({
      maxUnavailable: 2,
      maxSurge: 0,
      minHealthyTimeMs: 30_000,
      healthyDeadlineMs: 120_000,
      autoRollback: true,
    });
    expect(parseJobFile(base, 'job.yaml').update).toBeUndefined();
  });

  it('names a bad update block by the file fields: surge, a deadline shorter than the healthy time, unknown keys', () => {
    const base = 'name: web\nkind: service\ncommand: [sleep, "100"]\ncpu: 100m\nmemory: 64Mi\n';
    expect(problemsOf(`${base}update: {maxSurge: 1}\n`)).toEqual([expect.stringMatching(/^update\.maxSurge: must be 0/)]);
    expect(problemsOf(`${base}update: {minHealthyTime: 5m, healthyDeadline: 1m}\n`)).toEqual([expect.stringMatching(/^update\.healthyDeadline: must be longer than minHealthyTime/)]);
    expect(problemsOf(`${base}update: {maxUnavailble: 1}\n`)[0]).toMatch(/^update\.maxUnavailble: is not a known/);
    expect(problemsOf(`${base}update: 3\n`)).toEqual([expect.stringMatching(/^update: must be a mapping/)]);
  });

  it('reads retention as a duration, and leaves it out when not given', () => {
    const base = 'name: hello\nkind: batch\ncommand: [true]\ncpu: 100m\nmemory: 64Mi\n';
    expect(parseJobFile(`${base}retention: 1h\n`).retentionMs).toBe(3_600_000);
    expect(parseJobFile(base).retentionMs).toBeUndefined();
  });

  it('names a bad or too long retention by the file field', () => {
    const base = 'name: hello\nkind: batch\ncommand: [true]\ncpu: 100m\nmemory: 64Mi\n';
    expect(problemsOf(`${base}retention: soon\n`)).toEqual([expect.stringMatching(/^retention: "soon" is not a duration/)]);
    expect(problemsOf(`${base}retention: 9000h\n`)).toEqual([expect.stringMatching(/^retention: must be an integer number of ms/)]);
  });
});

describe('parseDuration', () => {
  it('reads milliseconds, seconds, minutes, hours and days', () => {
    expect([parseDuration('250ms'), parseDuration('30s'), parseDuration('1.5m'), parseDuration('2h'), parseDuration('30d'), parseDuration(0)]).toEqual([250, 30_000, 90_000, 7_200_000, 30 * 86_400_000, 0]);
  });

  it('refuses a bare number other than 0, which would be ambiguous', () => {
    expect(() => parseDuration(30)).toThrow(/not a duration/);
  });
});

describe('a job file namespace and secret env', () => {
  const base = 'name: hello\nkind: batch\ncommand: [env]\ncpu: 100m\nmemory: 64Mi\n';

  it('reads namespace:, and puts a job without one in default', () => {
    expect(parseJobDocument(`${base}namespace: team-a\n`)).toMatchObject({ spec: { namespace: 'team-a' }, namespaceGiven: true });
    expect(parseJobDocument(base)).toMatchObject({ spec: { namespace: 'default' }, namespaceGiven: false });
  });

  it('names a namespace that is not a DNS label', () => {
    expect(problemsOf(`${base}namespace: Team_A\n`)).toEqual([expect.stringMatching(/^namespace: must be a DNS label/)]);
  });

  it('reads secretEnv values and where the others come from, and keeps only the sorted names in the spec', () => {
    const parsed = parseJobDocument(`${base}secretEnv:\n  Z_LITERAL: abc\n  DB_PASSWORD: {fromEnv: PGPASS}\n  TLS_KEY: {fromFile: ./key.pem}\n  PORT: 5432\n`);
    expect(parsed.secretEnv).toEqual({
      Z_LITERAL: { kind: 'value', value: 'abc' },
      DB_PASSWORD: { kind: 'env', name: 'PGPASS' },
      TLS_KEY: { kind: 'file', path: './key.pem' },
      PORT: { kind: 'value', value: '5432' },
    });
    expect(parsed.spec.task.secretEnvNames).toEqual(['DB_PASSWORD', 'PORT', 'TLS_KEY', 'Z_LITERAL']);
    expect(parsed.spec.task.env).toEqual({});
    expect(parseJobDocument(base).spec.task.secretEnvNames).toBeUndefined();
  });

  it('names every bad secretEnv entry by its field, without quoting a value', () => {
    const problems = problemsOf(`${base}env: {SHARED: x}\nsecretEnv:\n  SHARED: hunter2\n  OMEGA_X: hunter2\n  1BAD: hunter2\n  A: {fromEnv: X, fromFile: y}\n  B: {fromEnvv: X}\n  C: [hunter2]\n  D: {fromFile: ''}\n`);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^secretEnv\.SHARED: is also in task\.env/),
        expect.stringMatching(/^secretEnv\.OMEGA_X: name must not start with OMEGA_/),
        expect.stringMatching(/^secretEnv\.1BAD: name must be letters/),
        'secretEnv.A: needs exactly one of fromEnv, fromFile',
        'secretEnv.B.fromEnvv: is not a known field (did you mean fromEnv?)',
        'secretEnv.C: must be a value, {fromEnv: NAME} or {fromFile: path}',
        'secretEnv.D.fromFile: must be a file path',
      ]),
    );
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problemsOf(`${base}secretEnv: [a]\n`)).toEqual(['secretEnv: must be a mapping of NAME: value, {fromEnv: NAME} or {fromFile: path}']);
  });
});
