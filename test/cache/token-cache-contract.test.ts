import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { MemoryTokenCache } from '../../src/server/cache/memory-token-cache.js';
import { RedisTokenCache } from '../../src/server/cache/redis-token-cache.js';
import { RedisConnection, createRedisClient } from '../../src/server/cache/redis-connection.js';
import { registerTokenCacheContract } from '../contracts/token-cache.contract.js';
import { createTestClock } from '../support/clock.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import type { CachedToken } from '../../src/server/cache/token-cache.js';

const skip = redisUnavailableReason();
const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

registerTokenCacheContract('MemoryTokenCache', {
  async create() {
    const clock = createTestClock(1_700_000_000_000);
    return {
      cache: new MemoryTokenCache(1000, clock.now),
      advance: async (ms) => clock.set(clock.now() + ms),
      close: async () => undefined,
    };
  },
});

let shared: RedisServer | undefined;

async function connect(url: string, keyPrefix: string, commandTimeoutMs = 100): Promise<RedisConnection> {
  const connection = new RedisConnection(createRedisClient({ url, keyPrefix, commandTimeoutMs }), keyPrefix, silent);
  await connection.waitUntilUp(5000);
  return connection;
}

registerTokenCacheContract('RedisTokenCache (real redis-server)', {
  skip,
  before: async () => {
    shared = await startRedisServer();
  },
  after: async () => {
    await shared?.stop();
  },
  async create() {
    if (shared === undefined) throw new Error('redis-server not started');
    // A prefix per fixture: every test sees an empty keyspace of its own.
    const connection = await connect(shared.url, `contract-${randomUUID()}:`);
    return {
      cache: new RedisTokenCache(connection),
      advance: (ms) => sleep(ms),
      close: () => connection.close(),
    };
  },
});

const value: CachedToken = { token: 'eyJ.payload.sig', expiresAt: 2_000_000_000, jti: 'jti-1', policies: ['payments-read'] };

describe('RedisTokenCache on a real redis-server', { skip }, () => {
  let server: RedisServer;
  let raw: Redis;
  const connections: RedisConnection[] = [];

  async function cacheWithPrefix(keyPrefix: string): Promise<RedisTokenCache> {
    const connection = await connect(server.url, keyPrefix);
    connections.push(connection);
    return new RedisTokenCache(connection);
  }

  /** Every key under `prefix`, read with a plain client (the keyspace is tiny). */
  async function keysUnder(prefix: string): Promise<string[]> {
    return (await raw.keys(`${prefix}*`)).sort();
  }

  before(async () => {
    server = await startRedisServer();
    raw = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    for (const connection of connections) await connection.close();
    raw.disconnect();
    await server.stop();
  });

  it('writes exactly one key, under the configured keyPrefix and naming the cache key', async () => {
    const prefix = `broker-a-${randomUUID()}:`;
    const cache = await cacheWithPrefix(prefix);
    await cache.set('the-cache-key', value, 60);
    const keys = await keysUnder(prefix);
    assert.equal(keys.length, 1);
    assert.ok(keys[0]?.startsWith(prefix), `${keys[0]} starts with ${prefix}`);
    assert.ok(keys[0]?.endsWith('the-cache-key'), `${keys[0]} ends with the cache key`);
    assert.deepEqual(JSON.parse((await raw.get(keys[0] as string)) as string), value);
  });

  it('two prefixes on one Redis do not see each other\'s tokens', async () => {
    const [a, b] = [`iso-a-${randomUUID()}:`, `iso-b-${randomUUID()}:`];
    const cacheA = await cacheWithPrefix(a);
    const cacheB = await cacheWithPrefix(b);
    await cacheA.set('same-key', value, 60);
    assert.deepEqual(await cacheB.get('same-key'), { status: 'miss' });
    assert.deepEqual(await cacheA.get('same-key'), { status: 'hit', value });
    assert.equal((await keysUnder(b)).length, 0);
  });

  for (const [ttlSeconds, low, high] of [
    [90, 89_000, 90_000],
    [0.3, 200, 300],
    [3600, 3_599_000, 3_600_000],
  ] as const) {
    it(`sets the Redis TTL to the requested ${ttlSeconds} s (PTTL within a margin)`, async () => {
      const prefix = `ttl-${randomUUID()}:`;
      const cache = await cacheWithPrefix(prefix);
      await cache.set('k', value, ttlSeconds);
      const [key] = await keysUnder(prefix);
      assert.ok(key !== undefined);
      const pttl = await raw.pttl(key);
      assert.ok(pttl > low && pttl <= high, `PTTL ${pttl} in (${low}, ${high}]`);
    });
  }

  const corrupt: readonly [string, string][] = [
    ['not JSON', 'definitely not json'],
    ['truncated JSON', JSON.stringify(value).slice(0, 20)],
    ['JSON null', 'null'],
    ['a JSON array', '[]'],
    ['a JSON string', '"eyJ.payload.sig"'],
    ['token missing', JSON.stringify({ expiresAt: 2_000_000_000, jti: 'j', policies: [] })],
    ['token not a string', JSON.stringify({ ...value, token: 42 })],
    ['expiresAt a string', JSON.stringify({ ...value, expiresAt: '2000000000' })],
    ['jti missing', JSON.stringify({ token: 't', expiresAt: 1, policies: [] })],
    ['policies not an array', JSON.stringify({ ...value, policies: 'payments-read' })],
    ['a policy not a string', JSON.stringify({ ...value, policies: ['ok', 7] })],
    ['empty string', ''],
  ];
  for (const [label, text] of corrupt) {
    it(`a corrupt value under the key reads as a miss: ${label}`, async () => {
      const prefix = `corrupt-${randomUUID()}:`;
      const cache = await cacheWithPrefix(prefix);
      await cache.set('k', value, 60);
      const [key] = await keysUnder(prefix);
      assert.ok(key !== undefined);
      await raw.set(key, text, 'PX', 60_000);
      assert.deepEqual(await cache.get('k'), { status: 'miss' });
      // The next mint's write repairs it.
      await cache.set('k', value, 60);
      assert.deepEqual(await cache.get('k'), { status: 'hit', value });
    });
  }

  it('a wrong-type key (a hash) under the name reads as an error, never a hit and never a throw', async () => {
    const prefix = `wrongtype-${randomUUID()}:`;
    const cache = await cacheWithPrefix(prefix);
    await cache.set('k', value, 60);
    const [key] = await keysUnder(prefix);
    assert.ok(key !== undefined);
    await raw.del(key);
    await raw.hset(key, 'token', 'x');
    // WRONGTYPE is a server error reply: the lookup is an error (the exchange then mints), not a throw.
    assert.deepEqual(await cache.get('k'), { status: 'error' });
  });

  it('extra fields stored alongside a valid value are dropped on read', async () => {
    const prefix = `extra-${randomUUID()}:`;
    const cache = await cacheWithPrefix(prefix);
    await cache.set('k', value, 60);
    const [key] = await keysUnder(prefix);
    assert.ok(key !== undefined);
    await raw.set(key, JSON.stringify({ ...value, injected: 'x' }), 'PX', 60_000);
    assert.deepEqual(await cache.get('k'), { status: 'hit', value });
  });
});

