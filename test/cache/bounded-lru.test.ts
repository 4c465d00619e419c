import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedLru } from '../../src/server/cache/bounded-lru.js';

describe('BoundedLru', () => {
  it('over the bound, the least recently used entry goes: a read counts as a use', () => {
    const lru = new BoundedLru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.get('a'), 1); // b is now the least recently used
    lru.set('c', 3);
    assert.deepEqual([lru.get('a'), lru.get('b'), lru.get('c')], [1, undefined, 3]);
    assert.equal(lru.size, 2);
  });

  it('setting a present key replaces its value and makes it the most recently used', () => {
    const lru = new BoundedLru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('a', 10);
    lru.set('c', 3);
    assert.deepEqual([lru.get('a'), lru.get('b'), lru.get('c')], [10, undefined, 3]);
  });

  it('delete, deleteWhere and clear drop exactly what they name', () => {
    const lru = new BoundedLru<string, { team: string }>(10);
    for (const [key, team] of [['a', 'x'], ['b', 'y'], ['c', 'x'], ['d', 'z']] as const) lru.set(key, { team });
    lru.delete('d');
    lru.deleteWhere((value) => value.team === 'x');
    assert.deepEqual([lru.get('a'), lru.get('b'), lru.get('c'), lru.get('d')], [undefined, { team: 'y' }, undefined, undefined]);
    lru.clear();
    assert.equal(lru.size, 0);
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const bound of [0, -1, 1.5, Number.NaN]) assert.throws(() => new BoundedLru(bound), /positive integer/, String(bound));
  });
});
