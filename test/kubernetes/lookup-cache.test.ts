import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LookupCache } from '../../src/server/kubernetes/lookup-cache.js';
import { createTestClock } from '../support/clock.js';

/** A loader that counts its calls and answers what `answer` says for the key. */
function countingLoader(answer: (key: string) => string | undefined = (key) => `value of ${key}`) {
  const calls: string[] = [];
  return {
    calls,
    load: (key: string) => () => {
      calls.push(key);
      return Promise.resolve(answer(key));
    },
  };
}

describe('LookupCache: Kubernetes answers reused for their lifetime, bounded', () => {
  it('an answer, and a 404 (undefined), are reused until the lifetime passes on the injected clock', async () => {
    const clock = createTestClock(0);
    const cache = new LookupCache<string>(10_000, clock.now, 100);
    const loader = countingLoader((key) => (key === 'gone' ? undefined : `value of ${key}`));
    assert.equal(await cache.get('a', loader.load('a')), 'value of a');
    assert.equal(await cache.get('gone', loader.load('gone')), undefined);
    clock.set(9_999);
    assert.equal(await cache.get('a', loader.load('a')), 'value of a');
    assert.equal(await cache.get('gone', loader.load('gone')), undefined);
    assert.deepEqual(loader.calls, ['a', 'gone']);
    clock.set(10_000);
    await cache.get('a', loader.load('a'));
    await cache.get('gone', loader.load('gone'));
    assert.deepEqual(loader.calls, ['a', 'gone', 'a', 'gone']);
  });

  it('holds at most maxEntries answers, dropping the least recently used', async () => {
    const cache = new LookupCache<string>(60_000, () => 0, 3);
    const loader = countingLoader();
    for (const key of ['a', 'b', 'c']) await cache.get(key, loader.load(key));
    await cache.get('a', loader.load('a')); // a is now the most recently used: b goes first
    await cache.get('d', loader.load('d'));
    assert.equal(cache.size, 3);
    await cache.get('b', loader.load('b'));
    assert.deepEqual(loader.calls, ['a', 'b', 'c', 'd', 'b']);
  });

  it('concurrent loads of one key share one call; a failure rejects them all and is not stored', async () => {
    const cache = new LookupCache<string>(60_000, () => 0, 10);
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(new Error('API down'));
    };
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => cache.get('a', failing)));
    assert.equal(calls, 1);
    assert.ok(results.every((result) => result.status === 'rejected'));
    assert.equal(await cache.get('a', () => Promise.resolve('back')), 'back');
    assert.equal(calls, 1);
  });

  it('a lifetime of 0 stores nothing; clear() while loading discards the answer', async () => {
    const uncached = new LookupCache<string>(0, () => 0, 10);
    const loader = countingLoader();
    await uncached.get('a', loader.load('a'));
    await uncached.get('a', loader.load('a'));
    assert.deepEqual(loader.calls, ['a', 'a']);

    const cache = new LookupCache<string>(60_000, () => 0, 10);
    let release: (value: string) => void = () => undefined;
    const pending = cache.get('a', () => new Promise<string>((resolve) => (release = resolve)));
    cache.clear();
    release('from a closed source');
    assert.equal(await pending, 'from a closed source');
    assert.equal(cache.size, 0);
  });

  it('refuses a bound that is not a positive integer', () => {
    assert.throws(() => new LookupCache<string>(1000, () => 0, 0), /maxEntries must be a positive integer/);
  });
});
