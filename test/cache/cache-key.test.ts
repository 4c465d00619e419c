import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tokenCacheKey } from '../../src/cache/cache-key.js';
import type { Grant } from '../../src/mint/access-token-claims.js';
import type { WorkloadIdentity } from '../../src/identity/workload-identity.js';

const IDENTITY: WorkloadIdentity = {
  issuerName: 'cluster-a',
  issuer: 'https://cluster-a.example',
  subject: 'system:serviceaccount:payments:argo-runner',
  namespace: 'payments',
  serviceAccount: 'argo-runner',
  podName: 'orders-sync-x7k2p-call-api-3149217812',
  podUid: '0d8b260e-0000-4000-8000-000000000001',
  claims: { jti: 'subject-jti-1', exp: 1_767_226_200 },
};

const GRANT: Grant = { identity: IDENTITY, policies: ['payments-read', 'status-read'], audience: 'tyk', ttlSeconds: 300 };
const CONTEXT = { rulesVersion: 'rules-v1', signingKid: 'kid-1' };

const baseKey = () => tokenCacheKey(GRANT, CONTEXT);

describe('tokenCacheKey', () => {
  it('is stable for equal inputs built separately', () => {
    const copy: Grant = structuredClone(GRANT);
    assert.equal(tokenCacheKey(copy, { ...CONTEXT }), baseKey());
    assert.match(baseKey(), /^[A-Za-z0-9_-]{43}$/, 'a base64url SHA-256');
  });

  it('does not contain the identity in clear', () => {
    const key = baseKey();
    for (const part of ['payments', 'argo-runner', 'cluster-a', IDENTITY.podUid ?? '']) assert.equal(key.includes(part), false);
  });

  it('ignores what does not change the minted token: other claims, a new subject token of the same pod', () => {
    const renewed: Grant = { ...GRANT, identity: { ...IDENTITY, claims: { jti: 'subject-jti-2', exp: 1_767_229_800 } } };
    assert.equal(tokenCacheKey(renewed, CONTEXT), baseKey());
  });

  const changes: readonly { name: string; grant?: Partial<Grant>; identity?: Partial<WorkloadIdentity>; context?: Partial<typeof CONTEXT> }[] = [
    { name: 'issuer', identity: { issuer: 'https://cluster-b.example' } },
    { name: 'subject', identity: { subject: 'system:serviceaccount:payments:argo-deployer' } },
    { name: 'pod uid', identity: { podUid: '0d8b260e-0000-4000-8000-000000000002' } },
    { name: 'pod uid absent', identity: { podUid: undefined } },
    { name: 'pod name', identity: { podName: 'orders-sync-x7k2p-call-api-0000000000' } },
    { name: 'audience', grant: { audience: 'tyk-internal' } },
    { name: 'policies (one more)', grant: { policies: ['payments-read', 'status-read', 'payments-write'] } },
    { name: 'policies (one fewer)', grant: { policies: ['payments-read'] } },
    { name: 'policies (order: the first is the pol claim)', grant: { policies: ['status-read', 'payments-read'] } },
    { name: 'policies (joined differently)', grant: { policies: ['payments-read status-read'] } },
    { name: 'ttl', grant: { ttlSeconds: 301 } },
    { name: 'rules version', context: { rulesVersion: 'rules-v2' } },
    { name: 'signing kid', context: { signingKid: 'kid-2' } },
  ];
  for (const change of changes) {
    it(`changes when the ${change.name} changes`, () => {
      const grant: Grant = { ...GRANT, ...change.grant, identity: { ...IDENTITY, ...change.identity } };
      const key = tokenCacheKey(grant, { ...CONTEXT, ...change.context });
      assert.notEqual(key, baseKey());
    });
  }

  it('gives distinct keys to every single change', () => {
    const keys = new Set(
      changes.map((change) =>
        tokenCacheKey({ ...GRANT, ...change.grant, identity: { ...IDENTITY, ...change.identity } }, { ...CONTEXT, ...change.context }),
      ),
    );
    keys.add(baseKey());
    assert.equal(keys.size, changes.length + 1);
  });

  it('does not confuse fields whose values shift between them', () => {
    const a = tokenCacheKey(GRANT, { rulesVersion: 'ab', signingKid: 'c' });
    const b = tokenCacheKey(GRANT, { rulesVersion: 'a', signingKid: 'bc' });
    assert.notEqual(a, b);
  });
});
