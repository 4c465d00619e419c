import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { MemoryMintRateLimiter, type RateLimitDecision, type RateLimitSettings } from '../../src/server/limits/mint-rate-limiter.js';
import { RedisMintRateLimiter } from '../../src/server/limits/redis-mint-rate-limiter.js';
import { RedisConnection, createRedisClient } from '../../src/server/cache/redis-connection.js';
import { createTestClock, type TestClock } from '../support/clock.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';

const skip = redisUnavailableReason();
const silent = pino({ level: 'silent' });

/** One step of a sequence: let `advanceMs` pass, then take for `key`. */
type Step = readonly [advanceMs: number, key: string];

function clockAt(ms = 1_700_000_000_000): TestClock {
  return createTestClock(ms);
}

describe('MemoryMintRateLimiter', () => {
  it('allows the burst at once, then refuses with Retry-After in whole seconds, rounded up', async () => {
    const clock = clockAt();
    const limiter = new MemoryMintRateLimiter({ ratePerMinute: 60, burst: 2 }, clock.now);
    assert.deepEqual(await limiter.take('w'), { allowed: true, retryAfterSeconds: 0 });
    assert.deepEqual(await limiter.take('w'), { allowed: true, retryAfterSeconds: 0 });
    assert.deepEqual(await limiter.take('w'), { allowed: false, retryAfterSeconds: 1 });
    clock.set(clock.now() + 200);
    assert.deepEqual(await limiter.take('w'), { allowed: false, retryAfterSeconds: 1 }); // 800 ms: still 1 s
    clock.set(clock.now() + 800);
    assert.deepEqual(await limiter.take('w'), { allowed: true, retryAfterSeconds: 0 });
  });

  it('a slow rate advertises the full wait (6 per minute: 10 s)', async () => {
    const clock = clockAt();
    const limiter = new MemoryMintRateLimiter({ ratePerMinute: 6, burst: 1 }, clock.now);
    assert.deepEqual(await limiter.take('w'), { allowed: true, retryAfterSeconds: 0 });
    assert.deepEqual(await limiter.take('w'), { allowed: false, retryAfterSeconds: 10 });
    clock.advance(9.5);
    assert.deepEqual(await limiter.take('w'), { allowed: false, retryAfterSeconds: 1 });
  });

  it('keeps one bucket per identity key', async () => {
    const clock = clockAt();
    const limiter = new MemoryMintRateLimiter({ ratePerMinute: 60, burst: 1 }, clock.now);
    assert.equal((await limiter.take('a')).allowed, true);
    assert.equal((await limiter.take('a')).allowed, false);
    assert.equal((await limiter.take('b')).allowed, true);
  });

  it('forgets the least recently used bucket beyond maxBuckets (a forgotten bucket is full again)', async () => {
    const clock = clockAt();
    const limiter = new MemoryMintRateLimiter({ ratePerMinute: 60, burst: 1 }, clock.now, 2);
    for (const key of ['a', 'b', 'c']) assert.equal((await limiter.take(key)).allowed, true);
    // 'a' was evicted by 'c'; 'b' and 'c' are still remembered as empty.
    assert.equal((await limiter.take('b')).allowed, false);
    assert.equal((await limiter.take('c')).allowed, false);
    assert.equal((await limiter.take('a')).allowed, true);
  });
});

