import { describe, expect, it } from 'vitest';
import { loadApiDefinition } from '../proto.js';
import { allows, decide, decideRole, METHOD_ACTIONS, RULES, type Action, type Caller } from './policy.js';

const caller = (name: string, role: Caller['role'], namespaces: string[]): Caller => ({ name, role, namespaces, expiresAtMs: 0, createdAtMs: 0, via: 'token' });

const reader = caller('ci', 'read', ['a']);
const submitter = caller('deploy', 'submit', ['a', 'c']);
const everywhere = caller('ops', 'submit', ['*']);
const admin = caller('root', 'admin', ['*']);

describe('the policy', () => {
  it('lets each role do what its table row says, in its namespaces only', () => {
    const table: [Action, Caller, string | undefined, boolean][] = [
      ['read-jobs', reader, 'a', true],
      ['read-jobs', reader, 'b', false],
      ['submit-jobs', reader, 'a', false],
      ['kill-jobs', reader, 'a', false],
      ['submit-jobs', submitter, 'c', true],
      ['kill-jobs', submitter, 'a', true],
      ['submit-jobs', submitter, 'b', false],
      ['submit-jobs', everywhere, 'anything', true],
      ['read-cell', reader, undefined, true],
      ['whoami', reader, undefined, true],
      ['read-namespaces', reader, 'a', true],
      ['read-namespaces', reader, 'b', false],
      ['manage-tokens', everywhere, undefined, false],
      ['manage-namespaces', submitter, undefined, false],
      ['manage-tokens', admin, undefined, true],
      ['submit-jobs', admin, 'b', true],
      // Admin tokens hold every namespace whatever their record lists.
      ['read-jobs', caller('odd-admin', 'admin', ['a']), 'b', true],
    ];
    for (const [action, who, namespace, allowed] of table) {
      expect(allows(who, action, namespace), `${who.name} ${action} ${namespace ?? ''}`).toBe(allowed);
    }
  });

  it('names what was missing: the role, or the namespace', () => {
    expect(decide(reader, 'submit-jobs', 'a')).toEqual({ allowed: false, message: 'token "ci" (role read) may not submit jobs in namespace "a": that needs role submit' });
    expect(decide(reader, 'read-jobs', 'b')).toEqual({ allowed: false, message: 'token "ci" (namespaces "a") may not read jobs in namespace "b": it is not one of its namespaces' });
    expect(decide(submitter, 'manage-tokens')).toEqual({ allowed: false, message: 'token "deploy" (role submit) may not manage tokens: that needs role admin' });
    expect(decideRole(reader, 'kill-jobs')).toEqual({ allowed: false, message: 'token "ci" (role read) may not kill jobs: that needs role submit' });
  });

  it('refuses to decide a namespaced action without its namespace', () => {
    expect(() => decide(admin, 'read-jobs')).toThrow(/name the namespace/);
  });

  it('has one rule for every method of every service in api.proto, and no rule for a method that does not exist', () => {
    const { packageDefinition } = loadApiDefinition();
    const methods = Object.entries(packageDefinition)
      .filter(([, definition]) => !('format' in definition) && Object.values(definition).some((m) => typeof m === 'object' && m !== null && 'path' in m))
      .flatMap(([, definition]) => Object.values(definition as Record<string, { path: string }>).map((m) => m.path.slice(1)));
    expect(methods.length).toBeGreaterThan(10);
    expect(Object.keys(METHOD_ACTIONS).sort()).toEqual(methods.sort());
    for (const action of Object.values(METHOD_ACTIONS)) expect(RULES[action]).toBeDefined();
  });
});
