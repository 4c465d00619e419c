import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { CachedToken, TokenCache } from '../../src/server/cache/token-cache.js';

/** One adapter under test, fresh for each test. */
export interface TokenCacheFixture {
  readonly cache: TokenCache;
  /**
   * Lets `ms` pass for the cache: the injected clock for an in-process cache, a real wait for Redis (whose
   * TTLs run on the server's clock).
   */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface TokenCacheContractOptions {
  /** Builds a fresh, empty adapter. */
  readonly create: () => Promise<TokenCacheFixture>;
  /** A reason to skip the whole suite (e.g. no redis-server here). */
  readonly skip?: string | undefined;
  /** Extra setup and teardown around the suite (e.g. starting a redis-server). */
  readonly before?: () => Promise<void>;
  readonly after?: () => Promise<void>;
}

function token(name: string, overrides: Partial<CachedToken> = {}): CachedToken {
  return { token: `eyJ.${name}.sig`, expiresAt: 2_000_000_000, jti: `jti-${name}`, policies: ['payments-read', 'status-read'], ...overrides };
}

/** A key shaped like the real ones (base64url SHA-256), unique per call so tests never see each other. */
function freshKey(): string {
  return Buffer.from(randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
}

/**
 * The behaviour every TokenCache adapter must have, whatever stores the tokens: Dex-style conformance
 * suite, registered once per adapter with a factory.
 */
export function registerTokenCacheContract(name: string, options: TokenCacheContractOptions): void {
  describe(`TokenCache contract: ${name}`, { skip: options.skip }, () => {
    const open: TokenCacheFixture[] = [];
    async function fixture(): Promise<TokenCacheFixture> {
      const created = await options.create();
      open.push(created);
      return created;
    }
    if (options.before) before(options.before);
    after(async () => {
      for (const f of open.splice(0)) await f.close();
      await options.after?.();
    });

    it('a value that was set is a hit with exactly that value', async () => {
      const { cache } = await fixture();
      const key = freshKey();
      await cache.set(key, token('a'), 60);
      assert.deepEqual(await cache.get(key), { status: 'hit', value: token('a') });
      // A second read is still a hit: reads do not consume entries.
      assert.deepEqual(await cache.get(key), { status: 'hit', value: token('a') });
    });

    it('an unknown key is a miss', async () => {
      const { cache } = await fixture();
      assert.deepEqual(await cache.get(freshKey()), { status: 'miss' });
    });

    it('keys are independent', async () => {
      const { cache } = await fixture();
      const [k1, k2] = [freshKey(), freshKey()];
      await cache.set(k1, token('one'), 60);
      await cache.set(k2, token('two'), 60);
      assert.deepEqual(await cache.get(k1), { status: 'hit', value: token('one') });
      assert.deepEqual(await cache.get(k2), { status: 'hit', value: token('two') });
    });

    it('a second set replaces the value', async () => {
      const { cache } = await fixture();
      const key = freshKey();
      await cache.set(key, token('first'), 60);
      await cache.set(key, token('second'), 60);
      assert.deepEqual(await cache.get(key), { status: 'hit', value: token('second') });
    });

    it('an entry is a hit before its ttl and a miss after it', async () => {
      const { cache, advance } = await fixture();
      const key = freshKey();
      const survivor = freshKey();
      await cache.set(key, token('short'), 0.3);
      await cache.set(survivor, token('long'), 60);
      assert.deepEqual(await cache.get(key), { status: 'hit', value: token('short') });
      await advance(450);
      assert.deepEqual(await cache.get(key), { status: 'miss' });
      assert.deepEqual(await cache.get(survivor), { status: 'hit', value: token('long') });
    });

    it('an overwrite restarts the lifetime', async () => {
      const { cache, advance } = await fixture();
      const key = freshKey();
      await cache.set(key, token('first'), 0.3);
      await cache.set(key, token('second'), 60);
      await advance(450);
      assert.deepEqual(await cache.get(key), { status: 'hit', value: token('second') });
    });

    for (const ttl of [0, -1, -3600]) {
      it(`a ttl of ${ttl} stores nothing and leaves an existing value alone`, async () => {
        const { cache } = await fixture();
        const [absent, present] = [freshKey(), freshKey()];
        await cache.set(absent, token('never'), ttl);
        assert.deepEqual(await cache.get(absent), { status: 'miss' });
        await cache.set(present, token('kept'), 60);
        await cache.set(present, token('ignored'), ttl);
        assert.deepEqual(await cache.get(present), { status: 'hit', value: token('kept') });
      });
    }

    const roundTrips: readonly [string, CachedToken][] = [
      ['no policies', token('empty', { policies: [] })],
      ['one policy', token('one', { policies: ['only'] })],
      ['many policies in order', token('many', { policies: ['z', 'a', 'm', 'a-b_c.d:e/f'] })],
      ['unicode and quotes', token('uni', { token: 'eyJ"\\\u00e9\u{1F600}\n', jti: 'j\u00fcti "quoted"', policies: ['p\u00e9', '"q"'] })],
      ['a large token', token('large', { token: 'x'.repeat(16_384) })],
      ['expiresAt zero', token('zero', { expiresAt: 0 })],
      ['expiresAt far future', token('far', { expiresAt: 253_402_300_799 })],
    ];
    for (const [label, value] of roundTrips) {
      it(`round-trips a value exactly: ${label}`, async () => {
        const { cache } = await fixture();
        const key = freshKey();
        await cache.set(key, value, 60);
        const lookup = await cache.get(key);
        assert.deepEqual(lookup, { status: 'hit', value });
        // Exactly the four fields, no extras an adapter might have added.
        assert.equal(lookup.status, 'hit');
        if (lookup.status === 'hit') assert.deepEqual(Object.keys(lookup.value).sort(), ['expiresAt', 'jti', 'policies', 'token']);
      });
    }

    it('keys with separators and unicode are distinct keys', async () => {
      const { cache } = await fixture();
      const run = randomUUID();
      const keys = ['a:b', 'a', 'a:', ':b', 'k\u00e9y', 'k/y', 'k*y', '{tag}x', 't:a'].map((k) => `${run}${k}`);
      for (const [i, key] of keys.entries()) await cache.set(key, token(String(i)), 60);
      for (const [i, key] of keys.entries()) assert.deepEqual(await cache.get(key), { status: 'hit', value: token(String(i)) });
    });
  });
}
