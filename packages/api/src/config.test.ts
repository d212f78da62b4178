import { describe, expect, it } from 'vitest';
import { FlagError } from '@omega/cell-state';
import { parseApiArgs } from './config.js';

function flagOfArgs(argv: string[]): string {
  try {
    parseApiArgs(argv);
  } catch (error) {
    if (error instanceof FlagError) return error.flag;
    throw error;
  }
  throw new Error('the flags were accepted');
}

const flagOf = flagOfArgs;

describe('parseApiArgs', () => {
  it('defaults to the local etcd, the default cell and 127.0.0.1:7070', () => {
    expect(parseApiArgs(['--insecure'])).toEqual({
      help: false,
      etcdEndpoints: ['http://127.0.0.1:2379'],
      security: { mode: 'insecure' },
      cell: 'default',
      listen: '127.0.0.1:7070',
      etcdTimeoutMs: 5000,
      logLevel: 'info',
    });
  });

  it('needs the certificate files or --insecure, except for --help', () => {
    expect(flagOf([])).toBe('--ca');
    expect(flagOf(['--insecure', '--etcd', 'https://a:1'])).toBe('--etcd');
    expect(flagOf(['--ca', 'ca.crt'])).toBe('--cert');
    expect(parseApiArgs(['--help']).help).toBe(true);
  });

  it('takes several etcd endpoints, a cell, an address and a log level', () => {
    const config = parseApiArgs(['--insecure', '--etcd', 'http://a:1,http://b:2', '--cell', 'prod-1', '--listen', '0.0.0.0:0', '--log-level', 'debug', '--etcd-timeout-ms', '2500']);
    expect(config).toMatchObject({ etcdEndpoints: ['http://a:1', 'http://b:2'], cell: 'prod-1', listen: '0.0.0.0:0', logLevel: 'debug', etcdTimeoutMs: 2500 });
  });

  it('names the flag of every bad value', () => {
    const flagOf = (argv: string[]): string => flagOfArgs(['--insecure', ...argv]);
    expect(flagOf(['--etcd', 'not a url'])).toBe('--etcd');
    expect(flagOf(['--etcd', 'ftp://x'])).toBe('--etcd');
    expect(flagOf(['--cell', 'Bad_Cell'])).toBe('--cell');
    expect(flagOf(['--listen', '7070'])).toBe('--listen');
    expect(flagOf(['--listen', 'host:70000'])).toBe('--listen');
    expect(flagOf(['--log-level', 'loud'])).toBe('--log-level');
    for (const bad of ['99', '600001', '1.5', '5s', '-1']) expect(flagOf(['--etcd-timeout-ms', bad])).toBe('--etcd-timeout-ms');
    expect(flagOf(['--bogus'])).toBe('--bogus');
  });
});

describe('--ui-listen', () => {
  it('is off unless given, takes HOST:PORT (port 0 picks one), and names itself when it is bad', () => {
    expect(parseApiArgs(['--insecure']).uiListen).toBeUndefined();
    expect(parseApiArgs(['--insecure', '--ui-listen', '127.0.0.1:0']).uiListen).toBe('127.0.0.1:0');
    expect(flagOf(['--insecure', '--ui-listen', 'nowhere'])).toBe('--ui-listen');
    expect(flagOf(['--insecure', '--ui-listen', '127.0.0.1:70000'])).toBe('--ui-listen');
    expect(flagOf(['--insecure', '--listen', '127.0.0.1:7070', '--ui-listen', '127.0.0.1:7070'])).toBe('--ui-listen');
  });
});
