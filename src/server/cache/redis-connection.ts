import { createRequire } from 'node:module';
import type { Cluster, ClusterNode, Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/** The commands the broker uses, common to a single Redis, Sentinel-managed Redis and Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Returned instead of a value when Redis could not be used: the caller carries on without it. */
export const REDIS_UNAVAILABLE: unique symbol = Symbol('redis-unavailable');

export interface RedisSettings {
  readonly url?: string | undefined;
  readonly sentinels?: readonly { readonly host: string; readonly port: number }[] | undefined;
  readonly sentinelName?: string | undefined;
  readonly cluster?: readonly { readonly host: string; readonly port: number }[] | undefined;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
}

export interface RedisConnectionEvents {
  onStateChange?(up: boolean): void;
  onCommandError?(): void;
}

const PROBE_INTERVAL_MS = 1000;

function baseOptions(settings: RedisSettings): RedisOptions {
  return {
    // Fail fast while disconnected: a queued command would make requests wait for Redis to come back.
    enableOfflineQueue: false,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: Math.max(1000, settings.commandTimeoutMs * 10),
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    lazyConnect: false,
  };
}

/**
 * ioredis, loaded when the first client is built: about 20 MB of resident memory that a broker without
 * `cache.redis` (one replica, in-memory cache) should not carry.
 */
function ioredis(): typeof import('ioredis') {
  return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
}

/** Builds an ioredis client for a URL (redis:// or rediss://), a Sentinel group or a Cluster. */
export function createRedisClient(settings: RedisSettings): RedisClient {
  const options = baseOptions(settings);
  const { Cluster, Redis } = ioredis();
  if (settings.cluster !== undefined && settings.cluster.length > 0) {
    return new Cluster(settings.cluster as ClusterNode[], {
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      redisOptions: options,
    });
  }
  if (settings.sentinels !== undefined && settings.sentinels.length > 0) {
    return new Redis({ ...options, sentinels: [...settings.sentinels], name: settings.sentinelName ?? 'mymaster' });
  }
  return new Redis(settings.url ?? 'redis://127.0.0.1:6379/0', options);
}

/**
 * Wraps a Redis client with a health state. While Redis is down every operation returns REDIS_UNAVAILABLE at
 * once, so a request waits at most one command timeout for Redis (the command that discovered the failure).
 * The state changes on connection events and on a PING probe, and is logged once per change.
 */
export class RedisConnection {
  private healthy = false;
  private probe: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly client: RedisClient,
    readonly keyPrefix: string,
    private readonly logger: Logger,
    private readonly events: RedisConnectionEvents = {},
  ) {
    client.on('ready', () => this.setHealthy(true, 'connected'));
    client.on('close', () => this.setHealthy(false, 'connection closed'));
    client.on('end', () => this.setHealthy(false, 'connection ended'));
    // ioredis emits 'error' on every failed reconnect; the state change is what gets logged.
    client.on('error', () => undefined);
    this.events.onStateChange?.(false);
  }

  get up(): boolean {
    return this.healthy;
  }

  /** Resolves once connected, or rejects after `timeoutMs`; for start-up logs and tests. */
  waitUntilUp(timeoutMs: number): Promise<void> {
    if (this.healthy) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Stop polling too: a leaked interval would keep the process alive after a failed wait.
        clearInterval(poll);
        reject(new Error(`Redis not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const poll = setInterval(() => {
        if (this.healthy) {
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        }
      }, 10);
      timer.unref();
    });
  }

  /** Runs one Redis operation, or returns REDIS_UNAVAILABLE without waiting when Redis is known to be down. */
  async attempt<T>(operation: (client: RedisClient) => Promise<T>): Promise<T | typeof REDIS_UNAVAILABLE> {
    if (!this.healthy) return REDIS_UNAVAILABLE;
    try {
      return await operation(this.client);
    } catch (error) {
      this.events.onCommandError?.();
      // A reply error (e.g. WRONGTYPE on a colliding key) comes from a healthy server: fail this operation only.
      if (!(error instanceof Error && error.name === 'ReplyError')) {
        this.setHealthy(false, error instanceof Error ? error.message : String(error));
      }
      return REDIS_UNAVAILABLE;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probe) clearInterval(this.probe);
    this.client.disconnect();
  }

  private setHealthy(value: boolean, why: string): void {
    if (this.closed || value === this.healthy) return;
    this.healthy = value;
    this.events.onStateChange?.(value);
    if (value) {
      this.logger.info({ redis: 'up' }, 'Redis is reachable: the shared token cache is in use');
      if (this.probe) clearInterval(this.probe);
      this.probe = undefined;
    } else {
      this.logger.warn({ redis: 'down', why }, 'Redis is unavailable: minting without the shared cache until it recovers');
      this.startProbe();
    }
  }

  /** A command can time out on an open socket (a stalled server); only a PING tells when it answers again. */
  private startProbe(): void {
    if (this.probe) return;
    this.probe = setInterval(() => {
      if (this.client.status !== 'ready') return; // reconnection will emit 'ready'
      this.client.ping().then(
        () => this.setHealthy(true, 'ping answered'),
        () => undefined,
      );
    }, PROBE_INTERVAL_MS);
    this.probe.unref();
  }
}
