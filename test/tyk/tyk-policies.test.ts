import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildTykPolicies, tykPolicyRecord, DEFAULT_POLICY_LIMITS } from '../../src/tools/tyk-kit/tyk-policies.js';

const API = { apiId: 'orders', apiName: 'Orders', orgId: 'default' } as const;

/** The policy record buildTykPolicies writes for `id` with the default limits: the whole of API, every URL. */
const wholeApiPolicy = (id: string) => ({
  id,
  name: id,
  org_id: 'default',
  active: true,
  rate: 100,
  per: 1,
  quota_max: -1,
  quota_renewal_rate: 3600,
  throttle_interval: -1,
  throttle_retry_limit: -1,
  max_query_depth: -1,
  key_expires_in: 0,
  access_rights: { orders: { api_id: 'orders', api_name: 'Orders', versions: ['Default'], allowed_urls: [] } },
  tags: ['workload-token-broker'],
});

describe('buildTykPolicies', () => {
  it('one policy per ID, in order, each granting the whole API', () => {
    assert.deepEqual(buildTykPolicies(['payments-read', 'ledger-write'], API), [wholeApiPolicy('payments-read'), wholeApiPolicy('ledger-write')]);
  });

  const apis = [
    { apiId: 'a1', apiName: 'A', orgId: 'org-1' },
    { apiId: '5f3e9b2c0d1a', apiName: 'Payments v2', orgId: '' },
  ];
  for (const api of apis) {
    it(`access_rights reference the API id and org (${api.apiId})`, () => {
      for (const policy of buildTykPolicies(['p1', 'p2'], api)) {
        assert.deepEqual(Object.keys(policy.access_rights), [api.apiId]);
        assert.equal(policy.access_rights[api.apiId]?.api_id, api.apiId);
        assert.equal(policy.access_rights[api.apiId]?.api_name, api.apiName);
        assert.equal(policy.org_id, api.orgId);
      }
    });
  }

  it('limits are overridable', () => {
    const [policy] = buildTykPolicies(['p'], API, { rate: 5, per: 60, quotaMax: 10000, quotaRenewalRate: 86400 });
    assert.deepEqual(
      { rate: policy?.rate, per: policy?.per, quota_max: policy?.quota_max, quota_renewal_rate: policy?.quota_renewal_rate },
      { rate: 5, per: 60, quota_max: 10000, quota_renewal_rate: 86400 },
    );
  });

  it('defaults: a rate limit per identity and no quota', () => {
    assert.deepEqual(DEFAULT_POLICY_LIMITS, { rate: 100, per: 1, quotaMax: -1, quotaRenewalRate: 3600 });
  });

  it('no IDs, no policies', () => {
    assert.deepEqual(buildTykPolicies([], API), []);
  });
});

describe('tykPolicyRecord', () => {
  it('maps each policy ID to its policy, in order', () => {
    const policies = buildTykPolicies(['b', 'a'], API);
    const record = tykPolicyRecord(policies);
    assert.deepEqual(Object.keys(record), ['b', 'a']);
    assert.equal(record.b, policies[0]);
    assert.equal(record.a, policies[1]);
  });
});
