import { randomUUID } from 'node:crypto';
import { REDIS_UNAVAILABLE, type RedisConnection } from './redis-connection.js';
import { redisScript, runRedisScript } from './redis-script.js';
import type { CachedToken, TokenCache } from './token-cache.js';

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
    private readonly cache: TokenCache,
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
        const acquired = await this.connection.attempt((client) => client.set(lockKey, owner, 'PX', this.lockTtlMs, 'NX'));
        if (acquired === 'OK' || acquired === REDIS_UNAVAILABLE) {
          try {
            if (acquired === 'OK') {
              // Double-checked: the caller read the cache before the lock, and a peer may have minted, cached and
              // released the lock in between. Without this second read, that peer's token would be minted again.
              const peer = await this.cache.get(cacheKey);
              if (peer.status === 'hit' && usable(peer.value)) {
                sharedFromPeer = true;
                return peer.value;
              }
            }
            return await mint();
          } finally {
            if (acquired === 'OK') await this.connection.attempt((client) => runRedisScript(client, RELEASE_SCRIPT, lockKey, [owner]));
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
}
