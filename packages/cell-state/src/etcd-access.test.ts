import { describe, expect, it } from 'vitest';
import { InvalidRecordError } from './codec.js';
import { agentUser, cellAccessRoles } from './etcd-access.js';

describe('the etcd roles of a cell', () => {
  it('give each component only its prefixes, and each agent its own machine keys', () => {
    const roles = Object.fromEntries(cellAccessRoles('c1', { agents: ['m1', 'm1'], hollow: true }).map((role) => [role.name, role.grants]));
    expect(Object.keys(roles)).toEqual(['omega-api', 'omega-scheduler', 'omega-agent-m1', 'omega-hollow']);
    expect(roles['omega-api']).toEqual([
      { permission: 'readwrite', key: '/omega/c1/', prefix: true },
      { permission: 'readwrite', key: '/omega-auth/c1/', prefix: true },
      { permission: 'write', key: '/omega-secrets/c1/', prefix: true },
    ]);
    expect(roles['omega-scheduler']).toEqual([
      { permission: 'readwrite', key: '/omega/c1/', prefix: true },
      { permission: 'write', key: '/omega-secrets/c1/', prefix: true },
    ]);
    expect(roles['omega-agent-m1']).toEqual([
      { permission: 'read', key: '/omega/c1/', prefix: true },
      { permission: 'readwrite', key: '/omega/c1/machines/m1', prefix: false },
      { permission: 'readwrite', key: '/omega/c1/alive/m1', prefix: false },
      { permission: 'readwrite', key: '/omega/c1/tasks/', prefix: true },
      { permission: 'read', key: '/omega-secrets/c1/', prefix: true },
    ]);
    expect(roles['omega-hollow']).toContainEqual({ permission: 'readwrite', key: '/omega/c1/machines/', prefix: true });
  });

  it('narrow the hollow agent to its prefix when given one', () => {
    const hollow = cellAccessRoles('c1', { agents: [], hollow: true, hollowPrefix: 'sim' }).find((role) => role.name === 'omega-hollow');
    expect(hollow?.grants).toContainEqual({ permission: 'readwrite', key: '/omega/c1/machines/sim-', prefix: true });
    expect(hollow?.grants).toContainEqual({ permission: 'readwrite', key: '/omega/c1/alive/sim-', prefix: true });
  });

  it('refuse a bad cell, machine id or hollow prefix, naming it', () => {
    expect(() => cellAccessRoles('Bad', { agents: [] })).toThrow(InvalidRecordError);
    expect(() => cellAccessRoles('c1', { agents: ['../m'] })).toThrow(/machineId/);
    expect(() => cellAccessRoles('c1', { agents: [], hollow: true, hollowPrefix: 'a/b' })).toThrow(/hollowPrefix/);
    expect(agentUser('m-7')).toBe('omega-agent-m-7');
  });
});
