import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Cluster, Redis } from 'ioredis';
import { REDIS_UNAVAILABLE, type RedisClient, type RedisConnection } from '../cache/redis-connection.js';
import type { DenyList } from './deny-list.js';
import type { RedisDenyStore } from './redis-deny-store.js';

export interface DenySync {
  /** Re-reads the shared denies now (serialized: overlapping calls coalesce into one more read). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps a replica's shared denies current: a dedicated subscriber connection on the changes channel re-reads on
 * every announcement and on every (re)connection, and a poll re-reads anyway every `pollMs` in case a message was
 * lost. None of it is on the exchange's path: an exchange reads the DenyList's snapshot in memory.
 */
export function startDenySync(options: {
  readonly connection: RedisConnection;
  readonly store: RedisDenyStore;
  readonly list: DenyList;
  readonly pollMs: number;
  readonly logger: Logger;
}): DenySync {
  const { connection, store, list, logger } = options;
  const warned = new Set<string>();
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  async function readOnce(): Promise<void> {
    const shared = await store.read();
    // Redis down: the last list read stays in force (fail closed on known denies).
    if (shared === REDIS_UNAVAILABLE || closed) return;
    for (const entry of shared.malformed) {
      // Warn once per distinct malformed entry, not once per poll.
      const mark = createHash('sha256').update(`${entry.field}\n${entry.problem}`).digest('base64url');
      if (warned.has(mark)) continue;
      warned.add(mark);
      logger.warn({ denyField: entry.field.slice(0, 80), problem: entry.problem.slice(0, 300) }, 'ignoring a malformed deny entry in Redis');
    }
    list.replaceShared(shared.denies);
  }

  function refresh(): Promise<void> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await readOnce();
        } while (again && !closed);
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  // A subscribed connection can run nothing else: the subscriber is a second connection to the same Redis.
  // It subscribes again on every 'ready' below, where a failure is caught. ioredis's own resubscription is off: it
  // sends SUBSCRIBE from its ready handler without a catch, so a connection closed in that moment (a restart, a
  // shutdown) rejected it with "Stream isn't writeable" as an unhandled rejection, which a test run saw once.
  const { client } = connection;
  const subscriber: RedisClient = client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate({ autoResubscribe: false });
  subscriber.on('error', () => undefined);
  subscriber.on('ready', () => {
    subscriber.subscribe(store.channel).then(
      () => void refresh(),
      () => undefined,
    );
  });
  subscriber.on('message', () => void refresh());
  const poll = setInterval(() => void refresh(), options.pollMs);
  poll.unref();

  return {
    refresh,
    async close() {
      closed = true;
      clearInterval(poll);
      subscriber.disconnect();
    },
  };
}
