import { describe, expect, it } from 'vitest';
import { InvalidRecordError } from './codec.js';
import { CellKeys } from './keys.js';
import { MemoryKv } from './memory-kv.js';
import { createNamespace } from './namespace-records.js';
import { replayingKv } from './testing/replaying-kv.js';
import { createToken, formatToken, getToken, listTokens, parseToken, revokeToken, tokenExpired, tokenMatches, type CreateTokenResult } from './token-records.js';

const keys = new CellKeys('test');

function created(result: CreateTokenResult): Extract<CreateTokenResult, { outcome: 'created' }> {
  if (result.outcome !== 'created') throw new Error(`expected a created token, got ${result.outcome}`);
  return result;
}

async function keysUnder(kv: MemoryKv, prefix: string): Promise<string[]> {
  return (await kv.range({ key: prefix, prefix: true })).kvs.map((s) => s.key);
}

async function withNamespace(kv: MemoryKv, name: string): Promise<void> {
  await createNamespace(kv, keys, name, 0);
}

describe('createToken', () => {
  it('stores only the hash of the secret and hands back a token that parses and matches it', async () => {
    const kv = new MemoryKv();
    const result = created(await createToken(kv, keys, { name: 'ci', role: 'submit', namespaces: ['default'] }, { nowMs: 1_000 }));
    expect(result.token).toMatch(/^omg1\.ci\.[A-Za-z0-9_-]{43}$/);
    const parsed = parseToken(result.token);
    if ('problem' in parsed) throw new Error(parsed.problem);
    expect(parsed.name).toBe('ci');
    const stored = await getToken(kv, keys, 'ci');
    expect(stored).toMatchObject({ name: 'ci', role: 'submit', namespaces: ['default'], expiresAtMs: 0, createdAtMs: 1_000 });
    expect(stored !== undefined && tokenMatches(stored, parsed.secret)).toBe(true);
    // Neither the secret's text nor its bytes are in the store.
    const raw = Buffer.from((await kv.range({ key: keys.token('ci') })).kvs[0]?.value ?? []);
    expect(raw.includes(Buffer.from(parsed.secret))).toBe(false);
    expect(raw.toString('latin1')).not.toContain(result.token.split('.')[2]);
  });

  it('answers exists for a taken name and keeps the first token', async () => {
    const kv = new MemoryKv();
    const first = created(await createToken(kv, keys, { name: 'ci', role: 'read', namespaces: ['default'] }));
    expect(await createToken(kv, keys, { name: 'ci', role: 'admin', namespaces: [] })).toEqual({ outcome: 'exists', name: 'ci' });
    const parsed = parseToken(first.token);
    if ('problem' in parsed) throw new Error(parsed.problem);
    const stored = await getToken(kv, keys, 'ci');
    expect(stored?.role).toBe('read');
    expect(stored !== undefined && tokenMatches(stored, parsed.secret)).toBe(true);
  });

  it('answers created, with a working token, when its write was applied and resent', async () => {
    const inner = new MemoryKv();
    const { kv, counters } = replayingKv(inner);
    const result = created(await createToken(kv, keys, { name: 'ci', role: 'read', namespaces: ['default'] }));
    expect(counters.replayed).toBe(1);
    const parsed = parseToken(result.token);
    if ('problem' in parsed) throw new Error(parsed.problem);
    const stored = await getToken(inner, keys, 'ci');
    expect(stored !== undefined && tokenMatches(stored, parsed.secret)).toBe(true);
    expect(await keysUnder(inner, keys.tokensPrefix)).toEqual([keys.token('ci')]);
  });

  it('sets the expiry from the ttl, and gives admin tokens every namespace', async () => {
    const kv = new MemoryKv();
    const short = created(await createToken(kv, keys, { name: 'short', role: 'read', namespaces: ['default'], ttlMs: 500 }, { nowMs: 10_000 }));
    expect(short.record.expiresAtMs).toBe(10_500);
    expect(tokenExpired(short.record, 10_499)).toBe(false);
    expect(tokenExpired(short.record, 10_500)).toBe(true);
    const admin = created(await createToken(kv, keys, { name: 'root', role: 'admin', namespaces: ['ignored'] }));
    expect(admin.record.namespaces).toEqual(['*']);
    expect(tokenExpired(admin.record, Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it('accepts namespaces that exist or "*", sorted and without repeats', async () => {
    const kv = new MemoryKv();
    await withNamespace(kv, 'b');
    await withNamespace(kv, 'a');
    expect(created(await createToken(kv, keys, { name: 'two', role: 'read', namespaces: ['b', 'a', 'b'] })).record.namespaces).toEqual(['a', 'b']);
    expect(created(await createToken(kv, keys, { name: 'all', role: 'submit', namespaces: ['a', '*'] })).record.namespaces).toEqual(['*']);
  });

  it('refuses bad input naming the field, and stores nothing', async () => {
    const kv = new MemoryKv();
    await withNamespace(kv, 'a');
    const cases: [Parameters<typeof createToken>[2], string][] = [
      [{ name: '', role: 'read', namespaces: ['default'] }, 'name: is required'],
      [{ name: 'Not_A_Label', role: 'read', namespaces: ['default'] }, 'name: must be a DNS label'],
      [{ name: 'x'.repeat(64), role: 'read', namespaces: ['default'] }, 'name: must be a DNS label'],
      [{ name: 'ok', role: 'owner' as 'read', namespaces: ['default'] }, 'role: must be one of read, submit, admin'],
      [{ name: 'ok', role: 'read', namespaces: [] }, 'namespaces: a read token needs at least one namespace'],
      [{ name: 'ok', role: 'read', namespaces: ['a', 'B!'] }, 'namespaces[1]: must be a namespace name'],
      [{ name: 'ok', role: 'read', namespaces: ['a', 'nope'] }, 'namespaces[1]: namespace "nope" does not exist'],
      [{ name: 'ok', role: 'read', namespaces: ['default'], ttlMs: -1 }, 'ttlMs: must be a whole number'],
      [{ name: 'ok', role: 'read', namespaces: ['default'], ttlMs: 1.5 }, 'ttlMs: must be a whole number'],
    ];
    for (const [request, message] of cases) {
      const error = await createToken(kv, keys, request).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, message).toBeInstanceOf(InvalidRecordError);
      expect((error as Error).message).toContain(message);
    }
    expect(await keysUnder(kv, keys.authRoot)).toEqual([]);
    expect(await keysUnder(kv, keys.root)).toEqual([`${keys.root}namespaces/a`]);
  });

  it('moves a mirror of the cell prefix to the revision of every token write', async () => {
    const kv = new MemoryKv();
    const revisions: number[] = [];
    const watch = kv.watch(keys.root, 1, { onBatch: (batch) => void revisions.push(batch.revision), onCompacted: () => undefined });
    await createToken(kv, keys, { name: 'ci', role: 'read', namespaces: ['default'] });
    const afterCreate = await kv.currentRevision();
    await revokeToken(kv, keys, 'ci');
    const afterRevoke = await kv.currentRevision();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await watch.cancel();
    expect(revisions).toEqual([afterCreate, afterRevoke]);
  });
});

describe('listTokens and revokeToken', () => {
  it('lists by name and revokes: the token is gone, a second revoke is not-found', async () => {
    const kv = new MemoryKv();
    for (const name of ['zed', 'alpha', 'mid']) await createToken(kv, keys, { name, role: 'read', namespaces: ['default'] });
    expect((await listTokens(kv, keys)).map((t) => t.name)).toEqual(['alpha', 'mid', 'zed']);
    expect(await revokeToken(kv, keys, 'mid')).toBe('revoked');
    expect(await getToken(kv, keys, 'mid')).toBeUndefined();
    expect(await revokeToken(kv, keys, 'mid')).toBe('not-found');
    expect((await listTokens(kv, keys)).map((t) => t.name)).toEqual(['alpha', 'zed']);
  });

  it('answers revoked when its delete was applied and resent', async () => {
    const inner = new MemoryKv();
    await createToken(inner, keys, { name: 'ci', role: 'read', namespaces: ['default'] });
    const { kv, counters } = replayingKv(inner);
    expect(await revokeToken(kv, keys, 'ci')).toBe('revoked');
    expect(counters.replayed).toBe(1);
    expect(await getToken(inner, keys, 'ci')).toBeUndefined();
  });

  it('refuses a malformed name naming the field', async () => {
    await expect(revokeToken(new MemoryKv(), keys, '../x')).rejects.toThrow(/^name: must be a DNS label/);
  });
});

describe('parseToken', () => {
  const secret = new Uint8Array(32).fill(7);
  const good = formatToken('ci', secret);

  it('splits a well-formed token', () => {
    expect(parseToken(good)).toEqual({ name: 'ci', secret });
  });

  it('describes what is wrong with a malformed token without quoting it', () => {
    const secretText = good.split('.')[2] ?? '';
    const cases: [string, RegExp][] = [
      ['', /not an Omega token/],
      [secretText, /not an Omega token/],
      [`omg2.ci.${secretText}`, /not an Omega token/],
      [`omg1.ci.${secretText}.x`, /not an Omega token/],
      [`omg1.CI.${secretText}`, /name is not a DNS label/],
      [`omg1..${secretText}`, /name is not a DNS label/],
      ['omg1.ci.short', /secret is not 32 bytes/],
      [`omg1.ci.${secretText}A`, /secret is not 32 bytes/],
      [`omg1.ci.${secretText.slice(0, 42)}B`, /secret is not 32 bytes/],
      [`omg1.ci.${secretText.slice(0, 42)}=`, /secret is not 32 bytes/],
    ];
    for (const [text, problem] of cases) {
      const parsed = parseToken(text);
      expect('problem' in parsed, text).toBe(true);
      if (!('problem' in parsed)) continue;
      expect(parsed.problem).toMatch(problem);
      expect(parsed.problem).not.toContain(secretText.slice(0, 10));
    }
  });

  it('does not match a token with another secret', async () => {
    const kv = new MemoryKv();
    created(await createToken(kv, keys, { name: 'ci', role: 'read', namespaces: ['default'] }));
    const stored = await getToken(kv, keys, 'ci');
    expect(stored !== undefined && tokenMatches(stored, secret)).toBe(false);
  });
});
