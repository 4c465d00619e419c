import { REDIS_UNAVAILABLE, type RedisConnection } from './redis-connection.js';
import { CACHE_ERROR, CACHE_MISS, type CacheLookup, type CachedToken, type TokenCache } from './token-cache.js';

/** Reads a cached value back, refusing anything that is not exactly what `set` wrote. */
export function parseCachedToken(text: string | null): CachedToken | undefined {
  if (text === null) return undefined;
  try {
    const value = JSON.parse(text) as Partial<CachedToken>;
    if (
      typeof value.token === 'string' &&
      typeof value.expiresAt === 'number' &&
      typeof value.jti === 'string' &&
      Array.isArray(value.policies) &&
      value.policies.every((p) => typeof p === 'string')
    ) {
      return { token: value.token, expiresAt: value.expiresAt, jti: value.jti, policies: value.policies };
    }
  } catch {
    // A corrupt entry reads as a miss; the next mint overwrites it.
  }
  return undefined;
}

/**
 * The shared cache of minted tokens in Redis, so every replica hands the same workload the same token.
 * Keys are `{prefix}t:{hash}`; the Redis TTL is the token's remaining life minus the refresh margin.
 * Never throws: while Redis is down, reads miss and writes are dropped.
 */
export class RedisTokenCache implements TokenCache {
  constructor(private readonly connection: RedisConnection) {}

  private key(key: string): string {
    return `${this.connection.keyPrefix}t:${key}`;
  }

  async get(key: string): Promise<CacheLookup> {
    const text = await this.connection.attempt((client) => client.get(this.key(key)));
    if (text === REDIS_UNAVAILABLE) return CACHE_ERROR;
    const value = parseCachedToken(text);
    return value === undefined ? CACHE_MISS : { status: 'hit', value };
  }

  async set(key: string, value: CachedToken, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0) return;
    // A dropped write costs one extra mint later; the connection has already logged the failure.
    await this.connection.attempt((client) => client.set(this.key(key), JSON.stringify(value), 'PX', Math.max(1, Math.round(ttlSeconds * 1000))));
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
