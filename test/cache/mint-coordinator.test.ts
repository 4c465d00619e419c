import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { createRedisClient, RedisConnection } from '../../src/server/cache/redis-connection.js';
import { RedisTokenCache } from '../../src/server/cache/redis-token-cache.js';
import { LocalMintCoordinator, RedisMintCoordinator } from '../../src/server/cache/mint-coordinator.js';
import type { CachedToken } from '../../src/server/cache/token-cache.js';
import { registerMintCoordinatorContract } from '../contracts/mint-coordinator.contract.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';

/*
 * The cross-replica mint lock against a real redis-server. The race it must close: a replica reads the cache (the
 * token is about to expire), a peer takes the lock, mints, caches and releases it, and only then does the replica
 * take the lock. Reading the cache again under the lock is what keeps that replica from minting a second token.
 */

const skip = redisUnavailableReason();

registerMintCoordinatorContract('LocalMintCoordinator', {
  create: async () => ({ coordinator: new LocalMintCoordinator(), close: async () => undefined }),
});

let contractServer: RedisServer | undefined;
registerMintCoordinatorContract('RedisMintCoordinator (real redis-server)', {
  skip,
  before: async () => {
    contractServer = await startRedisServer();
  },
  after: async () => {
    await contractServer?.stop();
  },
  async create() {
    if (contractServer === undefined) throw new Error('redis-server not started');
    const prefix = `mc-contract-${Date.now()}-${Math.random().toString(36).slice(2)}:`;
    const connection = new RedisConnection(createRedisClient({ url: contractServer.url, keyPrefix: prefix, commandTimeoutMs: 2000 }), prefix, pino({ level: 'silent' }));
    await connection.waitUntilUp(5000);
    const cache = new RedisTokenCache(connection);
    return { coordinator: new RedisMintCoordinator(connection, cache, { waitMs: 200, pollMs: 10 }), close: () => cache.close() };
  },
});

function token(name: string, expiresAt: number): CachedToken {
  return { token: `token-${name}`, expiresAt, jti: `jti-${name}`, policies: ['p'] };
}

describe('RedisMintCoordinator', { skip }, () => {
  let server: RedisServer;
  let connection: RedisConnection;
  let cache: RedisTokenCache;
  let coordinator: RedisMintCoordinator;
  const nowSeconds = Math.floor(Date.now() / 1000);
  const usable = (t: CachedToken) => t.expiresAt - nowSeconds > 60;

  before(async () => {
    server = await startRedisServer();
    connection = new RedisConnection(createRedisClient({ url: server.url, keyPrefix: 'mc:', commandTimeoutMs: 2000 }), 'mc:', pino({ level: 'silent' }));
    await connection.waitUntilUp(5000);
    cache = new RedisTokenCache(connection);
    coordinator = new RedisMintCoordinator(connection, cache, { waitMs: 200, pollMs: 10 });
  });
  after(async () => {
    await cache.close();
    await server.stop();
  });

  it('the lock is free and the cache holds nothing usable: mints once and reports it minted', async () => {
    let mints = 0;
    const obtained = await coordinator.obtain('k-empty', async () => {
      mints++;
      const minted = token('fresh', nowSeconds + 300);
      await cache.set('k-empty', minted, 240);
      return minted;
    }, usable);
    assert.equal(mints, 1);
    assert.deepEqual(obtained, { token: token('fresh', nowSeconds + 300), mintedHere: true });
  });

  it('a peer minted and released the lock after this replica read the cache: its token is used, nothing is minted', async () => {
    // The peer's whole mint, done between this replica's cache read (not shown: the caller's) and its lock.
    await cache.set('k-raced', token('peer', nowSeconds + 300), 240);
    let mints = 0;
    const obtained = await coordinator.obtain('k-raced', async () => {
      mints++;
      return token('duplicate', nowSeconds + 300);
    }, usable);
    assert.equal(mints, 0);
    assert.deepEqual(obtained, { token: token('peer', nowSeconds + 300), mintedHere: false });
    assert.equal(await connection.client.exists('mc:lock:k-raced'), 0, 'the lock is released');
  });

  it('releases its lock after the server forgot the release script (SCRIPT FLUSH, as after a restart)', async () => {
    await connection.client.script('FLUSH');
    const obtained = await coordinator.obtain('k-flushed', async () => token('after-flush', nowSeconds + 300), usable);
    assert.deepEqual(obtained, { token: token('after-flush', nowSeconds + 300), mintedHere: true });
    assert.equal(await connection.client.exists('mc:lock:k-flushed'), 0, 'the lock is released, by EVAL once EVALSHA was refused');
  });

  it('what the cache holds under the lock is the token being refreshed: mints a new one', async () => {
    await cache.set('k-stale', token('old', nowSeconds + 30), 20);
    let mints = 0;
    const obtained = await coordinator.obtain('k-stale', async () => {
      mints++;
      return token('new', nowSeconds + 300);
    }, usable);
    assert.equal(mints, 1);
    assert.deepEqual(obtained, { token: token('new', nowSeconds + 300), mintedHere: true });
  });

  it('a mint costs two round trips for the lock: taking it together with the double-checked read, and releasing it', async () => {
    // Every command the client sends, by name (ioredis sends each one through sendCommand).
    const client = connection.client as Redis;
    const sent: string[] = [];
    const send = client.sendCommand.bind(client);
    client.sendCommand = (command, stream) => {
      sent.push(command.name);
      return send(command, stream);
    };
    try {
      const obtained = await coordinator.obtain('k-trips', async () => token('trips', nowSeconds + 300), usable);
      assert.deepEqual(obtained, { token: token('trips', nowSeconds + 300), mintedHere: true });
    } finally {
      client.sendCommand = send;
    }
    assert.deepEqual(sent, ['evalsha', 'evalsha']);
    assert.equal(await connection.client.exists('mc:lock:k-trips'), 0, 'the lock is released');
  });

  it('what the cache holds under the lock is not a token (corrupt, or written by something else): mints', async () => {
    await connection.client.set('mc:t:k-corrupt', '{"token":42}', 'PX', 60_000);
    let mints = 0;
    const obtained = await coordinator.obtain('k-corrupt', async () => {
      mints++;
      return token('over-corrupt', nowSeconds + 300);
    }, usable);
    assert.equal(mints, 1);
    assert.deepEqual(obtained, { token: token('over-corrupt', nowSeconds + 300), mintedHere: true });
  });

  it('another replica holds the lock: waits for its token instead of minting', async () => {
    await connection.client.set('mc:lock:k-held', 'someone-else', 'PX', 3000);
    setTimeout(() => void cache.set('k-held', token('holder', nowSeconds + 300), 240), 50);
    let mints = 0;
    const obtained = await coordinator.obtain('k-held', async () => {
      mints++;
      return token('duplicate', nowSeconds + 300);
    }, usable);
    assert.equal(mints, 0);
    assert.deepEqual(obtained, { token: token('holder', nowSeconds + 300), mintedHere: false });
  });
});
