import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { Redis } from 'ioredis';
import { startHarness, type Harness } from '../support/broker-harness.js';
import { freePort, redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { exchangeOutcomes, metricValue, rawRedis } from '../support/multi-broker.js';

// cache.redis.sentinels: the broker is given only the sentinel's address and must find the master through it
// (ioredis asks SENTINEL get-master-addr-by-name), then cache in and serve from that master.

const skip = redisUnavailableReason();
const MASTER_NAME = 'mymaster';

interface Sentinel {
  readonly port: number;
  /** What the sentinel answers to SENTINEL get-master-addr-by-name, once it answers. */
  readonly masterAddress: readonly string[];
  stop(): Promise<void>;
}

/** Asks the sentinel for the master's address; undefined while it does not answer yet. */
async function askMasterAddress(port: number): Promise<string[] | undefined> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const answer = await client.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME);
    return Array.isArray(answer) ? answer.map(String) : undefined;
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** One redis-server in sentinel mode on a free loopback port, monitoring the master with a quorum of 1. */
async function startSentinel(masterPort: number): Promise<Sentinel> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tb-sentinel-'));
  // Sentinel rewrites its configuration file (it records what it learns), so it lives in a directory of its own.
  const configFile = join(dir, 'sentinel.conf');
  writeFileSync(configFile, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 1`, ''].join('\n'));
  const child: ChildProcess = spawn('redis-server', [configFile, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  for (let attempt = 0; attempt < 400 && Date.now() < deadline; attempt++) {
    const address = await askMasterAddress(port);
    if (address !== undefined) return { port, masterAddress: address, stop };
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await stop();
  throw new Error(`redis-server --sentinel did not answer on ${port} within 10 s`);
}

describe('Redis Sentinel: the broker finds the master through the sentinel', { skip }, () => {
  let master: RedisServer;
  let sentinel: Sentinel;
  let raw: Redis;

  before(async () => {
    master = await startRedisServer();
    sentinel = await startSentinel(master.port);
    raw = rawRedis(master.url);
  });
  after(async () => {
    raw.disconnect();
    await sentinel.stop();
    await master.stop();
  });

  it('the sentinel names the master it monitors', () => {
    assert.deepEqual(sentinel.masterAddress, ['127.0.0.1', String(master.port)]);
  });

  it('a broker configured with only the sentinel caches in the master and serves the same token twice', async (t) => {
    const prefix = `sentinel-${randomUUID()}:`;
    const h: Harness = await startHarness({
      config: () => ({
        cache: {
          // No url: without the sentinel the broker would try redis://127.0.0.1:6379, not this master.
          redis: { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], sentinelName: MASTER_NAME, keyPrefix: prefix, commandTimeoutMs: 2000 },
        },
      }),
    });
    t.after(() => h.close());
    assert.equal(h.config.cache.redis?.url, undefined);
    assert.ok(h.broker.redis !== undefined, 'Redis is configured');
    await h.broker.redis.waitUntilUp(10_000);

    const subject = await h.issuer.projectedToken({ podUid: 'pod-sentinel' });
    const first = await h.exchange(subject).expect(200);
    const second = await h.exchange(subject).expect(200);
    assert.equal(second.body.access_token, first.body.access_token);
    assert.deepEqual(exchangeOutcomes(h.logs.lines), ['issued', 'cached']);

    const keys = await raw.keys(`${prefix}t:*`);
    assert.equal(keys.length, 1, 'one cached token on the master');
    const claims = decodeJwt(first.body.access_token as string);
    assert.deepEqual(JSON.parse((await raw.get(keys[0] as string)) as string), {
      token: first.body.access_token,
      expiresAt: claims.exp,
      jti: claims.jti,
      policies: ['payments-read', 'payments-write', 'status-read'],
    });

    const metrics = (await h.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_redis_up'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="miss"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="hit"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="error"}'), undefined);
  });
});