/** A small deterministic PRNG (mulberry32), so the long sequences are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomSteps(seed: number, count: number, keys: readonly string[], maxAdvanceMs: number): Step[] {
  const next = random(seed);
  return Array.from({ length: count }, (): Step => [Math.floor(next() * maxAdvanceMs), keys[Math.floor(next() * keys.length)] as string]);
}

const sequences: readonly { name: string; settings: RateLimitSettings; steps: readonly Step[] }[] = [
  {
    name: '60/min burst 2: two at once, then one per second',
    settings: { ratePerMinute: 60, burst: 2 },
    steps: [[0, 'w'], [0, 'w'], [0, 'w'], [500, 'w'], [500, 'w'], [0, 'w'], [3_000, 'w'], [0, 'w'], [0, 'w']],
  },
  {
    // 1/3 token per second: the stored fraction must survive the round trip through Redis exactly, or a
    // retry after exactly the advertised wait is refused by Redis and allowed in memory.
    name: '20/min burst 1: fractional tokens',
    settings: { ratePerMinute: 20, burst: 1 },
    steps: [[0, 'w'], [1_000, 'w'], [2_000, 'w'], [1_000, 'w'], [1_000, 'w'], [1_000, 'w'], [0, 'w']],
  },
  {
    name: '7/min burst 3: retry-after rounding',
    settings: { ratePerMinute: 7, burst: 3 },
    steps: [[0, 'w'], [0, 'w'], [0, 'w'], [0, 'w'], [4_000, 'w'], [4_571, 'w'], [1, 'w'], [60_000, 'w'], [0, 'w'], [0, 'w'], [0, 'w']],
  },
  {
    name: 'two identities do not share a bucket',
    settings: { ratePerMinute: 60, burst: 1 },
    steps: [[0, 'a'], [0, 'b'], [0, 'a'], [0, 'b'], [1_000, 'a'], [0, 'a'], [0, 'b']],
  },
  { name: 'random: 20/min burst 2', settings: { ratePerMinute: 20, burst: 2 }, steps: randomSteps(1, 150, ['a', 'b'], 2_500) },
  { name: 'random: 7/min burst 1', settings: { ratePerMinute: 7, burst: 1 }, steps: randomSteps(2, 150, ['a'], 12_000) },
  { name: 'random: 1000/min burst 5', settings: { ratePerMinute: 1000, burst: 5 }, steps: randomSteps(3, 150, ['a', 'b'], 30) },
  { name: 'random: 13/min burst 3', settings: { ratePerMinute: 13, burst: 3 }, steps: randomSteps(4, 150, ['a'], 7_000) },
];

describe('MemoryMintRateLimiter and RedisMintRateLimiter agree', { skip }, () => {
  let server: RedisServer;
  let raw: Redis;
  const connections: RedisConnection[] = [];

  async function connect(keyPrefix: string): Promise<RedisConnection> {
    const connection = new RedisConnection(createRedisClient({ url: server.url, keyPrefix, commandTimeoutMs: 1000 }), keyPrefix, silent);
    connections.push(connection);
    await connection.waitUntilUp(5000);
    return connection;
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

  for (const { name, settings, steps } of sequences) {
    it(name, async () => {
      const clock = clockAt();
      const memory = new MemoryMintRateLimiter(settings, clock.now);
      let redisErrors = 0;
      const redis = new RedisMintRateLimiter(await connect(`agree-${randomUUID()}:`), settings, clock.now, () => redisErrors++);
      const fromMemory: RateLimitDecision[] = [];
      const fromRedis: RateLimitDecision[] = [];
      for (const [advanceMs, key] of steps) {
        clock.set(clock.now() + advanceMs);
        fromMemory.push(await memory.take(key));
        fromRedis.push(await redis.take(key));
      }
      assert.equal(redisErrors, 0);
      for (const [i, step] of steps.entries()) {
        assert.deepEqual({ step: i, key: step[1], ...fromRedis[i] }, { step: i, key: step[1], ...fromMemory[i] });
      }
      // Both refuse sometimes and allow sometimes in every sequence, or it tests nothing.
      assert.ok(fromMemory.some((d) => d.allowed) && fromMemory.some((d) => !d.allowed), 'the sequence exercises both outcomes');
    });
  }

  it('the fixed sequence gives the expected decisions (not only equal ones)', async () => {
    const clock = clockAt();
    const redis = new RedisMintRateLimiter(await connect(`fixed-${randomUUID()}:`), { ratePerMinute: 60, burst: 2 }, clock.now);
    const decisions: string[] = [];
    for (const advanceMs of [0, 0, 0, 400, 600, 0]) {
      clock.set(clock.now() + advanceMs);
      const d = await redis.take('w');
      decisions.push(d.allowed ? 'allow' : `refuse ${d.retryAfterSeconds}s`);
    }
    assert.deepEqual(decisions, ['allow', 'allow', 'refuse 1s', 'refuse 1s', 'allow', 'refuse 1s']);
  });

  it('replicas share one bucket: two limiters on separate connections with the same prefix', async () => {
    const clock = clockAt();
    const prefix = `shared-${randomUUID()}:`;
    const settings = { ratePerMinute: 60, burst: 3 };
    const a = new RedisMintRateLimiter(await connect(prefix), settings, clock.now);
    const b = new RedisMintRateLimiter(await connect(prefix), settings, clock.now);
    const allowed = [await a.take('w'), await b.take('w'), await a.take('w'), await b.take('w')].map((d) => d.allowed);
    assert.deepEqual(allowed, [true, true, true, false]);
  });

  it('the bucket lives under {keyPrefix}rl: and expires once it would be full again', async () => {
    const clock = clockAt();
    const prefix = `ttl-${randomUUID()}:`;
    const limiter = new RedisMintRateLimiter(await connect(prefix), { ratePerMinute: 60, burst: 5 }, clock.now);
    await limiter.take('identity-key');
    const keys = await raw.keys(`${prefix}*`);
    assert.deepEqual(keys, [`${prefix}rl:identity-key`]);
    const pttl = await raw.pttl(keys[0] as string);
    // burst / rate = 5 s, plus 1 s of slack.
    assert.ok(pttl > 5_000 && pttl <= 6_000, `PTTL ${pttl}`);
  });

  it('works again after the server forgot the script (SCRIPT FLUSH, as after a restart)', async () => {
    const clock = clockAt();
    let errors = 0;
    const limiter = new RedisMintRateLimiter(await connect(`flush-${randomUUID()}:`), { ratePerMinute: 60, burst: 2 }, clock.now, () => errors++);
    assert.equal((await limiter.take('w')).allowed, true);
    await raw.script('FLUSH');
    assert.equal((await limiter.take('w')).allowed, true);
    assert.deepEqual(await limiter.take('w'), { allowed: false, retryAfterSeconds: 1 });
    assert.equal(errors, 0);
  });

  it('fails open when Redis is gone: allowed, and the error is reported', async () => {
    const own = await startRedisServer();
    const connection = new RedisConnection(createRedisClient({ url: own.url, keyPrefix: 'open:', commandTimeoutMs: 100 }), 'open:', silent);
    try {
      await connection.waitUntilUp(5000);
      const clock = clockAt();
      let errors = 0;
      const limiter = new RedisMintRateLimiter(connection, { ratePerMinute: 60, burst: 1 }, clock.now, () => errors++);
      assert.deepEqual(await limiter.take('w'), { allowed: true, retryAfterSeconds: 0 });
      assert.deepEqual(await limiter.take('w'), { allowed: false, retryAfterSeconds: 1 });
      await own.kill();
      for (let i = 0; i < 3; i++) assert.deepEqual(await limiter.take('w'), { allowed: true, retryAfterSeconds: 0 });
      assert.equal(errors, 3);
    } finally {
      await connection.close();
      await own.stop();
    }
  });
});
