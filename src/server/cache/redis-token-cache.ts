import { REDIS_UNAVAILABLE, type RedisConnection } from './redis-connection.js';
import { CACHE_ERROR, CACHE_MISS, type CacheLookup, type CachedToken, type TokenCache, type TokenHolder } from './token-cache.js';
import type { Cluster, Redis } from 'ioredis';

function parseHolder(value: unknown): TokenHolder | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { issuer, namespace, serviceAccount, workflow } = value as Record<string, unknown>;
  if (typeof issuer !== 'string') return undefined;
  const optional = (field: unknown) => (typeof field === 'string' ? field : undefined);
  const holder: { issuer: string; namespace?: string; serviceAccount?: string; workflow?: string } = { issuer };
  if (optional(namespace) !== undefined) holder.namespace = namespace as string;
  if (optional(serviceAccount) !== undefined) holder.serviceAccount = serviceAccount as string;
  if (optional(workflow) !== undefined) holder.workflow = workflow as string;
  return holder;
}

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
      const holder = parseHolder(value.holder);
      return { token: value.token, expiresAt: value.expiresAt, jti: value.jti, policies: value.policies, ...(holder !== undefined && { holder }) };
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

  /** The Redis key holding a cache key's token (`{prefix}t:{hash}`): for a script that reads it beside another key. */
  redisKey(key: string): string {
    return `${this.connection.keyPrefix}t:${key}`;
  }

  async get(key: string): Promise<CacheLookup> {
    const text = await this.connection.attempt((client) => client.get(this.redisKey(key)));
    if (text === REDIS_UNAVAILABLE) return CACHE_ERROR;
    const value = parseCachedToken(text);
    return value === undefined ? CACHE_MISS : { status: 'hit', value };
  }

  async set(key: string, value: CachedToken, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0) return;
    // A dropped write costs one extra mint later; the connection has already logged the failure.
    await this.connection.attempt((client) => client.set(this.redisKey(key), JSON.stringify(value), 'PX', Math.max(1, Math.round(ttlSeconds * 1000))));
  }

  async takeWhere(matches: (token: CachedToken) => boolean): Promise<CachedToken[] | undefined> {
    const pattern = `${this.connection.keyPrefix}t:*`;
    const taken = await this.connection.attempt(async (client) => {
      // SCAN walks one node: on a Cluster, every master in turn.
      const nodes: Redis[] = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
      const found: CachedToken[] = [];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          for (const key of keys) {
            const value = parseCachedToken(await node.get(key));
            if (value !== undefined && matches(value)) {
              await node.del(key);
              found.push(value);
            }
          }
        } while (cursor !== '0');
      }
      return found;
    });
    return taken === REDIS_UNAVAILABLE ? undefined : taken;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
