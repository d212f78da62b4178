import { describe, expect, it } from 'vitest';
import { CliError } from '../errors.js';
import { devOptionsFrom, hostShare } from './dev-options.js';

const GiB = 1024 ** 3;

describe('hostShare', () => {
  it('splits the host into equal machines, leaving memory to the host', () => {
    expect(hostShare(2, { cpuMillis: 4000, memoryBytes: 16 * GiB })).toEqual({ cpuMillis: 2000, memoryBytes: 7.5 * GiB });
    expect(hostShare(3, { cpuMillis: 2000, memoryBytes: 4 * GiB }).cpuMillis).toBe(666);
  });
});

describe('devOptionsFrom', () => {
  it('defaults to two machines, two batch and one service scheduler, on ./.omega', () => {
    const options = devOptionsFrom({}, false, true);
    expect(options).toMatchObject({ machines: 2, hollow: 0, batchSchedulers: 2, serviceSchedulers: 1, cell: 'default', listen: '127.0.0.1:7070', enforcement: true, demo: false, insecure: false });
    expect(options.dataDir.endsWith('/.omega')).toBe(true);
  });

  it('takes machine capacity from --machine-cpu and --machine-memory', () => {
    expect(devOptionsFrom({ machineCpu: '500m', machineMemory: '2Gi' }, false, true)).toMatchObject({ machineCpuMillis: 500, machineMemoryBytes: 2 * GiB, capacityGiven: true });
  });

  it('runs tasks without limits when not root, saying it was not asked for', () => {
    expect(devOptionsFrom({}, false, false)).toMatchObject({ enforcement: false, enforcementAutoOff: true });
    expect(devOptionsFrom({ enforcement: false }, true, true)).toMatchObject({ enforcement: false, enforcementAutoOff: false });
  });

  it('names the flag of a bad value', () => {
    const flag = (options: Record<string, unknown>): string => {
      try {
        devOptionsFrom(options, false, true);
      } catch (error) {
        if (error instanceof CliError) return error.message.split(':')[0] ?? '';
      }
      return 'accepted';
    };
    expect(flag({ etcd: 'nope' })).toBe('--etcd');
    expect(flag({ machineCpu: '0' })).toBe('--machine-cpu');
    expect(flag({ logLevel: 'chatty' })).toBe('--log-level');
    expect(flag({ machines: 1000 })).toBe('--machines');
  });

  it('takes an external etcd only for a plaintext cell, and only over http', () => {
    expect(() => devOptionsFrom({ etcd: 'http://127.0.0.1:2379' }, false, true)).toThrow(/^--etcd: an etcd that omega dev does not start can only be used with --insecure/);
    expect(() => devOptionsFrom({ etcd: 'https://127.0.0.1:2379', insecure: true }, false, true)).toThrow(/^--etcd: with --insecure the etcd must be plaintext http:\/\//);
    expect(devOptionsFrom({ etcd: 'http://127.0.0.1:2379', insecure: true }, false, true)).toMatchObject({ etcd: 'http://127.0.0.1:2379', insecure: true });
  });
});
