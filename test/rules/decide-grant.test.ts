import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules } from '../../src/server/rules/compiled-rules.js';
import { decideGrant } from '../../src/server/rules/decide-grant.js';
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
});
