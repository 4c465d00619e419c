import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { decodeJwt } from 'jose';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { defaultConfig } from '../support/broker-harness.js';
import { redisUnavailableReason, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { exchangeOutcomes, rawRedis, startBrokers, type MultiBroker } from '../support/multi-broker.js';
import { useScratchDir } from '../support/scratch-dir.js';
import { watchConfigFile, type ConfigFileReloader } from '../../src/server/config/config-file-reloader.js';
import type { BrokerConfigInput } from '../../src/server/config/schema.js';

/*
 * A configuration reload against real Redis and real HTTP: a token cached under a rule that the reloaded
 * configuration no longer grants is never served (it is still in Redis, and stays unused), and an identity the
 * new rules still grant gets a token minted under them, not the one cached under the old rules.
 */

const skip = redisUnavailableReason();

describe('configuration reload with a shared Redis', { skip }, () => {
  const scratch = useScratchDir('tb-reload-redis-');
  let server: RedisServer;
  let raw: Redis;
  let brokers: MultiBroker;
  let prefix: string;
  let reloader: ConfigFileReloader;
  let path: string;
  let base: BrokerConfigInput;

  before(async () => {
    server = await startRedisServer();
    raw = rawRedis(server.url);
    prefix = `reload-${randomUUID()}:`;
    brokers = await startBrokers({ count: 1, config: () => ({ cache: { redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 2000 } } }) });
    const instance = brokers.at(0);
    base = { ...defaultConfig(brokers.issuer.issuer), cache: { redis: { url: server.url, keyPrefix: prefix, commandTimeoutMs: 2000 } } };
    path = await scratch.write('broker.yaml', `${JSON.stringify(base)}\n`);
    reloader = watchConfigFile({
      path,
      env: {},
      inForce: () => instance.broker.config(),
      apply: (next) => instance.broker.reconfigure(next),
      logger: pino({ level: 'silent' }),
      rescanIntervalMs: 0,
      watch: false,
    });
  });
  after(async () => {
    await reloader?.close();
    await brokers?.close();
    raw?.disconnect();
    await server?.stop();
  });

  async function reloadWith(rules: BrokerConfigInput['rules']): Promise<void> {
    await writeFile(path, `${JSON.stringify({ ...base, rules })}\n`);
    const attempt = await reloader.reload('signal');
    assert.equal(attempt.result, 'success', JSON.stringify(attempt));
  }

  const cachedKeys = () => raw.keys(`${prefix}*`);

  it('a token cached under a rule the reload removed is not served; a still-granted identity gets a token of the new rules', async () => {
    const one = brokers.at(0);
    const subject = await brokers.issuer.projectedToken({ podUid: 'pod-reload-1' });
    const mark = brokers.mark();
    const first = await one.exchange(subject).expect(200);
    const again = await one.exchange(subject).expect(200);
    assert.equal(again.body.access_token, first.body.access_token, 'served from Redis before the reload');
    assert.equal(first.body.scope, 'payments-read payments-write status-read');
    assert.deepEqual(exchangeOutcomes(mark()), ['issued', 'cached']);
    const keysBefore = (await cachedKeys()).filter((key) => !key.includes('rate'));
    assert.ok(keysBefore.length >= 1, 'the token is in Redis');

    // The reload takes both rules away from payments: the cached token is still in Redis, and is not served.
    await reloadWith([{ name: 'billing-only', match: { namespaces: ['billing'] }, policies: ['billing-read'] }]);
    const refused = await one.exchange(subject).expect(400);
    assert.deepEqual(refused.body, { error: 'invalid_request', error_description: 'No policy is granted to this workload identity.', reason: 'no_matching_rule' });
    for (const key of keysBefore) assert.equal(await raw.exists(key), 1, 'the old entry is still in Redis, unused');

    // Granted again by a changed rule: minted anew under the new rules (new rules version, new cache key).
    const afterMark = brokers.mark();
    await reloadWith([{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'], ttlSeconds: 300 }]);
    const regranted = await one.exchange(subject).expect(200);
    assert.notEqual(regranted.body.access_token, first.body.access_token, 'not the token cached under the old rules');
    assert.equal(regranted.body.scope, 'payments-read');
    assert.deepEqual(decodeJwt(regranted.body.access_token as string).scope, 'payments-read');
    const repeat = await one.exchange(subject).expect(200);
    assert.equal(repeat.body.access_token, regranted.body.access_token, 'and that one is served from Redis');
    assert.deepEqual(exchangeOutcomes(afterMark()), ['issued', 'cached']);
  });

  it('a reload that changes a rule\'s text but grants the same is still minted under the new rules version', async () => {
    const one = brokers.at(0);
    await reloadWith([{ name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'], ttlSeconds: 300 }]);
    const subject = await brokers.issuer.projectedToken({ podUid: 'pod-reload-2' });
    const before = await one.exchange(subject).expect(200);
    await reloadWith([
      { name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'], ttlSeconds: 300 },
      { name: 'billing-only', match: { namespaces: ['billing'] }, policies: ['billing-read'] },
    ]);
    const after = await one.exchange(subject).expect(200);
    assert.equal(after.body.scope, 'payments-read');
    assert.notEqual(after.body.access_token, before.body.access_token);
  });
});
