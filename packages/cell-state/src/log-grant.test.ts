import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkLogGrant, LOG_GRANT_MAX_TTL_MS, LOG_GRANT_TTL_MS, mintLogGrant, type LogGrantScope } from './log-grant.js';

const api = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const scope: LogGrantScope = { jobId: 'web-1', index: 2, attempt: 3, stream: 'stderr', machineId: 'm1' };
const now = 1_700_000_000_000;

describe('log grants', () => {
  it('open exactly the log they were minted for, until they expire', () => {
    const grant = mintLogGrant(scope, api.privateKey, now);
    expect(checkLogGrant(grant, api.publicKey, scope, now)).toBeUndefined();
    expect(checkLogGrant(grant, api.publicKey, scope, now + LOG_GRANT_TTL_MS - 1)).toBeUndefined();
    expect(checkLogGrant(grant, api.publicKey, scope, now + LOG_GRANT_TTL_MS)).toEqual({ kind: 'unauthenticated', reason: 'log grant expired' });
  });

  it('are forbidden for any other job, index, attempt, stream or machine', () => {
    const grant = mintLogGrant(scope, api.privateKey, now);
    for (const wrong of [{ jobId: 'web-2' }, { index: 0 }, { attempt: 1 }, { stream: 'stdout' as const }, { machineId: 'm2' }]) {
      expect(checkLogGrant(grant, api.publicKey, { ...scope, ...wrong }, now)?.kind, JSON.stringify(wrong)).toBe('forbidden');
    }
  });

  it('are refused when absent, malformed, tampered with, signed by another key or valid for too long', () => {
    const grant = mintLogGrant(scope, api.privateKey, now);
    const [prefix, body, signature] = grant.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), job: 'other' })).toString('base64url');
    for (const bad of [undefined, '', 'x', `${prefix}.${forged}.${signature}`, `olg2.${body}.${signature}`, mintLogGrant(scope, other.privateKey, now), mintLogGrant(scope, api.privateKey, now, LOG_GRANT_MAX_TTL_MS + 1)]) {
      expect(checkLogGrant(bad, api.publicKey, scope, now)?.kind, String(bad)).toBe('unauthenticated');
    }
  });
});
