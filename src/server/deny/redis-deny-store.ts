import { REDIS_UNAVAILABLE, type RedisConnection } from '../cache/redis-connection.js';
import { MAX_DENIES, parseStoredDeny, type Deny } from './deny.js';
import { denyInForce } from './deny-match.js';
import type { AddResult, DenyStore, SharedDenies } from './deny-store.js';


/**
 * The shared denies in Redis: one hash `{prefix}deny:entries` (field: deny id, value: the deny as JSON), and a
 * pub/sub channel `{prefix}deny:changes` on which every change is announced so replicas re-read at once. The hash
 * has no TTL: an expired deny refuses nothing and is pruned on the next add.
 */
export class RedisDenyStore implements DenyStore {
  readonly key: string;
  readonly channel: string;

  constructor(private readonly connection: RedisConnection) {
    this.key = `${connection.keyPrefix}deny:entries`;
    this.channel = `${connection.keyPrefix}deny:changes`;
  }

  /** Every entry; an entry that is not exactly a deny is reported, never enforced (it could match anything). */
  async read(): Promise<SharedDenies | typeof REDIS_UNAVAILABLE> {
    const entries = await this.connection.attempt((client) => client.hgetall(this.key));
    if (entries === REDIS_UNAVAILABLE) return REDIS_UNAVAILABLE;
    const denies: Deny[] = [];
    const malformed: { field: string; problem: string }[] = [];
    for (const [field, text] of Object.entries(entries)) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        malformed.push({ field, problem: 'not JSON' });
        continue;
      }
      const parsed = parseStoredDeny(value);
      if (!parsed.ok) malformed.push({ field, problem: parsed.problems.map((p) => `${p.field}: ${p.message}`).join('; ') });
      else if (parsed.deny.id !== field) malformed.push({ field, problem: 'its id differs from its field' });
      else denies.push(parsed.deny);
    }
    return { denies, malformed };
  }

  /** Stores a deny and announces it; expired entries are pruned first, and at most MAX_DENIES stay in force. */
  async add(deny: Deny, nowMs: number): Promise<AddResult> {
    const current = await this.read();
    if (current === REDIS_UNAVAILABLE) return REDIS_UNAVAILABLE;
    const expired = current.denies.filter((entry) => !denyInForce(entry, nowMs)).map((entry) => entry.id);
    if (current.denies.some((entry) => entry.id === deny.id && denyInForce(entry, nowMs))) return 'exists';
    if (current.denies.length - expired.length >= MAX_DENIES) return 'too_many';
    const stored = await this.connection.attempt(async (client) => {
      if (expired.length > 0) await client.hdel(this.key, ...expired);
      await client.hset(this.key, deny.id, JSON.stringify(deny));
      return client.publish(this.channel, `added ${deny.id}`);
    });
    return stored === REDIS_UNAVAILABLE ? REDIS_UNAVAILABLE : 'added';
  }

  /** Removes a deny by id and announces it; the removed deny, or undefined when there was none. */
  async remove(id: string): Promise<Deny | undefined | typeof REDIS_UNAVAILABLE> {
    const text = await this.connection.attempt((client) => client.hget(this.key, id));
    if (text === REDIS_UNAVAILABLE) return REDIS_UNAVAILABLE;
    if (text === null) return undefined;
    const removed = await this.connection.attempt(async (client) => {
      const count = await client.hdel(this.key, id);
      await client.publish(this.channel, `removed ${id}`);
      return count;
    });
    if (removed === REDIS_UNAVAILABLE) return REDIS_UNAVAILABLE;
    if (removed === 0) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    const parsed = parseStoredDeny(value);
    return parsed.ok ? parsed.deny : { id, match: {}, until: undefined, reason: '(malformed entry)', createdAt: 0, createdBy: '' };
  }
}
