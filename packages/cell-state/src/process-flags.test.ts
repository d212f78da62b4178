import { describe, expect, it } from 'vitest';
import { parseEtcdEndpoints, parseLogLevel } from './process-flags.js';

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
