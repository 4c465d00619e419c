import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Redis } from 'ioredis';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { eventually, metricValue, rawRedis, startBrokers, type BrokerInstance, type MultiBroker } from '../support/multi-broker.js';
import { addDeny, listDenies, removeDeny, type DenyOperations } from '../../src/server/deny/deny-operations.js';
import { RedisAuditStream } from '../../src/server/observability/audit-stream.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

const skip = redisUnavailableReason();

/** The deny operations of one replica, as its admin endpoint would use them. */
function operationsOf(instance: BrokerInstance, now: () => number, auditKey?: string): DenyOperations {
  const { broker } = instance;
  return {
    store: broker.denyStore,
    logger: instance.logs.logger,
    now,
    afterChange: () => broker.refreshDenies(),
    ...(auditKey !== undefined && broker.redis !== undefined && { auditStream: new RedisAuditStream(broker.redis, auditKey, 1000) }),
  };
}

describe('shared denies in Redis, across replicas', { skip }, () => {
  let server: RedisServer;
  let raw: Redis;

  before(async () => {
    server = await startRedisServer();
    raw = rawRedis(server.url);
  });
  after(async () => {
    raw.disconnect();
    await server.stop();
  });

  async function brokers(t: TestContext, extra: (prefix: string) => Partial<BrokerConfigInput> = () => ({})): Promise<{ b: MultiBroker; prefix: string }> {
    const prefix = `deny-${randomUUID()}:`;
    const b = await startBrokers({
      count: 2,
      // Poll far beyond the test's bounds: what reaches the other replica in time came through pub/sub.
      config: () => ({ cache: { redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 2000 } }, denies: { static: [], pollSeconds: 300 }, ...extra(prefix) }),
    });
    t.after(() => b.close());
    // Each replica has subscribed (its first read is done) before the test adds anything.
    for (const instance of b.instances) await instance.broker.refreshDenies();
    await eventually(async () => (await raw.pubsub('NUMSUB', `${prefix}deny:changes`))[1] === 2, 5000);
    return { b, prefix };
  }

  it('a deny added through one replica refuses on the other within 1 s, cached token included; removed, it serves again', async (t) => {
    const { b, prefix } = await brokers(t, (p) => ({ audit: { redisStream: { key: `${p}audit`, maxLen: 1000 } } }));
    const [one, two] = b.instances as [BrokerInstance, BrokerInstance];
    const subject = await b.issuer.projectedToken({ podUid: 'pod-d1' });
    const before = await two.exchange(subject).expect(200);

    const added = await addDeny(operationsOf(one, b.clock.now, `${prefix}audit`), { match: { namespace: 'payments', serviceAccount: 'argo-runner' }, until: '30m', reason: 'INC-9 compromised runner' }, 'alice');
    assert.equal(added.status, 'added');
    if (added.status !== 'added') return;
    const started = performance.now();
    const applied = await eventually(() => two.broker.denies.snapshot.sharedDenies.some((d) => d.id === added.deny.id), 1000);
    assert.ok(applied, `the deny reached the other replica within 1 s (waited ${Math.round(performance.now() - started)} ms)`);

    const refused = await two.exchange(subject).expect(403);
    assert.deepEqual(refused.body, { error: 'access_denied', error_description: 'An operator has denied tokens to this workload: INC-9 compromised runner', reason: 'denied' });
    const line = two.logs.lines.filter((l) => l.reason === 'denied').at(-1);
    assert.equal((line?.facts as Record<string, unknown>).denyId, added.deny.id);
    // Another workload is not concerned.
    await two.exchange(await b.issuer.projectedToken({ serviceAccount: 'argo-other', podUid: 'pod-d2' })).expect(200);

    // Audit: a log line on the replica that made the change, and a record on the Redis audit stream.
    const auditLine = one.logs.lines.find((l) => l.audit === true && l.event === 'deny_added');
    assert.equal(auditLine?.denyId, added.deny.id);
    assert.equal(auditLine?.actor, 'alice');
    const stream = await raw.xrange(`${prefix}audit`, '-', '+');
    const records = stream.map(([, fields]) => JSON.parse(fields[1] as string) as Record<string, unknown>);
    assert.deepEqual(records.filter((r) => r.event === 'deny_added').map((r) => [r.denyId, r.reason, r.actor]), [[added.deny.id, 'INC-9 compromised runner', 'alice']]);

    const metrics = (await two.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_deny_changes_total{change="added"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_denies_active{source="shared"}'), 1);
    assert.equal(metricValue(metrics, 'token_broker_deny_hits_total{kind="namespace+serviceAccount"}'), 1);

    const removed = await removeDeny(operationsOf(one, b.clock.now, `${prefix}audit`), added.deny.id, 'bob');
    assert.equal(removed.status, 'removed');
    assert.ok(await eventually(() => two.broker.denies.snapshot.sharedDenies.length === 0, 1000), 'the removal reached the other replica within 1 s');
    const again = await two.exchange(subject).expect(200);
    assert.equal(again.body.access_token, before.body.access_token, 'the cached token is served again once the deny is gone');
    const after = (await raw.xrange(`${prefix}audit`, '-', '+')).map(([, fields]) => JSON.parse(fields[1] as string) as Record<string, unknown>);
    assert.deepEqual(after.filter((r) => r.event === 'deny_removed').map((r) => [r.denyId, r.actor]), [[added.deny.id, 'bob']]);
  });

  it('a jti deny stops the cache serving that token on every replica: the workload gets a fresh one', async (t) => {
    const { b } = await brokers(t);
    const [one, two] = b.instances as [BrokerInstance, BrokerInstance];
    const subject = await b.issuer.projectedToken({ podUid: 'pod-j1' });
    const first = await one.exchange(subject).expect(200);
    const jti = decodeJwt(first.body.access_token).jti as string;
    assert.equal((await two.exchange(subject).expect(200)).body.access_token, first.body.access_token);

    const added = await addDeny(operationsOf(one, b.clock.now), { match: { jti }, until: '2h', reason: 'token pasted in a ticket' }, 'alice');
    assert.equal(added.status, 'added');
    assert.ok(await eventually(() => two.broker.denies.snapshot.sharedDenies.length === 1, 1000));
    const fresh = await two.exchange(subject).expect(200);
    assert.notEqual(fresh.body.access_token, first.body.access_token);
    assert.notEqual(decodeJwt(fresh.body.access_token).jti, jti);
    assert.equal((await one.exchange(subject).expect(200)).body.access_token, fresh.body.access_token, 'the fresh token is what the cache serves now');
  });

  it('while Redis is down the last shared list stays in force; a malformed entry is ignored with one warning', async (t) => {
    const { b, prefix } = await brokers(t);
    const [one, two] = b.instances as [BrokerInstance, BrokerInstance];
    // Entries nobody should trust: garbage, an empty match (would match everything), a reason with a newline.
    await raw.hset(`${prefix}deny:entries`, 'garbage', '{not json');
    await raw.hset(`${prefix}deny:entries`, 'everything', JSON.stringify({ id: 'everything', match: {}, reason: 'all', createdAt: 1, createdBy: 'x' }));
    await raw.hset(`${prefix}deny:entries`, 'forged', JSON.stringify({ id: 'forged', match: { namespace: 'payments' }, reason: 'a\nforged line', createdAt: 1, createdBy: 'x' }));
    const added = await addDeny(operationsOf(one, b.clock.now), { match: { serviceAccount: 'argo-ci' }, until: '1h', reason: 'frozen' }, 'alice');
    assert.equal(added.status, 'added');
    assert.ok(await eventually(() => two.broker.denies.snapshot.sharedDenies.length === 1, 1000));
    await two.broker.refreshDenies();
    const warnings = two.logs.lines.filter((l) => l.msg === 'ignoring a malformed deny entry in Redis').map((l) => l.denyField).sort();
    assert.deepEqual(warnings, ['everything', 'forged', 'garbage'], 'one warning per malformed entry, however often it is read');
    await two.exchange(await b.issuer.projectedToken({ serviceAccount: 'argo-runner', podUid: 'pod-m1' })).expect(200);

    await server.kill();
    assert.ok(await eventually(() => two.broker.redis?.up === false, 5000));
    await two.broker.refreshDenies();
    const refused = await two.exchange(await b.issuer.projectedToken({ serviceAccount: 'argo-ci', podUid: 'pod-m2' })).expect(403);
    assert.equal(refused.body.reason, 'denied');
    assert.equal((await listDenies(operationsOf(one, b.clock.now))), 'unavailable');
    await server.restart();
    assert.ok(await eventually(() => two.broker.redis?.up === true, 10_000));
    // Both replicas subscribed again on their own (ioredis's resubscription is off): announcements reach them.
    assert.ok(await eventually(async () => (await raw.pubsub('NUMSUB', `${prefix}deny:changes`))[1] === 2, 10_000), 'both subscribers are back');
    assert.ok(await eventually(() => one.broker.redis?.up === true, 10_000));
    const later = await addDeny(operationsOf(one, b.clock.now), { match: { namespace: 'billing' }, until: '1h', reason: 'after the restart' }, 'alice');
    assert.equal(later.status, 'added');
    if (later.status !== 'added') return;
    assert.ok(
      await eventually(() => two.broker.denies.snapshot.sharedDenies.some((deny) => deny.id === later.deny.id), 1000),
      'a deny added after the restart reached the other replica through pub/sub',
    );
  });

  it('expired denies refuse nothing, and are pruned when the next one is added', async (t) => {
    const { b, prefix } = await brokers(t);
    const [one, two] = b.instances as [BrokerInstance, BrokerInstance];
    const first = await addDeny(operationsOf(one, b.clock.now), { match: { namespace: 'payments' }, until: '90s', reason: 'short' }, 'alice');
    assert.equal(first.status, 'added');
    assert.ok(await eventually(() => two.broker.denies.snapshot.sharedDenies.length === 1, 1000));
    const subject = await b.issuer.projectedToken({ podUid: 'pod-e1', lifetimeSeconds: 7200 });
    await two.exchange(subject).expect(403);
    b.clock.advance(91);
    await two.exchange(await b.issuer.projectedToken({ podUid: 'pod-e1' })).expect(200);
    const next = await addDeny(operationsOf(one, b.clock.now), { match: { namespace: 'billing' }, until: '1h', reason: 'next' }, 'alice');
    assert.equal(next.status, 'added');
    if (next.status !== 'added') return;
    assert.deepEqual(await raw.hkeys(`${prefix}deny:entries`), [next.deny.id], 'the expired deny was pruned');
    assert.deepEqual(((await listDenies(operationsOf(one, b.clock.now))) as readonly { id: string }[]).map((d) => d.id), [next.deny.id]);
  });
});
