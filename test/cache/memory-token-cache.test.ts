import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryTokenCache } from '../../src/server/cache/memory-token-cache.js';
import { createTestClock } from '../support/clock.js';
import type { CachedToken } from '../../src/server/cache/token-cache.js';

function token(name: string): CachedToken {
  return { token: `token-${name}`, expiresAt: 2_000_000_000, jti: `jti-${name}`, policies: ['p'] };
}

/** Which of `names` are still cached. Reading refreshes recency, so callers check only at the end of a test. */
async function present(cache: MemoryTokenCache, names: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of names) if ((await cache.get(name)).status === 'hit') found.push(name);
  return found;
}

describe('MemoryTokenCache', () => {
  it('returns what was stored, and a miss for unknown keys', async () => {
    const cache = new MemoryTokenCache(10, createTestClock(0).now);
    await cache.set('a', token('a'), 60);
    assert.deepEqual(await cache.get('a'), { status: 'hit', value: token('a') });
    assert.deepEqual(await cache.get('b'), { status: 'miss' });
  });

  it('replaces the value of a key set twice, counting it once', async () => {
    const cache = new MemoryTokenCache(10, createTestClock(0).now);
    await cache.set('a', token('first'), 60);
    await cache.set('a', token('second'), 60);
    assert.equal(cache.size, 1);
    assert.deepEqual(await cache.get('a'), { status: 'hit', value: token('second') });
  });

  it('never holds more than maxEntries', async () => {
    for (const maxEntries of [1, 2, 5]) {
      const cache = new MemoryTokenCache(maxEntries, createTestClock(0).now);
      for (let i = 0; i < 20; i++) {
        await cache.set(`k${i}`, token(String(i)), 60);
        assert.ok(cache.size <= maxEntries, `size ${cache.size} <= ${maxEntries}`);
      }
      assert.equal(cache.size, maxEntries);
    }
  });

  it('evicts the least recently inserted entry first', async () => {
    const cache = new MemoryTokenCache(3, createTestClock(0).now);
    for (const name of ['a', 'b', 'c', 'd']) await cache.set(name, token(name), 60);
    assert.deepEqual(await present(cache, ['a', 'b', 'c', 'd']), ['b', 'c', 'd']);
  });

  it('a read makes an entry the most recently used', async () => {
    const cache = new MemoryTokenCache(3, createTestClock(0).now);
    for (const name of ['a', 'b', 'c']) await cache.set(name, token(name), 60);
    assert.equal((await cache.get('a')).status, 'hit');
    await cache.set('d', token('d'), 60); // evicts b, now the least recently used
    assert.equal(cache.size, 3);
    assert.deepEqual(await present(cache, ['a', 'b', 'c', 'd']), ['a', 'c', 'd']);
  });

  it('a write to an existing key makes it the most recently used', async () => {
    const cache = new MemoryTokenCache(3, createTestClock(0).now);
    for (const name of ['a', 'b', 'c']) await cache.set(name, token(name), 60);
    await cache.set('a', token('a2'), 60);
    await cache.set('d', token('d'), 60); // evicts b
    assert.deepEqual(await present(cache, ['a', 'b', 'c', 'd']), ['a', 'c', 'd']);
    assert.deepEqual(await cache.get('a'), { status: 'hit', value: token('a2') });
  });

  it('a miss does not change the eviction order', async () => {
    const cache = new MemoryTokenCache(2, createTestClock(0).now);
    await cache.set('a', token('a'), 60);
    await cache.set('b', token('b'), 60);
    assert.deepEqual(await cache.get('zzz'), { status: 'miss' });
    await cache.set('c', token('c'), 60);
    assert.deepEqual(await present(cache, ['a', 'b', 'c']), ['b', 'c']);
  });

  it('expires entries by the injected clock', async () => {
    const clock = createTestClock(1_000_000);
    const cache = new MemoryTokenCache(10, clock.now);
    await cache.set('short', token('short'), 30);
    await cache.set('long', token('long'), 120);
    clock.advance(29);
    assert.deepEqual(await cache.get('short'), { status: 'hit', value: token('short') });
    clock.advance(1); // exactly 30 s: gone
    assert.deepEqual(await cache.get('short'), { status: 'miss' });
    assert.deepEqual(await cache.get('long'), { status: 'hit', value: token('long') });
    clock.advance(90);
    assert.deepEqual(await cache.get('long'), { status: 'miss' });
  });

  it('drops an expired entry when it is read', async () => {
    const clock = createTestClock(0);
    const cache = new MemoryTokenCache(10, clock.now);
    await cache.set('a', token('a'), 10);
    clock.advance(11);
    assert.deepEqual(await cache.get('a'), { status: 'miss' });
    assert.equal(cache.size, 0);
  });

  it('restarts the lifetime when a key is stored again', async () => {
    const clock = createTestClock(0);
    const cache = new MemoryTokenCache(10, clock.now);
    await cache.set('a', token('a'), 10);
    clock.advance(8);
    await cache.set('a', token('a2'), 10);
    clock.advance(8);
    assert.deepEqual(await cache.get('a'), { status: 'hit', value: token('a2') });
  });

  for (const ttl of [0, -1, -3600]) {
    it(`does not store with ttl ${ttl}`, async () => {
      const cache = new MemoryTokenCache(10, createTestClock(0).now);
      await cache.set('a', token('a'), ttl);
      assert.equal(cache.size, 0);
      assert.deepEqual(await cache.get('a'), { status: 'miss' });
    });
  }

  it('a ttl <= 0 does not evict or replace anything', async () => {
    const cache = new MemoryTokenCache(1, createTestClock(0).now);
    await cache.set('a', token('a'), 60);
    await cache.set('b', token('b'), 0);
    await cache.set('a', token('replaced'), 0);
    assert.deepEqual(await cache.get('a'), { status: 'hit', value: token('a') });
  });

  it('close empties the cache', async () => {
    const cache = new MemoryTokenCache(10, createTestClock(0).now);
    await cache.set('a', token('a'), 60);
    await cache.close();
    assert.equal(cache.size, 0);
    assert.deepEqual(await cache.get('a'), { status: 'miss' });
  });
});
