import { describe, it, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { redisUnavailableReason, startRedisCluster } from '../support/redis-server.js';
import { auditLines, eventually, exchangeOutcomes, metricValue, startBrokers, type MultiBroker } from '../support/multi-broker.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

const unavailable = redisUnavailableReason();
const cluster = unavailable === undefined ? await startRedisCluster() : undefined;
if (unavailable === undefined && cluster === undefined && process.env.CI === 'true') {
  throw new Error('CI=true but the local redis-server could not form a 3-master cluster (redis-cli --cluster create)');
}
const skip =
  unavailable ?? (cluster === undefined ? 'the local redis-server could not form a 3-master cluster (redis-cli --cluster create failed)' : undefined);

describe('token exchange on a Redis Cluster (3 masters)', { skip }, () => {
  let raw: Cluster | undefined;
  after(async () => {
    raw?.disconnect();
    await cluster?.stop();
  });

  function rawCluster(): Cluster {
    raw ??= new Cluster(cluster?.nodes ?? [], { redisOptions: { maxRetriesPerRequest: 1 } });
    return raw;
  }

  /** Every key under `prefix` on every master (KEYS is per node in a cluster). */
  async function clusterKeys(prefix: string): Promise<string[]> {
    const client = rawCluster();
    await eventually(() => client.status === 'ready', 5000);
    const perNode = await Promise.all(client.nodes('master').map((node) => node.keys(`${prefix}*`)));
    return perNode.flat().sort();
  }

  async function brokers(t: TestContext, count: number, extra: (prefix: string) => Partial<BrokerConfigInput> = () => ({})) {
    const prefix = `cl-${randomUUID()}:`;
    const started: MultiBroker = await startBrokers({
      count,
      // A long command timeout: several replicas share this process's event loop (see redis-exchange.test.ts).
      config: () => ({ cache: { redis: { cluster: cluster?.nodes, keyPrefix: prefix, commandTimeoutMs: 2000 } }, ...extra(prefix) }),
      redisReadyMs: 10_000,
    });
    t.after(() => started.close());
    return { b: started, prefix };
  }

  it('exchanges, and the second request is a cache hit with the same token', async (t) => {
    const { b, prefix } = await brokers(t, 1, (p) => ({ audit: { redisStream: { key: `${p}audit`, maxLen: 1000 } } }));
    const one = b.at(0);
    const subject = await b.issuer.projectedToken({ podUid: 'cluster-pod' });
    const first = await one.exchange(subject).expect(200);
    const second = await one.exchange(subject).expect(200);
    assert.equal(second.body.access_token, first.body.access_token);
    assert.deepEqual(exchangeOutcomes(one.logs.lines), ['issued', 'cached']);

    const metrics = (await one.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_redis_up'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="miss"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="hit"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="error"}'), undefined);

    // The token, the rate-limit bucket and the audit stream, wherever their slots live.
    assert.equal(await eventually(async () => (await clusterKeys(prefix)).length === 3, 2000), true);
    const keys = await clusterKeys(prefix);
    assert.deepEqual(
      keys.map((key) => key.slice(prefix.length).split(':')[0]),
      ['audit', 'rl', 't'],
    );
    const tokenKey = keys.find((key) => key.startsWith(`${prefix}t:`)) as string;
    assert.equal(JSON.parse((await rawCluster().get(tokenKey)) as string).token, first.body.access_token);
    assert.equal(await rawCluster().xlen(`${prefix}audit`), 1);
  });

  it('a cold burst of 30 parallel requests over three replicas mints once (the lock works on a cluster)', async (t) => {
    const { b } = await brokers(t, 3);
    const subject = await b.issuer.projectedToken({ podUid: 'cluster-burst' });
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => b.at(i).exchange(subject)));
    assert.deepEqual(
      responses.map((r) => r.status),
      Array.from({ length: 30 }, () => 200),
    );
    assert.equal(new Set(responses.map((r) => r.body.access_token as string)).size, 1);
    const outcomes = exchangeOutcomes(b.lines());
    assert.equal(outcomes.filter((o) => o === 'issued').length, 1);
    assert.equal(outcomes.filter((o) => o === 'cached').length, 29);
    assert.equal(auditLines(b.lines()).length, 1);
    for (const instance of b.instances) assert.equal(instance.broker.redis?.up, true);
  });

  it('the mint rate limit works on a cluster and is shared by replicas', async (t) => {
    const { b } = await brokers(t, 3, () => ({ limits: { minting: { enabled: true, ratePerMinute: 60, burst: 2 } } }));
    const subject = await b.issuer.projectedToken({ podUid: 'cluster-limited' });
    const read = await b.at(0).exchange(subject, { scope: 'payments-read' }).expect(200);
    await b.at(1).exchange(subject, { scope: 'payments-write' }).expect(200);
    const refused = await b.at(2).exchange(subject, { scope: 'status-read' }).expect(429);
    assert.equal(refused.body.error, 'temporarily_unavailable');
    assert.equal(refused.body.reason, 'rate_limited');
    assert.equal(refused.headers['retry-after'], '1');
    // Cached answers do not count.
    for (let i = 0; i < 3; i++) {
      assert.equal((await b.at(i).exchange(subject, { scope: 'payments-read' }).expect(200)).body.access_token, read.body.access_token);
    }
    b.clock.advance(1);
    await b.at(0).exchange(subject, { scope: 'status-read' }).expect(200);
    assert.equal(auditLines(b.lines()).length, 3);
  });
});