describe('RedisTokenCache when Redis is gone', { skip }, () => {
  let server: RedisServer;
  let connection: RedisConnection;

  before(async () => {
    server = await startRedisServer();
    connection = await connect(server.url, 'gone:', 100);
  });
  after(async () => {
    await connection.close();
    await server.stop();
  });

  it('a paused Redis: get answers error after about one command timeout, then at once', async () => {
    const cache = new RedisTokenCache(connection);
    await cache.set('k', value, 60);
    assert.deepEqual(await cache.get('k'), { status: 'hit', value });
    server.pause();
    try {
      let started = performance.now();
      assert.deepEqual(await cache.get('k'), { status: 'error' });
      const first = performance.now() - started;
      assert.ok(first < 1000, `first get took ${first} ms with commandTimeoutMs 100`);
      assert.equal(connection.up, false);
      started = performance.now();
      assert.deepEqual(await cache.get('k'), { status: 'error' });
      await assert.doesNotReject(cache.set('k2', value, 60));
      const second = performance.now() - started;
      assert.ok(second < 50, `known-down get+set took ${second} ms`);
    } finally {
      server.resume();
    }
    await connection.waitUntilUp(5000);
    assert.deepEqual(await cache.get('k'), { status: 'hit', value });
    // The write made while it was paused was dropped, not queued.
    assert.deepEqual(await cache.get('k2'), { status: 'miss' });
  });

  it('a killed Redis: get returns {status: "error"} quickly and never throws; set is dropped', async () => {
    const cache = new RedisTokenCache(connection);
    await connection.waitUntilUp(5000);
    await server.kill();
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      const lookup = await cache.get('k');
      const took = performance.now() - started;
      assert.deepEqual(lookup, { status: 'error' });
      assert.ok(took < 500, `get ${i} on a killed Redis took ${took} ms`);
      await assert.doesNotReject(cache.set('k', value, 60));
    }
    assert.equal(connection.up, false);
  });
});
