import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { FlagError, INSECURE_WARNING, logProcessSecurity, parseEtcdConnection, parseEtcdEndpoints, parseLogLevel, securityUsage, type ConnectionFlagValues } from './process-flags.js';

describe('process flags', () => {
  it('takes etcd endpoints as comma-separated http(s) URLs, defaulting to the local etcd', () => {
    expect(parseEtcdEndpoints(undefined)).toEqual({ endpoints: ['http://127.0.0.1:2379'] });
    expect(parseEtcdEndpoints('http://a:1, https://b:2')).toEqual({ endpoints: ['http://a:1', 'https://b:2'] });
  });

  it('says what is wrong with a bad endpoint list', () => {
    expect(parseEtcdEndpoints('')).toEqual({ problem: 'needs at least one endpoint' });
    expect(parseEtcdEndpoints('localhost:2379')).toEqual({ problem: '"localhost:2379" must be http:// or https://' });
    expect(parseEtcdEndpoints('not a url')).toEqual({ problem: '"not a url" is not a URL like http://127.0.0.1:2379' });
    expect(parseEtcdEndpoints('http://a:1/v3')).toEqual({ problem: '"http://a:1/v3" must be http(s)://host:port, without a path' });
    expect(parseEtcdEndpoints('http://a:1,,http://b:2')).toEqual({ problem: '"" is not a URL like http://127.0.0.1:2379' });
  });

  it('takes a pino log level, defaulting to info', () => {
    expect(parseLogLevel(undefined)).toEqual({ level: 'info' });
    expect(parseLogLevel('debug')).toEqual({ level: 'debug' });
    expect(parseLogLevel('loud')).toEqual({ problem: 'must be one of trace, debug, info, warn, error, fatal, silent, got "loud"' });
  });
});

describe('security flags', () => {
  const problem = (values: ConnectionFlagValues): { flag: string; message: string } => {
    try {
      parseEtcdConnection(values);
    } catch (error) {
      if (error instanceof FlagError) return { flag: error.flag, message: error.message };
      throw error;
    }
    throw new Error('accepted');
  };

  it('runs in plaintext only with --insecure, defaulting to the local http:// etcd', () => {
    expect(parseEtcdConnection({ insecure: true })).toEqual({ endpoints: ['http://127.0.0.1:2379'], security: { mode: 'insecure' } });
    expect(parseEtcdConnection({ insecure: true, etcd: 'http://a:1,http://b:2' }).endpoints).toEqual(['http://a:1', 'http://b:2']);
  });

  it('asks for the certificate files or --insecure when given neither', () => {
    const { flag, message } = problem({});
    expect(flag).toBe('--ca');
    expect(message).toContain('--insecure');
  });

  it('refuses --insecure with certificate files, and files without one another', () => {
    expect(problem({ insecure: true, ca: 'ca.crt' }).flag).toBe('--insecure');
    expect(problem({ ca: 'ca.crt', cert: 'a.crt' }).flag).toBe('--key');
    expect(problem({ cert: 'a.crt', key: 'a.key' }).flag).toBe('--ca');
    expect(problem({ ca: 'ca.crt', key: 'a.key' }).flag).toBe('--cert');
  });

  it('takes https:// endpoints only with the files and http:// only with --insecure', () => {
    expect(problem({ insecure: true, etcd: 'http://a:1,https://b:2' })).toEqual({ flag: '--etcd', message: expect.stringContaining('"https://b:2"') });
    expect(problem({ ca: 'ca.crt', cert: 'a.crt', key: 'a.key', etcd: 'http://a:1' })).toEqual({ flag: '--etcd', message: expect.stringContaining('plaintext') });
    expect(problem({ ca: 'ca.crt', cert: 'a.crt', key: 'a.key', etcd: 'nope' }).flag).toBe('--etcd');
  });

  it('names the flag of a certificate file that does not exist', () => {
    const { flag, message } = problem({ ca: '/nonexistent/ca.crt', cert: '/nonexistent/a.crt', key: '/nonexistent/a.key' });
    expect(flag).toBe('--ca');
    expect(message).toBe('--ca: /nonexistent/ca.crt: does not exist');
  });

  it('writes the usage lines at the column of the rest of the usage text', () => {
    const lines = securityUsage(24).split('\n').filter((line) => line.length > 0);
    expect(lines[0]).toMatch(/^ {2}--ca FILE {13}the cell's CA/);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
  });

  it('says at warn what --insecure allows, and the identity at info otherwise', () => {
    const lines: { level: number; msg: string; insecure?: boolean }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    logProcessSecurity(logger, { mode: 'insecure' });
    expect(lines).toEqual([expect.objectContaining({ level: 40, insecure: true, msg: INSECURE_WARNING })]);
    expect(INSECURE_WARNING).toContain('run any command on every machine');
  });
});
