import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Redis } from 'ioredis';
import { generateSigningKey } from '../../src/server/mint/signing-key.js';
import { staticSigningKeySet } from '../../src/server/mint/signing-key-set.js';
import { defaultConfig } from '../support/broker-harness.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import {
  auditLines,
  eventually,
  exchangeOutcomes,
  metricValue,
  rawRedis,
  startBrokers,
  type MultiBroker,
} from '../support/multi-broker.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

const skip = redisUnavailableReason();

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

describe('token exchange with a shared Redis', { skip }, () => {
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

  /** Replicas on the shared server, each test under its own key prefix; closed when the test ends. */
  async function brokers(
    t: TestContext,
    count: number,
    extra: (prefix: string) => Partial<BrokerConfigInput> = () => ({}),
  ): Promise<{ brokers: MultiBroker; prefix: string }> {
    const prefix = `ex-${randomUUID()}:`;
    const started = await startBrokers({
      count,
      // One process hosts every replica here: on a loaded machine its event loop can stall for longer than
      // the default 100 ms, which would read as Redis being down. Fault tests cover the short timeout.
      config: () => ({ cache: { redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 2000 } }, ...extra(prefix) }),
    });
    t.after(() => started.close());
    return { brokers: started, prefix };
  }

  it('a miss mints and stores in Redis; a repeat is a hit with the same token', async (t) => {
    const { brokers: b, prefix } = await brokers(t, 1);
    const one = b.at(0);
    const subject = await b.issuer.projectedToken({ podUid: 'pod-1' });
    const first = await one.exchange(subject).expect(200);
    const second = await one.exchange(subject).expect(200);
    assert.equal(second.body.access_token, first.body.access_token);
    assert.deepEqual(exchangeOutcomes(one.logs.lines), ['issued', 'cached']);

    const keys = await raw.keys(`${prefix}t:*`);
    assert.equal(keys.length, 1);
    const stored = JSON.parse((await raw.get(keys[0] as string)) as string) as Record<string, unknown>;
    const claims = decodeJwt(first.body.access_token);
    assert.deepEqual(stored, {
      token: first.body.access_token,
      expiresAt: claims.exp,
      jti: claims.jti,
      policies: ['payments-read', 'payments-write', 'status-read'],
    });
    // Stored for the token's life (300 s) minus the refresh margin (60 s).
    const pttl = await raw.pttl(keys[0] as string);
    assert.ok(pttl > 239_000 && pttl <= 240_000, `PTTL ${pttl}`);

    // A new projected token of the same pod is the same workload: same cached token.
    const renewed = await b.issuer.projectedToken({ podUid: 'pod-1' });
    assert.notEqual(renewed, subject);
    assert.equal((await one.exchange(renewed).expect(200)).body.access_token, first.body.access_token);
    // Another pod is another workload.
    const other = await one.exchange(await b.issuer.projectedToken({ podUid: 'pod-2' })).expect(200);
    assert.notEqual(other.body.access_token, first.body.access_token);

    const metrics = (await one.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_redis_up'), 1);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="miss"}'), 2);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="hit"}'), 2);
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="error"}'), undefined);
    assert.equal(metricValue(metrics, 'token_broker_exchanges_total{outcome="issued",reason="ok",issuer="test-cluster"}'), 2);
    assert.equal(metricValue(metrics, 'token_broker_exchanges_total{outcome="cached",reason="ok",issuer="test-cluster"}'), 2);

    const ready = await one.http.get('/readyz').expect(200);
    assert.deepEqual(ready.body.checks.redis, { ok: true, detail: 'up' });
  });

  it('within the refresh margin a new token is minted (new jti), then that one is served', async (t) => {
    const { brokers: b } = await brokers(t, 1);
    const one = b.at(0);
    const subject = await b.issuer.projectedToken({ podUid: 'pod-refresh' });
    const first = await one.exchange(subject).expect(200);
    assert.equal(first.body.expires_in, 300);

    // 61 s of life left: more than refreshBeforeSeconds (60), still served.
    b.clock.advance(239);
    const before = await one.exchange(subject).expect(200);
    assert.equal(before.body.access_token, first.body.access_token);
    assert.equal(before.body.expires_in, 61);

    // 59 s left: inside the margin, so a fresh token, although Redis still holds the old one.
    b.clock.advance(2);
    const refreshed = await one.exchange(subject).expect(200);
    assert.notEqual(refreshed.body.access_token, first.body.access_token);
    assert.notEqual(decodeJwt(refreshed.body.access_token).jti, decodeJwt(first.body.access_token).jti);
    assert.equal(refreshed.body.expires_in, 300);

    const after = await one.exchange(subject).expect(200);
    assert.equal(after.body.access_token, refreshed.body.access_token);
    assert.deepEqual(exchangeOutcomes(one.logs.lines), ['issued', 'cached', 'issued', 'cached']);
    assert.equal(auditLines(one.logs.lines).length, 2);
    const metrics = (await one.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_cache_requests_total{result="stale"}'), 1);
  });

  it('a rule change or a key rotation changes the cache key; identical config and key share the token', async (t) => {
    const { brokers: b } = await brokers(t, 1);
    const subject = await b.issuer.projectedToken({ podUid: 'pod-rules' });
    const original = (await b.at(0).exchange(subject).expect(200)).body.access_token as string;

    // A replica with identical configuration and the same signing key: the token from Redis.
    const twin = await b.add();
    const fromTwin = await twin.exchange(subject).expect(200);
    assert.equal(fromTwin.body.access_token, original);
    assert.deepEqual(exchangeOutcomes(twin.logs.lines), ['cached']);

    // Rules that grant this workload exactly the same policies, but are not the same rules.
    const baseRules = defaultConfig('unused').rules;
    const changedRules = await b.add({
      config: () => ({ rules: [...baseRules, { name: 'unrelated', match: { namespaces: ['nowhere'] }, policies: ['other'] }] }),
    });
    const afterRuleChange = await changedRules.exchange(subject).expect(200);
    assert.notEqual(afterRuleChange.body.access_token, original);
    assert.equal(afterRuleChange.body.scope, 'payments-read payments-write status-read');
    assert.deepEqual(exchangeOutcomes(changedRules.logs.lines), ['issued']);

    // A replica that signs with another key (a rotation).
    const rotatedKeys = staticSigningKeySet([await generateSigningKey('ES256', b.clock.now() + 1000)]);
    const rotated = await b.add({ signingKeys: rotatedKeys });
    const afterRotation = await rotated.exchange(subject).expect(200);
    assert.notEqual(afterRotation.body.access_token, original);
    assert.notEqual(afterRotation.body.access_token, afterRuleChange.body.access_token);
    assert.equal(decodeProtectedHeader(afterRotation.body.access_token).kid, rotatedKeys.active()?.kid);
    assert.deepEqual(exchangeOutcomes(rotated.logs.lines), ['issued']);

    // Each keeps serving its own token; the original replica is not disturbed by the others.
    assert.equal((await b.at(0).exchange(subject).expect(200)).body.access_token, original);
    assert.equal((await changedRules.exchange(subject).expect(200)).body.access_token, afterRuleChange.body.access_token);
    assert.equal((await rotated.exchange(subject).expect(200)).body.access_token, afterRotation.body.access_token);
  });

  it('three replicas hand one workload the same token, with one audit record between them', async (t) => {
    const { brokers: b } = await brokers(t, 3);
    const subject = await b.issuer.projectedToken({ podUid: 'pod-round-robin' });
    const tokens: string[] = [];
    for (let i = 0; i < 9; i++) tokens.push((await b.at(i).exchange(subject).expect(200)).body.access_token as string);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(auditLines(b.lines()).length, 1);
    const outcomes = exchangeOutcomes(b.lines());
    assert.equal(outcomes.length, 9);
    assert.equal(outcomes.filter((o) => o === 'issued').length, 1);
    assert.equal(outcomes.filter((o) => o === 'cached').length, 8);
    for (const instance of b.instances) assert.equal(exchangeOutcomes(instance.logs.lines).length, 3);
  });

  it('a cold burst of 30 parallel requests over three replicas mints once', async (t) => {
    const { brokers: b } = await brokers(t, 3);
    const subject = await b.issuer.projectedToken({ podUid: 'pod-burst' });
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => b.at(i).exchange(subject)));
    assert.deepEqual(
      responses.map((r) => r.status),
      Array.from({ length: 30 }, () => 200),
    );
    assert.equal(new Set(responses.map((r) => r.body.access_token as string)).size, 1);
    const outcomes = exchangeOutcomes(b.lines());
    assert.equal(outcomes.length, 30);
    assert.equal(outcomes.filter((o) => o === 'issued').length, 1);
    assert.equal(outcomes.filter((o) => o === 'cached').length, 29);
    assert.equal(auditLines(b.lines()).length, 1);
  });

  it('a burst inside the refresh margin mints one new token, and nobody is handed the old one', async (t) => {
    const { brokers: b } = await brokers(t, 3);
    // Several rounds: the race between a replica's read and its lock depends on scheduling.
    for (let round = 0; round < 20; round++) {
      const subject = await b.issuer.projectedToken({ podUid: `pod-refresh-burst-${round}`, lifetimeSeconds: 86_400 });
      const old = (await b.at(round).exchange(subject).expect(200)).body.access_token as string;
      b.clock.advance(241); // 59 s left: inside the 60 s refresh margin, still in Redis
      const since = b.mark();
      const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => b.at(i).exchange(subject)));
      assert.deepEqual(
        responses.map((r) => r.status),
        Array.from({ length: 30 }, () => 200),
      );
      const tokens = responses.map((r) => r.body.access_token as string);
      assert.equal(tokens.filter((token) => token === old).length, 0, `round ${round}: no response carries the token being refreshed`);
      assert.equal(new Set(tokens).size, 1, `round ${round}: one new token for all`);
      assert.deepEqual(
        responses.map((r) => r.body.expires_in),
        Array.from({ length: 30 }, () => 300),
      );
      const outcomes = exchangeOutcomes(since());
      assert.equal(outcomes.filter((o) => o === 'issued').length, 1, `round ${round}: one mint`);
      assert.equal(auditLines(since()).length, 1);
    }
  });

  it('the mint rate limit is shared by replicas; cached answers do not count', async (t) => {
    const { brokers: b } = await brokers(t, 3, () => ({ limits: { minting: { enabled: true, ratePerMinute: 60, burst: 2 } } }));
    const subject = await b.issuer.projectedToken({ podUid: 'pod-limited' });
    // Distinct scopes are distinct tokens, so each is a mint for the same workload.
    const read = await b.at(0).exchange(subject, { scope: 'payments-read' }).expect(200);
    const write = await b.at(1).exchange(subject, { scope: 'payments-write' }).expect(200);
    assert.notEqual(read.body.access_token, write.body.access_token);

    const refused = await b.at(2).exchange(subject, { scope: 'status-read' }).expect(429);
    assert.deepEqual(refused.body, {
      error: 'temporarily_unavailable',
      error_description:
        'This workload asked for new tokens too often; retry after 1s. Re-presenting the same subject token is answered from the cache and does not count.',
      reason: 'rate_limited',
    });
    assert.equal(refused.headers['retry-after'], '1');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    // Another instance refuses too: one bucket across replicas.
    const refusedElsewhere = await b.at(0).exchange(subject, { audience: 'tyk-internal' }).expect(429);
    assert.equal(refusedElsewhere.body.reason, 'rate_limited');

    // Already-cached requests are still answered, on any replica, and do not count.
    for (let i = 0; i < 6; i++) {
      assert.equal((await b.at(i).exchange(subject, { scope: 'payments-read' }).expect(200)).body.access_token, read.body.access_token);
    }
    // Another pod of the same service account has its own bucket.
    await b.at(1).exchange(await b.issuer.projectedToken({ podUid: 'pod-limited-sibling' }), { scope: 'status-read' }).expect(200);

    // One second refills one mint.
    b.clock.advance(1);
    await b.at(2).exchange(subject, { scope: 'status-read' }).expect(200);
    assert.equal((await b.at(1).exchange(subject).expect(429)).body.reason, 'rate_limited');

    const outcomes = b.lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('exchange '));
    assert.equal(outcomes.filter((l) => l.reason === 'rate_limited' && l.outcome === 'rejected').length, 3);
    assert.equal(auditLines(b.lines()).length, 4);
  });

  it('streams one audit record per issued token to Redis, with no token in it or in any log', async (t) => {
    const { brokers: b, prefix } = await brokers(t, 2, (p) => ({ audit: { redisStream: { key: `${p}audit`, maxLen: 1000 } } }));
    const streamKey = `${prefix}audit`;
    const subjects = await Promise.all(['a', 'b', 'c'].map((pod) => b.issuer.projectedToken({ podUid: `pod-audit-${pod}` })));
    const issued: { subject: string; token: string }[] = [];
    for (const [i, subject] of subjects.entries()) {
      const res = await b.at(i).exchange(subject).expect(200);
      issued.push({ subject, token: res.body.access_token as string });
    }
    // Cached answers (on the other replica too) write no record.
    for (const [i, subject] of subjects.entries()) await b.at(i + 1).exchange(subject).expect(200);

    assert.equal(await eventually(async () => (await raw.xlen(streamKey)) >= 3, 2000), true, 'three records streamed');
    const entries = await raw.xrange(streamKey, '-', '+');
    assert.equal(entries.length, 3);
    const records = entries.map(([, fields]) => {
      assert.equal(fields.length, 2);
      assert.equal(fields[0], 'record');
      return JSON.parse(fields[1] as string) as Record<string, unknown>;
    });
    for (const { subject, token } of issued) {
      const claims = decodeJwt(token);
      const matching = records.filter((r) => r.jti === claims.jti);
      assert.equal(matching.length, 1, `one record for jti ${claims.jti}`);
      const record = matching[0] as Record<string, unknown>;
      assert.equal(record.event, 'token_issued');
      assert.deepEqual(record.policies, ['payments-read', 'payments-write', 'status-read']);
      assert.equal(record.expiresAt, claims.exp);
      assert.equal(record.accessTokenSha256, sha256(token));
      assert.equal(record.subjectTokenSha256, sha256(subject));
      assert.equal(record.subject, 'system:serviceaccount:payments:argo-runner');
    }

    const streamText = entries.map(([, fields]) => fields.join(' ')).join('\n');
    const logText = b.raw().join('\n');
    for (const { subject, token } of issued) {
      for (const secret of [token, subject, token.split('.')[2] as string, subject.split('.')[2] as string]) {
        assert.equal(streamText.includes(secret), false, 'no token in the audit stream');
        assert.equal(logText.includes(secret), false, 'no token in the logs');
      }
    }
  });

  it('/readyz stays 200 after Redis dies, with a redis check that says down', async (t) => {
    const own = await startRedisServer();
    t.after(() => own.stop());
    const b = await startBrokers({ count: 1, config: () => ({ cache: { redis: { url: own.url, keyPrefix: 'ready:' } } }) });
    t.after(() => b.close());
    const one = b.at(0);
    assert.deepEqual((await one.http.get('/readyz').expect(200)).body.checks.redis, { ok: true, detail: 'up' });
    await own.kill();
    assert.equal(await eventually(() => one.broker.redis?.up === false, 2000), true, 'the broker saw Redis go');
    const ready = await one.http.get('/readyz').expect(200);
    assert.equal(ready.body.status, 'ready');
    assert.equal(ready.body.checks.redis.ok, true);
    assert.match(ready.body.checks.redis.detail, /down/);
    const metrics = (await one.http.get('/metrics').expect(200)).text;
    assert.equal(metricValue(metrics, 'token_broker_redis_up'), 0);
    // And exchanges are still answered.
    await one.exchange(await b.issuer.projectedToken()).expect(200);
  });
});
