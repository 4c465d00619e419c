import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connection.js';

/** A Lua script sent by its SHA-1, so a request carries 40 bytes instead of the script's text. */
export interface RedisScript {
  readonly source: string;
  readonly sha1: string;
}

export function redisScript(source: string): RedisScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * EVALSHA, loading the script with EVAL only when the server does not know it yet (after a restart or failover).
 * `keys` is one key or several; on a Redis Cluster several keys must share a hash slot.
 */
export async function runRedisScript(client: RedisClient, script: RedisScript, keys: string | readonly string[], args: readonly string[]): Promise<unknown> {
  const named = typeof keys === 'string' ? [keys] : keys;
  try {
    return await client.evalsha(script.sha1, named.length, ...named, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script.source, named.length, ...named, ...args);
  }
}
