import { createServer, type Server } from 'node:http';
import supertest from 'supertest';
import { Redis } from 'ioredis';
import { createBroker, type Broker } from '../../src/server/broker.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet, type SigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { startStandInIssuer, type StandInIssuer } from '../fakes/stand-in-issuer.js';
import { defaultConfig, postExchange, SUBJECT_AUDIENCE } from './broker-harness.js';
import { createTestClock, type TestClock } from './clock.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import type { BrokerConfig, BrokerConfigInput } from '../../src/server/config/schema.js';

/**
 * Several broker replicas sharing one stand-in issuer, one clock, one signing key set and one Redis, as a
 * Deployment with N pods shares them. Each replica listens on its own loopback port and has its own logs.
 */
export interface BrokerInstance {
  readonly broker: Broker;
  readonly config: BrokerConfig;
  readonly logs: LogCapture;
  readonly http: ReturnType<typeof supertest>;
  /** POSTs an RFC 8693 form exchange of `subjectToken` with optional extra parameters. */
  exchange(subjectToken: string, extra?: Record<string, string>): supertest.Test;
}

export interface InstanceOptions {
  /** Replaces top-level parts of the shared configuration (shallow, like the harness). */
  readonly config?: (issuerUrl: string) => Partial<BrokerConfigInput>;
  /** Another signing key set (a key rotation); default: the shared one. */
  readonly signingKeys?: SigningKeySet;
}

export interface MultiBroker {
  readonly issuer: StandInIssuer;
  readonly clock: TestClock;
  readonly signingKeys: SigningKeySet;
  readonly instances: readonly BrokerInstance[];
  /** The instance serving request number `i` when requests go round-robin. */
  at(i: number): BrokerInstance;
  /** Starts one more replica on the same issuer, clock and Redis; waits until it is connected to Redis. */
  add(options?: InstanceOptions): Promise<BrokerInstance>;
  /** Every captured log line of every replica. */
  lines(): Record<string, unknown>[];
  /** Every raw log line of every replica, for leak checks. */
  raw(): string[];
  /** Marks the logs now; the returned function gives every replica's lines logged after the mark. */
  mark(): () => Record<string, unknown>[];
  close(): Promise<void>;
}

export interface MultiBrokerOptions {
  readonly count: number;
  /** Configuration shared by every replica, on top of the harness default (shallow). */
  readonly config: (issuerUrl: string) => Partial<BrokerConfigInput>;
  /** How long each replica may take to connect to Redis. */
  readonly redisReadyMs?: number;
}

/** Starts `count` replicas; each is connected to Redis (when configured) before this resolves. */
export async function startBrokers(options: MultiBrokerOptions): Promise<MultiBroker> {
  const clock = createTestClock();
  const issuer = await startStandInIssuer({ audience: SUBJECT_AUDIENCE, now: clock.now });
  const signingKeys = staticSigningKeySet([await generateSigningKey('ES256', clock.now())]);
  const instances: BrokerInstance[] = [];
  const servers: Server[] = [];

  async function add(instanceOptions: InstanceOptions = {}): Promise<BrokerInstance> {
    const input = { ...defaultConfig(issuer.issuer), ...options.config(issuer.issuer), ...instanceOptions.config?.(issuer.issuer) };
    const validation = validateConfig(input);
    if (!validation.ok) throw new Error(`test config invalid: ${JSON.stringify(validation.problems)}`);
    const config = validation.config;
    const logs = captureLogs();
    const broker = createBroker(config, { logger: logs.logger, signingKeys: instanceOptions.signingKeys ?? signingKeys, now: clock.now });
    const server = createServer(broker.app);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const http = supertest(server);
    const instance: BrokerInstance = {
      broker,
      config,
      logs,
      http,
      exchange: (subjectToken, extra) => postExchange(http, subjectToken, extra),
    };
    instances.push(instance);
    // As `serve` does: issuer keys loaded before traffic, so /readyz reflects only what a test changes.
    await broker.warmUp();
    if (broker.redis !== undefined) await broker.redis.waitUntilUp(options.redisReadyMs ?? 5000);
    return instance;
  }

  for (let i = 0; i < options.count; i++) await add();

  return {
    issuer,
    clock,
    signingKeys,
    instances,
    at: (i) => instances[i % instances.length] as BrokerInstance,
    add,
    lines: () => instances.flatMap((instance) => instance.logs.lines),
    raw: () => instances.flatMap((instance) => instance.logs.raw),
    mark() {
      const lengths = new Map(instances.map((instance) => [instance, instance.logs.lines.length]));
      return () => instances.flatMap((instance) => instance.logs.lines.slice(lengths.get(instance) ?? 0));
    },
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      for (const instance of instances) await instance.broker.close();
      await issuer.close();
    },
  };
}

/** A plain client for looking at what the broker wrote; fails fast rather than queueing. */
export function rawRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
}

/** Audit log lines (audit: true) across the given lines. */
export function auditLines(lines: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.filter((line) => line.audit === true);
}

/** The `outcome` of every exchange log line ("exchange succeeded/failed/rejected"). */
export function exchangeOutcomes(lines: readonly Record<string, unknown>[]): string[] {
  return lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('exchange ')).map((line) => String(line.outcome));
}

/** The value of one sample in a Prometheus text exposition, or undefined when absent. */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/** Polls `condition` every 10 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

/** Runs `count` tasks with at most `concurrency` in flight; results in task order. */
export async function runBounded<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}
