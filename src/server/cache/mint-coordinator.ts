import { randomUUID } from 'node:crypto';
import { REDIS_UNAVAILABLE, type RedisConnection } from './redis-connection.js';
import { redisScript, runRedisScript } from './redis-script.js';
import { parseCachedToken, type RedisTokenCache } from './redis-token-cache.js';
import { CACHE_MISS, type CacheLookup, type CachedToken } from './token-cache.js';

export interface Obtained {
  readonly token: CachedToken;
  /** True only for the request that minted; requests that shared its result report a cache hit. */
  readonly mintedHere: boolean;
}

/** Makes concurrent requests for the same cache key mint once. */
export interface MintCoordinator {
  /**
   * `usable` says whether a token another request put in the cache may be handed out instead of minting
   * (the caller's refresh margin); default: any cached token.
   */
  obtain(cacheKey: string, mint: () => Promise<CachedToken>, usable?: (token: CachedToken) => boolean): Promise<Obtained>;
}

/** Collapses concurrent mints for one key inside this process: the first mints, the others share it. */
export class LocalMintCoordinator implements MintCoordinator {
  private readonly inflight = new Map<string, Promise<CachedToken>>();

  async obtain(cacheKey: string, mint: () => Promise<CachedToken>): Promise<Obtained> {
    const pending = this.inflight.get(cacheKey);
    if (pending !== undefined) return { token: await pending, mintedHere: false };
    const mine = mint().finally(() => this.inflight.delete(cacheKey));
    this.inflight.set(cacheKey, mine);
    return { token: await mine, mintedHere: true };
  }
}

export interface RedisMintCoordinatorOptions {
  /** How long the lock holder may take before another replica may mint; longer than any mint. */
  readonly lockTtlMs?: number;
  /** How long a replica that lost the lock waits for the winner's token before minting itself. */
  readonly waitMs?: number;
  readonly pollMs?: number;
}

const RELEASE_SCRIPT = redisScript("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end");

/**
 * Takes the lock (KEYS[1], owner ARGV[1], for ARGV[2] ms) and, when it was taken, reads the cached token (KEYS[2])
 * in the same round trip: `{1, token or nil}` taken, `{0}` held by another. Atomic, so the double-checked read
 * sees everything a peer wrote before it released the lock.
 */
const LOCK_AND_READ_SCRIPT = redisScript(
  "if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {1, redis.call('GET', KEYS[2])} end return {0}",
);

/** What taking the lock found: taken (with what the cache held), held by another replica, or Redis unusable. */
type LockAttempt = { readonly taken: true; readonly cached: CacheLookup } | { readonly taken: false } | typeof REDIS_UNAVAILABLE;

/**
 * Collapses concurrent mints across replicas with a short Redis lock (SET NX PX) on top of the in-process
 * collapse. A replica that loses waits briefly for the winner's token to appear in the cache, then mints
 * itself rather than fail: a slow or crashed winner costs a duplicate token, never an error.
 */
export class RedisMintCoordinator implements MintCoordinator {
  private readonly local = new LocalMintCoordinator();
  private readonly lockTtlMs: number;
  private readonly waitMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly connection: RedisConnection,
    private readonly cache: RedisTokenCache,
    options: RedisMintCoordinatorOptions = {},
  ) {
    this.lockTtlMs = options.lockTtlMs ?? 3000;
    this.waitMs = options.waitMs ?? 500;
    this.pollMs = options.pollMs ?? 20;
  }

  obtain(cacheKey: string, mint: () => Promise<CachedToken>, usable: (token: CachedToken) => boolean = () => true): Promise<Obtained> {
    let sharedFromPeer = false;
    return this.local
      .obtain(cacheKey, async () => {
        const lockKey = `${this.connection.keyPrefix}lock:${cacheKey}`;
        const owner = randomUUID();
        const attempt = await this.lock(lockKey, owner, cacheKey);
        if (attempt === REDIS_UNAVAILABLE || attempt.taken) {
          try {
            // Double-checked: the caller read the cache before the lock, and a peer may have minted, cached and
            // released the lock in between. Without this second read, that peer's token would be minted again.
            if (attempt !== REDIS_UNAVAILABLE && attempt.cached.status === 'hit' && usable(attempt.cached.value)) {
              sharedFromPeer = true;
              return attempt.cached.value;
            }
            return await mint();
          } finally {
            if (attempt !== REDIS_UNAVAILABLE) await this.connection.attempt((client) => runRedisScript(client, RELEASE_SCRIPT, lockKey, [owner]));
          }
        }
        const deadline = Date.now() + this.waitMs;
        while (Date.now() < deadline && this.connection.up) {
          await new Promise((resolve) => setTimeout(resolve, this.pollMs));
          const peer = await this.cache.get(cacheKey);
          // The entry being refreshed may still be there: only a usable token ends the wait.
          if (peer.status === 'hit' && usable(peer.value)) {
            sharedFromPeer = true;
            return peer.value;
          }
        }
        return mint();
      })
      .then((obtained) => (sharedFromPeer ? { token: obtained.token, mintedHere: false } : obtained));
  }

  /**
   * Takes the lock and, once taken, reads the cache. One round trip (a script) on a single Redis or Sentinel; on a
   * Cluster the lock and the token live in different hash slots, which one script may not touch, so it is SET NX and
   * then GET.
   */
  private async lock(lockKey: string, owner: string, cacheKey: string): Promise<LockAttempt> {
    if (this.connection.client.isCluster) {
      const acquired = await this.connection.attempt((client) => client.set(lockKey, owner, 'PX', this.lockTtlMs, 'NX'));
      if (acquired === REDIS_UNAVAILABLE) return REDIS_UNAVAILABLE;
      if (acquired !== 'OK') return { taken: false };
      const cached = await this.cache.get(cacheKey);
      // The lock is ours even when the read failed: carry on as after a miss (mint, then release).
      return { taken: true, cached: cached.status === 'error' ? CACHE_MISS : cached };
    }
    const reply = await this.connection.attempt((client) =>
      runRedisScript(client, LOCK_AND_READ_SCRIPT, [lockKey, this.cache.redisKey(cacheKey)], [owner, String(this.lockTtlMs)]),
    );
    if (reply === REDIS_UNAVAILABLE) return REDIS_UNAVAILABLE;
    if (!Array.isArray(reply) || reply[0] !== 1) return { taken: false };
    const value = parseCachedToken(typeof reply[1] === 'string' ? reply[1] : null);
    return { taken: true, cached: value === undefined ? CACHE_MISS : { status: 'hit', value } };
  }
}
