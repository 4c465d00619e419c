import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitKey } from '../../src/server/limits/rate-limit-key.js';
import type { WorkloadIdentity } from '../../src/server/identity/workload-identity.js';
import { PAYMENTS_RUNNER_POD } from '../support/workload-identities.js';

const IDENTITY: WorkloadIdentity = {
  ...PAYMENTS_RUNNER_POD,
  serviceAccountUid: 'sa-uid-1',
  nodeName: 'node-a',
  claims: { jti: 'subject-jti-1', exp: 1_767_226_200 },
};

const baseKey = rateLimitKey(IDENTITY);

describe('rateLimitKey', () => {
  it('is a base64url SHA-256, stable for equal identities built separately', () => {
    assert.match(baseKey, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(rateLimitKey(structuredClone(IDENTITY)), baseKey);
  });

  it('does not contain the identity in clear', () => {
    for (const part of ['payments', 'argo-runner', 'cluster-a', IDENTITY.podUid ?? '', 'serviceaccount']) {
      assert.equal(baseKey.includes(part), false, part);
    }
  });

  // One bucket per workload instance: (issuer, subject, pod uid). Everything else is the same bucket.
  const same: readonly [string, Partial<WorkloadIdentity>][] = [
    ['a new subject token of the same pod (other jti, exp)', { claims: { jti: 'subject-jti-2', exp: 1_767_229_800 } }],
    ['another configured issuer name for the same iss', { issuerName: 'renamed' }],
    ['another pod name with the same pod uid', { podName: 'renamed-pod' }],
    ['another node', { nodeName: 'node-b' }],
    ['another service-account uid (recreated account, same pod uid)', { serviceAccountUid: 'sa-uid-2' }],
    ['namespace and service account fields (already in sub)', { namespace: 'other', serviceAccount: 'other' }],
  ];
  for (const [name, change] of same) {
    it(`same bucket: ${name}`, () => {
      assert.equal(rateLimitKey({ ...IDENTITY, ...change }), baseKey);
    });
  }

  const different: readonly [string, Partial<WorkloadIdentity>][] = [
    ['another pod of the same service account (fan-out)', { podUid: '0d8b260e-0000-4000-8000-000000000002' }],
    ['another subject', { subject: 'system:serviceaccount:payments:argo-other' }],
    ['another issuer (a second cluster with the same names)', { issuer: 'https://cluster-b.example' }],
    ['no pod uid (a Secret-bound token)', { podUid: undefined }],
  ];
  for (const [name, change] of different) {
    it(`different bucket: ${name}`, () => {
      assert.notEqual(rateLimitKey({ ...IDENTITY, ...change }), baseKey);
    });
  }

  it('every identity in the table gets its own bucket (no two collide)', () => {
    const keys = different.map(([, change]) => rateLimitKey({ ...IDENTITY, ...change }));
    assert.equal(new Set([baseKey, ...keys]).size, different.length + 1);
  });

  it('field boundaries cannot be shifted to forge another workload\'s bucket', () => {
    const a = rateLimitKey({ ...IDENTITY, issuer: 'https://x', subject: 'a:b', podUid: 'c' });
    const b = rateLimitKey({ ...IDENTITY, issuer: 'https://x', subject: 'a', podUid: 'b:c' });
    const c = rateLimitKey({ ...IDENTITY, issuer: 'https://x","a', subject: 'b', podUid: 'c' });
    const d = rateLimitKey({ ...IDENTITY, issuer: 'https://x', subject: 'a","b', podUid: 'c' });
    assert.equal(new Set([a, b, c, d]).size, 4);
  });

  it('a missing pod uid and an absent one are the same bucket', () => {
    const { podUid: _dropped, ...withoutPod } = IDENTITY;
    assert.equal(rateLimitKey(withoutPod), rateLimitKey({ ...IDENTITY, podUid: undefined }));
  });
});
