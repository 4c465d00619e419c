import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { brokerConfigSchema, type BrokerConfig, type BrokerConfigInput } from '../../src/server/config/schema.js';
import { validateConfig } from '../../src/server/config/validate-config.js';
import { CONFIG_RELOAD, configHash, diffRuleNames, restartOnlyChanges } from '../../src/server/config/config-reload.js';

/*
 * What a reload may change live, and how two configurations are compared: the pure core of
 * src/server/config/config-reload.ts, table-driven.
 */

const BASE: BrokerConfigInput = {
  server: { port: 8080, publicUrl: 'https://token-broker.test' },
  issuers: [{ name: 'a', issuer: 'https://issuer.test', audiences: ['x'], jwksUri: 'https://issuer.test/jwks' }],
  signing: { algorithm: 'ES256', keysDir: '/keys' },
  cache: { redis: { url: 'redis://:s3cret-password@127.0.0.1:6379/0' } },
  rules: [
    { name: 'payments', match: { namespaces: ['payments'] }, policies: ['payments-read'] },
    { name: 'status', match: { namespaces: ['*'] }, policies: ['status-read'] },
  ],
};

function config(change: (input: BrokerConfigInput) => BrokerConfigInput = (c) => c): BrokerConfig {
  const result = validateConfig(change(structuredClone(BASE)));
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

describe('config reload: what may change live', () => {
  it('classifies every top-level block of the configuration, and nothing else', () => {
    assert.deepEqual(Object.keys(CONFIG_RELOAD).sort(), Object.keys(brokerConfigSchema.shape).sort());
    const live = Object.entries(CONFIG_RELOAD).filter(([, rule]) => rule.live).map(([block]) => block).sort();
    assert.deepEqual(live, ['apis', 'denies', 'issuers', 'kubernetes', 'policies', 'rules', 'tokens']);
  });

  const cases: { name: string; change: (c: BrokerConfigInput) => BrokerConfigInput; refused: string[] }[] = [
    { name: 'a rule added', change: (c) => ({ ...c, rules: [...(c.rules ?? []), { name: 'new', match: {}, policies: ['p'] }] }), refused: [] },
    { name: 'a rule removed', change: (c) => ({ ...c, rules: c.rules?.slice(1) ?? [] }), refused: [] },
    { name: 'an issuer added', change: (c) => ({ ...c, issuers: [...(c.issuers ?? []), { name: 'b', issuer: 'https://b.test', audiences: ['x'], jwksUri: 'https://b.test/jwks' }] }), refused: [] },
    { name: 'tokens.audience and defaultTtlSeconds', change: (c) => ({ ...c, tokens: { audience: 'other', defaultTtlSeconds: 900 } }), refused: [] },
    { name: 'a policies block', change: (c) => ({ ...c, policies: { 'payments-read': { apis: [{ apiId: 'payments', routes: [{ methods: ['GET'], path: '/payments/' }] }] } } }), refused: [] },
    { name: 'server.port (the listener)', change: (c) => ({ ...c, server: { ...c.server, port: 9090 } }), refused: ['server.port'] },
    { name: 'server.tls added', change: (c) => ({ ...c, server: { ...c.server, tls: { certFile: '/c', keyFile: '/k' } } }), refused: ['server.tls'] },
    { name: 'the Redis URL', change: (c) => ({ ...c, cache: { redis: { url: 'redis://10.0.0.9:6379/0' } } }), refused: ['cache.redis.url'] },
    { name: 'tokens.format', change: (c) => ({ ...c, tokens: { format: 'tyk-key' }, tyk: { gatewayUrl: 'http://tyk.test', secretFile: '/s' } }), refused: ['tokens.format', 'tyk'] },
    { name: 'tokens.maxTtlSeconds (the key retirement schedule)', change: (c) => ({ ...c, tokens: { maxTtlSeconds: 7200 } }), refused: ['tokens.maxTtlSeconds'] },
    { name: 'signing.keysDir', change: (c) => ({ ...c, signing: { ...c.signing, keysDir: '/other' } }), refused: ['signing.keysDir'] },
    { name: 'limits, audit and logging at once', change: (c) => ({ ...c, limits: { minting: { enabled: false } }, audit: { redisStream: {} }, logging: { level: 'debug' } }), refused: ['limits.minting.enabled', 'audit.redisStream', 'logging.level'] },
    { name: 'explain.enabled (a route)', change: (c) => ({ ...c, explain: { enabled: true } }), refused: ['explain.enabled'] },
    { name: 'a static deny added', change: (c) => ({ ...c, denies: { static: [{ id: 'freeze', namespace: 'payments', reason: 'INC-1' }] } }), refused: [] },
    { name: 'denies.pollSeconds', change: (c) => ({ ...c, denies: { pollSeconds: 30 } }), refused: ['denies.pollSeconds'] },
    { name: 'the admin listener added', change: (c) => ({ ...c, admin: { port: 9090, bearerTokenFile: '/s' } }), refused: ['admin'] },
  ];
  for (const { name, change, refused } of cases) {
    it(`${name}: ${refused.length === 0 ? 'live' : `refused at ${refused.join(', ')}`}`, () => {
      const found = restartOnlyChanges(config(), config(change));
      assert.deepEqual(found.map((c) => c.path).sort(), [...refused].sort());
      for (const c of found) assert.ok(c.why.length > 10, `${c.path} says why it needs a restart`);
    });
  }

  it('never puts a value into a refusal: a changed Redis password is named by its path only', () => {
    const found = restartOnlyChanges(config(), config((c) => ({ ...c, cache: { redis: { url: 'redis://:other-password@127.0.0.1:6379/0' } } })));
    assert.deepEqual(found.map((c) => c.path), ['cache.redis.url']);
    const text = JSON.stringify(found);
    assert.ok(!text.includes('s3cret-password') && !text.includes('other-password'));
  });

  it('an identical configuration changes nothing, whatever the key order of its blocks', () => {
    const reordered = config((c) => Object.fromEntries(Object.entries(c).reverse()) as BrokerConfigInput);
    assert.deepEqual(restartOnlyChanges(config(), reordered), []);
    assert.equal(configHash(reordered), configHash(config()));
  });
});

describe('config reload: the rule-name diff and the hash', () => {
  it('reports rules added, removed and changed in place, by name', () => {
    const next = config((c) => ({
      ...c,
      rules: [
        { name: 'payments', match: { namespaces: ['payments', 'payments-*'] }, policies: ['payments-read'] },
        { name: 'billing', match: { namespaces: ['billing'] }, policies: ['billing-read'] },
      ],
    }));
    assert.deepEqual(diffRuleNames(config().rules, next.rules), { added: ['billing'], removed: ['status'], changed: ['payments'] });
    assert.deepEqual(diffRuleNames(config().rules, config().rules), { added: [], removed: [], changed: [] });
  });

  it('is 12 hex digits, differs when a rule changes, and does not depend on the Redis password', () => {
    const hash = configHash(config());
    assert.match(hash, /^[0-9a-f]{12}$/);
    assert.notEqual(configHash(config((c) => ({ ...c, rules: c.rules?.slice(1) ?? [] }))), hash);
    assert.equal(configHash(config((c) => ({ ...c, cache: { redis: { url: 'redis://:guess@127.0.0.1:6379/0' } } }))), hash);
  });
});
