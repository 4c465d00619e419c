import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { decideGrant } from '../../src/server/rules/decide-grant.js';
import { compileResourceTargets } from '../../src/server/rules/resource-targets.js';
import { parseResourceIndicator } from '../../src/server/rules/resource-indicator.js';
import type { TokensConfig } from '../../src/server/config/schema.js';
import { TOKENS_SUB_ONLY } from '../support/tokens-config.js';
import { PAYMENTS_RUNNER } from '../support/workload-identities.js';

const TOKENS: TokensConfig = { ...TOKENS_SUB_ONLY, allowedAudiences: ['tyk', 'tyk-internal'] };
const RULES = compileRules([
  { name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read'], ttlSeconds: 300 },
  { name: 'audit-on-request', match: { namespaces: ['payments'] }, requestable: ['payments-audit'] },
]);
const IDENTITY = PAYMENTS_RUNNER;

describe('decideGrant', () => {
  it('grants what the rules grant, to the default audience, with the rules\' lifetime', () => {
    const decided = decideGrant(RULES, IDENTITY, {}, TOKENS);
    assert.equal(decided.granted, true);
    assert.ok(decided.granted);
    assert.deepEqual(decided.grant, { identity: IDENTITY, policies: ['payments-read'], audience: 'tyk', ttlSeconds: 300 });
    assert.deepEqual(decided.evaluation.matchedRules, ['payments-ci', 'audit-on-request']);
  });

  it('a scope narrows to exactly the policies named, requestable ones included', () => {
    const decided = decideGrant(RULES, IDENTITY, { scope: ['payments-audit'], audience: 'tyk-internal' }, TOKENS);
    assert.ok(decided.granted);
    assert.deepEqual([decided.grant.policies, decided.grant.audience], [['payments-audit'], 'tyk-internal']);
  });

  it('refuses in the exchange\'s order, keeping the evaluation for the log: rules, then scope, then audience', () => {
    const stranger = decideGrant(RULES, { ...IDENTITY, namespace: 'orders' }, { audience: 'billing' }, TOKENS);
    assert.ok(!stranger.granted);
    assert.equal(stranger.refusal.code, 'no_matching_rule');
    assert.equal(stranger.evaluation.verdicts.length, 2);

    const overreach = decideGrant(RULES, IDENTITY, { scope: ['ledger-write'], audience: 'billing' }, TOKENS);
    assert.ok(!overreach.granted);
    assert.deepEqual([overreach.refusal.code, overreach.refusal.status], ['scope_not_granted', 400]);

    const elsewhere = decideGrant(RULES, IDENTITY, { audience: 'billing' }, TOKENS);
    assert.ok(!elsewhere.granted);
    assert.deepEqual([elsewhere.refusal.code, elsewhere.refusal.description], ['audience_not_allowed', 'The broker does not issue tokens for audience "billing".']);
  });

  describe('resource (RFC 8707)', () => {
    const rules = compileRules([
      { name: 'payments-ci', match: { namespaces: ['payments'] }, policies: ['payments-read', 'ledger-read'] },
      { name: 'audit-on-request', match: { namespaces: ['payments'] }, requestable: ['payments-audit'] },
    ]);
    const targets = compileResourceTargets(
      [
        { apiId: 'payments', urls: ['https://gateway.example.com/payments/'] },
        { apiId: 'ledger', urls: ['https://gateway.example.com/ledger/'] },
      ],
      {
        'payments-read': { apis: [{ apiId: 'payments' }] },
        'payments-audit': { apis: [{ apiId: 'payments' }, { apiId: 'ledger' }] },
        'ledger-read': { apis: [{ apiId: 'ledger' }] },
      },
    );
    const payments = parseResourceIndicator('https://gateway.example.com/payments/v1');

    it('narrows the granted policies to those opening the API; requestable ones still need scope', () => {
      const decided = decideGrant(rules, IDENTITY, { resource: payments }, TOKENS, targets);
      assert.ok(decided.granted);
      assert.deepEqual(decided.grant.policies, ['payments-read']);
    });

    it('with scope: the intersection of the two', () => {
      const both = decideGrant(rules, IDENTITY, { scope: ['payments-audit', 'ledger-read', 'payments-read'], resource: payments }, TOKENS, targets);
      assert.ok(both.granted);
      assert.deepEqual(both.grant.policies, ['payments-read', 'payments-audit']);
      const disjoint = decideGrant(rules, IDENTITY, { scope: ['ledger-read'], resource: payments }, TOKENS, targets);
      assert.ok(!disjoint.granted);
      assert.equal(disjoint.refusal.code, 'resource_not_granted');
    });

    it('refuses in order: scope before resource, resource before audience; without targets, refuses the resource', () => {
      const overreach = decideGrant(rules, IDENTITY, { scope: ['admin'], resource: payments, audience: 'billing' }, TOKENS, targets);
      assert.ok(!overreach.granted);
      assert.equal(overreach.refusal.code, 'scope_not_granted');
      const elsewhere = decideGrant(rules, IDENTITY, { resource: parseResourceIndicator('https://gateway.example.com/hr/'), audience: 'billing' }, TOKENS, targets);
      assert.ok(!elsewhere.granted);
      assert.equal(elsewhere.refusal.code, 'unknown_resource');
      const unconfigured = decideGrant(rules, IDENTITY, { resource: payments }, TOKENS);
      assert.ok(!unconfigured.granted);
      assert.deepEqual([unconfigured.refusal.oauthError, unconfigured.refusal.code], ['invalid_target', 'unknown_resource']);
    });
  });
});
